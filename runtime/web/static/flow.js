// flow serve: refresh the live parts of a page while a build runs. No library: fetch the same
// page again and swap each section marked "live" by its id; stop once the server says nothing
// runs any more (the body's data-live).
(function () {
  "use strict";
  var PERIOD = 1500;

  function refresh() {
    if (document.body.dataset.live !== "1") return;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null) { schedule(); return; }
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("section.live").forEach(function (current) {
          var next = fresh.getElementById(current.id);
          if (next) current.replaceWith(document.importNode(next, true));
        });
        document.body.dataset.live = fresh.body.dataset.live;
        document.body.dataset.refreshed = String(Date.now());
        schedule();
      })
      .catch(schedule);
  }

  function schedule() {
    if (document.body.dataset.live === "1") window.setTimeout(refresh, PERIOD);
  }

  document.addEventListener("DOMContentLoaded", schedule);
})();
