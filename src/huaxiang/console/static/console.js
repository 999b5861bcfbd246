// huaxiang console: draws the server-rendered Plotly figures and calls the API as the signed-in user.
"use strict";

const hx = {
  // POST/GET the service's JSON API with the console cookie; the header proves it is the console.
  async api(path, body, method) {
    const options = {
      method: method || (body === undefined ? "GET" : "POST"),
      credentials: "same-origin",
      headers: { "x-huaxiang-console": "1", "accept": "application/json" },
    };
    if (body !== undefined) {
      options.headers["content-type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || response.statusText);
      error.status = response.status;
      error.details = (data.error && data.error.details) || {};
      throw error;
    }
    return data;
  },

  // Draw every <div class="chart" data-figure="..."> with Plotly (if the page loaded it).
  drawCharts(root) {
    if (typeof Plotly === "undefined") return;
    for (const element of (root || document).querySelectorAll(".chart[data-figure]")) {
      const figure = JSON.parse(element.dataset.figure);
      Plotly.newPlot(element, figure.data, figure.layout, { displaylogo: false, responsive: true });
      element.dataset.drawn = "1";
    }
  },

  lang() {
    return document.body.dataset.lang || "zh";
  },
};

window.hx = hx;
document.addEventListener("DOMContentLoaded", () => hx.drawCharts());
