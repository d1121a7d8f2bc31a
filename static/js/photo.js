// The photo viewer: arrow keys and swipes step through the grid, Escape goes back to it.
"use strict";

(() => {
  const viewer = document.querySelector(".viewer");
  if (!viewer) return;
  const go = (url) => { if (url) window.location.assign(url); };
  const typing = () => {
    const el = document.activeElement;
    return el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  };

  document.addEventListener("keydown", (event) => {
    if (typing() || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowLeft") go(viewer.dataset.newer);
    else if (event.key === "ArrowRight") go(viewer.dataset.older);
    else if (event.key === "Escape" && !document.querySelector("details[open]")) go(viewer.dataset.back);
    else return;
    event.preventDefault();
  });

  // Swipe: a mostly horizontal drag of 50 px or more on the picture.
  const stage = viewer.querySelector(".stage");
  let start = null;
  stage.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "mouse") start = { x: event.clientX, y: event.clientY };
  });
  stage.addEventListener("pointerup", (event) => {
    if (!start) return;
    const dx = event.clientX - start.x;
    const dy = event.clientY - start.y;
    start = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) go(dx > 0 ? viewer.dataset.newer : viewer.dataset.older);
  });
  stage.addEventListener("pointercancel", () => { start = null; });

  // The next picture is probably next: let the browser fetch it while this one is looked at.
  const older = viewer.dataset.older;
  if (older) {
    const hint = document.createElement("link");
    hint.rel = "prefetch";
    hint.href = older;
    document.head.appendChild(hint);
  }
})();
