// The inbox: put a canned reply into the reply box without reloading the page (the form still
// works without scripts: it reloads the page with the reply box filled).
(function () {
  "use strict";
  var form = document.querySelector("form.canned-pick");
  var box = document.getElementById("reply-text");
  if (!form || !box) {
    return;
  }
  form.addEventListener("submit", function (event) {
    var select = form.querySelector("select");
    var option = select && select.options[select.selectedIndex];
    var text = option ? option.getAttribute("data-text") : null;
    if (text === null) {
      return;
    }
    event.preventDefault();
    // After what is already written, on a line of its own.
    box.value = box.value.trim() ? box.value.replace(/\s*$/, "") + "\n" + text : text;
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  });
})();
