// The simulator's phone: posts what you write and shows what the bot sends, including
// messages the bot sends on its own (polled every few seconds). No third-party code.
(function () {
  "use strict";
  var thread = document.getElementById("thread");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  if (!thread || !form || !input) { return; }
  var person = thread.getAttribute("data-person");
  var lastId = 0;
  var seen = {};

  function show(message) {
    if (seen[message.id]) { return; }
    seen[message.id] = true;
    lastId = Math.max(lastId, message.id);
    var item = document.createElement("li");
    item.className = message.direction === "inbound" ? "bubble mine" : "bubble bot";
    item.setAttribute("dir", "auto");
    item.textContent = message.text;
    thread.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  function showError(text) {
    var item = document.createElement("li");
    item.className = "bubble error";
    item.textContent = text;
    thread.appendChild(item);
  }

  function poll() {
    fetch("/api/simulator/" + person + "/messages?after=" + lastId, { headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : { messages: [] }; })
      .then(function (body) { body.messages.forEach(show); })
      .catch(function () { /* the next poll tries again */ });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    fetch("/api/simulator/" + person + "/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ text: text })
    })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function () { poll(); })
      .catch(function () { showError(thread.getAttribute("data-error")); });
  });

  poll();
  window.setInterval(poll, 3000);
})();
