// Light/dark: the system's choice unless the visitor pinned one with the header's toggle (kept in
// localStorage). Loaded in <head> so that the page never flashes the other theme.
(function () {
  const root = document.documentElement;
  const saved = localStorage.getItem("theme");
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;
  const current = () => root.dataset.theme ||
    (window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  document.addEventListener("DOMContentLoaded", function () {
    // Menus made of <details> (the branch/tag switcher): Escape closes one and returns to its
    // summary, a click elsewhere closes it. Without this script they still open and close.
    document.querySelectorAll("details.ref-switch").forEach(function (menu) {
      menu.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && menu.open) {
          menu.open = false;
          menu.querySelector("summary").focus();
        }
      });
      document.addEventListener("click", function (event) {
        if (menu.open && !menu.contains(event.target)) menu.open = false;
      });
    });
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    const label = () => {
      const next = current() === "dark" ? "light" : "dark";
      button.textContent = next === "dark" ? "Dark" : "Light";
      button.setAttribute("aria-label", "Switch to the " + next + " theme");
    };
    button.hidden = false;
    label();
    button.addEventListener("click", function () {
      root.dataset.theme = current() === "dark" ? "light" : "dark";
      localStorage.setItem("theme", root.dataset.theme);
      label();
    });
  });
})();
