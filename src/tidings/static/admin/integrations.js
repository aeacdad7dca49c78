// /admin/integrations: the secret box shown once. "Copy" puts the secret on
// the clipboard; a click in the box selects all of it (copy by hand).
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-copy]");
    if (button) {
      var field = document.querySelector(button.getAttribute("data-copy"));
      if (!field) return;
      field.select();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {});
      } else {
        document.execCommand("copy");
        done();
      }
      return;
    }
    var box = e.target.closest("[data-select-all]");
    if (box) box.select();
  });
})();
