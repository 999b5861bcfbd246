// The segments page: load the value groups' section (slow the first time per snapshot) after the page.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const card = document.getElementById("value-groups");
  if (!card || !card.dataset.src) return;
  try {
    const response = await fetch(card.dataset.src, { credentials: "same-origin", headers: { accept: "text/html" } });
    const html = await response.text();
    if (!response.ok) {
      const page = new DOMParser().parseFromString(html, "text/html");
      const message = page.querySelector("#error .message");
      throw new Error(message ? message.textContent : response.statusText);
    }
    card.innerHTML = html;
    hx.drawCharts(card);
    card.dataset.loaded = "1";
  } catch (error) {
    card.querySelector("#value-groups-loading").textContent = String(error.message || error);
    card.dataset.loaded = "error";
  }
});
