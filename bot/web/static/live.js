// Live updates for signed-in staff pages: listens to /live (server-sent events) and refreshes the
// regions of the page marked with data-live, without reloading the page.
//
//   <ul data-live="inbox">…</ul>                              refreshed on every event
//   <ol data-live="thread" data-young-person="12">…</ol>      refreshed on events about young person 12
//
// A region is matched with the fresh page's region of the same data-live (and data-young-person).
//
// A refresh fetches the current page again and swaps each marked region's contents for the
// same region of the fresh page. Focus stays where it was (an element with the same id, or the
// region itself), and a region where someone is typing (a focused field, or a field with text
// not yet sent) is left alone until they leave it. New messages from a young person and new
// handoffs are announced in the polite live region #live-status. Nothing but this site is
// contacted; no inline script is needed, so the Content-Security-Policy stays strict.
(function () {
  "use strict";

  var status = document.getElementById("live-status");
  if (!status || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }

  var pending = new Set();   // young people with news since the last refresh ("12")
  var anyone = false;        // news at all: regions without data-young-person refresh
  var timer = null;
  var busyWaiting = false;

  function regionKey(element) {
    var kind = element.getAttribute("data-live");
    var person = element.getAttribute("data-young-person");
    return person ? kind + ":" + person : kind;
  }

  function regions() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  }

  function isTypingIn(region) {
    var active = document.activeElement;
    if (active && region.contains(active)) {
      var tag = active.tagName;
      if (tag === "TEXTAREA" || tag === "SELECT" || active.isContentEditable) {
        return true;
      }
      if (tag === "INPUT" && active.type !== "submit" && active.type !== "button") {
        return true;
      }
    }
    var fields = region.querySelectorAll("textarea, input[type=text], input:not([type])");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) {
        return true;
      }
    }
    return false;
  }

  function announce(text) {
    if (!text) {
      return;
    }
    // Emptied first, so the same words twice are announced twice.
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  function swap(region, fresh) {
    var active = document.activeElement;
    var hadFocus = active && region.contains(active);
    var focusId = hadFocus && active.id ? active.id : null;
    region.innerHTML = fresh.innerHTML;
    if (hadFocus) {
      var again = focusId ? document.getElementById(focusId) : null;
      if (!again || !region.contains(again)) {
        if (!region.hasAttribute("tabindex")) {
          region.setAttribute("tabindex", "-1");
        }
        again = region;
      }
      again.focus({ preventScroll: true });
    }
  }

  function refresh() {
    timer = null;
    var wanted = regions().filter(function (region) {
      var person = region.getAttribute("data-young-person");
      return person ? pending.has(person) : anyone;
    });
    pending.clear();
    anyone = false;
    if (!wanted.length) {
      return;
    }
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "X-Stifinder-Live": "1" }
    }).then(function (response) {
      if (!response.ok || response.redirected) {
        return null;  // signed out or refused: the page stays as it is
      }
      return response.text();
    }).then(function (html) {
      if (html === null) {
        return;
      }
      var page = new DOMParser().parseFromString(html, "text/html");
      var fresh = {};
      Array.prototype.forEach.call(page.querySelectorAll("[data-live]"), function (region) {
        fresh[regionKey(region)] = region;
      });
      var waiting = false;
      wanted.forEach(function (region) {
        var key = regionKey(region);
        if (!fresh[key]) {
          return;
        }
        if (isTypingIn(region)) {
          // Left for later: refreshed when the person typing leaves the field.
          var person = region.getAttribute("data-young-person");
          if (person) {
            pending.add(person);
          } else {
            anyone = true;
          }
          waiting = true;
          return;
        }
        swap(region, fresh[key]);
      });
      if (waiting && !busyWaiting) {
        busyWaiting = true;
        document.addEventListener("focusout", function retry() {
          document.removeEventListener("focusout", retry);
          busyWaiting = false;
          schedule();
        });
      }
    }).catch(function () {
      // The network is down: the next event tries again.
    });
  }

  function schedule() {
    if (timer === null) {
      timer = window.setTimeout(refresh, 250);  // several events at once: one fetch
    }
  }

  function touched(personId) {
    anyone = true;
    if (personId !== undefined && personId !== null) {
      pending.add(String(personId));
    }
    schedule();
  }

  // Where the stream stood when this page was rendered: the first connection starts there.
  var since = status.getAttribute("data-since");
  var source = new EventSource(since ? "/live?since=" + encodeURIComponent(since) : "/live");

  source.addEventListener("open", function () {
    status.setAttribute("data-connected", "true");
  });
  source.addEventListener("error", function () {
    status.setAttribute("data-connected", "false");
  });

  source.addEventListener("message", function (event) {
    var data = JSON.parse(event.data);
    touched(data.young_person);
    if (data.direction === "inbound") {
      announce(status.getAttribute("data-new-message"));
    }
  });

  source.addEventListener("handoff", function (event) {
    var data = JSON.parse(event.data);
    touched(data.young_person);
    if (data.change === "opened" || data.change === "made_urgent") {
      announce(status.getAttribute("data-new-handoff"));
    }
  });

  source.addEventListener("signed-out", function () {
    source.close();
  });
})();
