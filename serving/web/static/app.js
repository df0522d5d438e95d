// The timeline (plotly, served from this service) and a guard against double submits.
"use strict";

(function () {
  var holder = document.getElementById("timeline");
  var data = document.getElementById("timeline-data");
  if (holder && data && window.Plotly) {
    var fig = JSON.parse(data.textContent);
    window.Plotly.newPlot(holder, fig.data, fig.layout, {
      displaylogo: false,
      responsive: true,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
    }).then(function () {
      holder.setAttribute("data-ready", "1");
    });
  }
  // A form is sent once: the button is disabled after the first submit. The server also
  // stores a repeated draw once (each form carries its own Idempotency-Key).
  document.querySelectorAll("form.once").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        window.setTimeout(function () { b.disabled = true; }, 0);
      });
    });
  });
})();
