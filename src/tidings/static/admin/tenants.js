// The tenant page: "Edit" buttons fill their form from data attributes,
// "Copy" copies a new API key (shown once). Delegated, so sections that
// htmx swaps in keep working; no inline script (strict CSP).
(function () {
  "use strict";
  function fill(button) {
    var form = document.querySelector(button.getAttribute("data-fill"));
    if (!form) { return; }
    Object.keys(button.dataset).forEach(function (name) {
      if (name === "fill") { return; }
      var field = form.elements.namedItem(name);
      if (field) { field.value = button.dataset[name]; }
    });
    form.classList.add("filled");
    form.scrollIntoView({ block: "nearest" });
    var first = form.querySelector("input[type=text], textarea");
    if (first) { first.focus(); }
  }
  function copy(button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) { return; }
    field.select();
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {});
    } else if (document.execCommand && document.execCommand("copy")) {
      done();
    }
  }
  // A refused htmx post (403, 404, ...) swaps nothing: say so in its section.
  document.addEventListener("htmx:responseError", function (e) {
    var section = e.detail.elt.closest("section.card");
    if (!section) { return; }
    var alert = section.querySelector(".alert.refused");
    if (!alert) {
      alert = document.createElement("div");
      alert.className = "alert error refused";
      alert.setAttribute("role", "alert");
      section.querySelector("h2").insertAdjacentElement("afterend", alert);
    }
    var page = new DOMParser().parseFromString(e.detail.xhr.responseText || "", "text/html");
    var detail = page.querySelector("main .alert");
    alert.textContent = "Refused (HTTP " + e.detail.xhr.status + ")" +
      (detail ? ": " + detail.textContent.trim() : ".");
  });
  document.addEventListener("click", function (e) {
    var target = e.target instanceof Element ? e.target : null;
    if (!target) { return; }
    var filler = target.closest("[data-fill]");
    if (filler) { fill(filler); return; }
    var copier = target.closest("[data-copy]");
    if (copier) { copy(copier); return; }
    if (target.matches("[data-select-all]")) { target.select(); }
  });
})();
