// The live log's Pause/Resume button: while paused, the poller's requests
// are cancelled before they are sent (no request reaches the server).
(function () {
  "use strict";
  var paused = false;
  document.addEventListener("htmx:beforeRequest", function (e) {
    if (paused && e.target && e.target.id === "log-tail") {
      e.preventDefault();
    }
  });
  var MAX_ROWS = 500;  // the page keeps the newest rows only (it runs for hours)
  document.addEventListener("htmx:afterSwap", function (e) {
    var empty = document.getElementById("log-empty");
    if (empty && document.querySelector("#log-rows tr.log-row")) {
      empty.remove();
    }
    var rows = document.querySelectorAll("#log-rows tr.log-row, #log-rows tr.log-skipped");
    for (var i = MAX_ROWS; i < rows.length; i++) { rows[i].remove(); }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("log-pause");
    var state = document.getElementById("live-state");
    var label = document.getElementById("live-label");
    if (!button) { return; }
    button.addEventListener("click", function () {
      paused = !paused;
      button.textContent = paused ? "Resume" : "Pause";
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      state.classList.toggle("paused", paused);
      label.textContent = paused ? "Paused" : "Live";
    });
  });
})();
