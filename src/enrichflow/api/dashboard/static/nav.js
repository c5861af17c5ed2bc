// Collapses the top navigation behind a Menu button on narrow screens; without this script
// the links simply wrap under the brand.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var toggle = document.getElementById("nav-toggle");
  var menu = document.getElementById("site-nav");
  if (!toggle || !menu) {
    return;
  }
  toggle.addEventListener("click", function () {
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("open", open);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && menu.classList.contains("open")) {
      toggle.setAttribute("aria-expanded", "false");
      menu.classList.remove("open");
      toggle.focus();
    }
  });
})();
