// Outerloop console: live updates and a confirmation; the pages work without it too.
"use strict";

// Swap the page's [data-live] parts for those of a fresh copy of the page. A part whose
// data-live-key did not change is kept, so text someone is typing into it is not lost.
async function refresh() {
  const response = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  let changed = false;
  for (const part of document.querySelectorAll("[data-live][id]")) {
    const next = fresh.getElementById(part.id);
    if (!next) continue;
    const key = part.getAttribute("data-live-key");
    if (key !== null && key === next.getAttribute("data-live-key")) continue;
    if (part.innerHTML === next.innerHTML) continue;
    part.replaceWith(document.importNode(next, true));
    changed = true;
  }
  if (changed) {
    document.getElementById("announcer").textContent = "Updated " + new Date().toLocaleTimeString();
  }
}

function listen(url) {
  const source = new EventSource(url);
  let busy = null;
  source.addEventListener("ready", () => document.body.setAttribute("data-live-ready", "true"));
  source.addEventListener("changed", () => {
    busy = (busy || Promise.resolve()).then(refresh).catch(() => {});
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const url = document.body.getAttribute("data-live-source");
  if (url) listen(url);
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });
});
