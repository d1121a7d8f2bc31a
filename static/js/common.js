// Small behaviours every page shares; no inline scripts anywhere (the CSP forbids them).
"use strict";

// Forms that destroy something ask first.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// Menus built on <details> close when one clicks elsewhere or presses Escape.
document.addEventListener("click", (event) => {
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    for (const menu of document.querySelectorAll("details.menu[open], details.panel[open]")) menu.removeAttribute("open");
  }
});

// A share link field selects itself for copying.
for (const field of document.querySelectorAll("input.copy")) {
  field.addEventListener("focus", () => field.select());
}

window.Photoflow = {
  csrf: () => document.querySelector('meta[name="csrf-token"]').content,
  // Where links start: the URL prefix, then the share link's /s/<token> when there is one.
  base: () => document.querySelector('meta[name="base"]').content,
  // The URL prefix alone ("" when Photoflow is at the root of its host).
  root: () => document.querySelector('meta[name="root"]').content,
  shared: () => document.querySelector('meta[name="share"]').content !== "",
};
