// Campaigns: the builder's live audience count, and a campaign's progress every two seconds.
// Without this script the pages still work: "Opdater antal" asks the server, and the
// campaign page has a link that refreshes its numbers.
(function () {
  "use strict";

  var AUDIENCE_FIELDS = ["min_age", "max_age", "status", "tag", "kontaktperson", "channel", "min_days", "max_days"];

  function getJson(url) {
    return fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      if (response.status !== 200 && response.status !== 400) {
        throw new Error("status " + response.status);
      }
      return response.json();
    });
  }

  function liveCount() {
    var output = document.getElementById("audience-count");
    var form = document.getElementById("campaign-form");
    if (!output || !form) { return; }
    var timer = null;
    var asked = 0;
    function update() {
      var data = new FormData(form);
      var query = new URLSearchParams();
      AUDIENCE_FIELDS.forEach(function (name) {
        data.getAll(name).forEach(function (value) {
          if (typeof value === "string" && value !== "") { query.append(name, value); }
        });
      });
      var mine = ++asked;
      getJson(output.getAttribute("data-count-url") + "?" + query.toString()).then(function (answer) {
        if (mine !== asked) { return; }  // a later answer is on its way
        if (answer.errors) {
          output.textContent = Object.keys(answer.errors).map(function (key) {
            return answer.errors[key];
          }).join(" ");
        } else {
          output.textContent = answer.text;
        }
      }).catch(function () { /* the count stays as it was; the button still works */ });
    }
    function soon(event) {
      var name = event.target && event.target.name;
      if (AUDIENCE_FIELDS.indexOf(name) === -1) { return; }
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 300);
    }
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
  }

  function fillList(list, rows) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (!rows.length) {
      var empty = document.createElement("li");
      empty.textContent = list.getAttribute("data-empty");
      list.appendChild(empty);
      return;
    }
    rows.forEach(function (row) {
      var item = document.createElement("li");
      item.textContent = row[0] + ": " + row[1];
      list.appendChild(item);
    });
  }

  function liveProgress() {
    var region = document.querySelector("[data-progress-url]");
    if (!region) { return; }
    var note = region.querySelector(".live-note");
    var announce = region.querySelector("[data-announce]");
    var status = region.querySelector("[data-field=status_label]");
    if (region.hasAttribute("data-done")) { return; }
    if (note) { note.hidden = false; }
    var timer = window.setInterval(refresh, 2000);
    function refresh() {
      getJson(region.getAttribute("data-progress-url")).then(function (data) {
        if (status && status.textContent !== data.status_label) {
          status.textContent = data.status_label;
          if (announce) { announce.textContent = data.status_label; }
          // Only the buttons that still make sense stay: a finished campaign cannot be paused.
          document.querySelectorAll("[data-for]").forEach(function (element) {
            var fits = element.getAttribute("data-for").split(" ").indexOf(data.status) !== -1;
            element.hidden = !fits;
          });
        }
        region.querySelector("[data-field=total]").textContent = String(data.total);
        Object.keys(data.counts).forEach(function (key) {
          var cell = region.querySelector("[data-count=" + key + "]");
          if (cell) { cell.textContent = String(data.counts[key]); }
        });
        fillList(region.querySelector("[data-list=skipped]"), data.skipped);
        fillList(region.querySelector("[data-list=waiting]"), data.waiting);
        if (data.done) {
          window.clearInterval(timer);
          region.setAttribute("data-done", "");
        }
      }).catch(function () { /* try again at the next tick; the refresh link still works */ });
    }
  }

  function focusConfirmation() {
    var box = document.getElementById("confirm-cancel");
    if (box) { box.focus(); }
  }

  liveCount();
  liveProgress();
  focusConfirmation();
})();
