// Cost charts: each figure marked data-cost-report draws the report API's answer, one line
// per team (project, model) over the report's days or months. Without this script (or
// without uPlot) the table beside each chart says the same.
"use strict";

(() => {
  if (window.pavedCostCharts) {
    window.pavedCostCharts.drawAll();
    return;
  }
  const CHART_HEIGHT = 260;
  const MOST_SERIES = 7;
  const COLOURS = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#5c940d", "#0b7285", "#868e96"];
  const WAIT_FOR_UPLOT_MS = 5000;

  // Periods are days (2026-11-02) or months (2026-11): seconds since the epoch, UTC.
  const seconds = (period) => Date.parse(period.length === 7 ? `${period}-01T00:00:00Z` : `${period}T00:00:00Z`) / 1000;

  // The largest groups each get a line; the rest are added up as "Others".
  function shape(report) {
    const shown = report.series.slice(0, MOST_SERIES);
    const rest = report.series.slice(MOST_SERIES);
    if (rest.length) {
      const costs = report.periods.map((_, index) => rest.reduce((sum, series) => sum + series.costs[index], 0));
      shown.push({ title: `Others (${rest.length})`, costs });
    }
    return shown;
  }

  function draw(figure, report) {
    const holder = figure.querySelector(".chart");
    const series = shape(report);
    const data = [report.periods.map(seconds), ...series.map((found) => found.costs)];
    const money = (value) => (value == null ? "" : `${value.toFixed(2)} ${report.currency}`);
    const options = {
      width: Math.max(holder.clientWidth, 320),
      height: CHART_HEIGHT,
      scales: { x: { time: true }, y: { range: (plot, low, high) => [0, high > 0 ? high * 1.1 : 1] } },
      series: [
        { value: (plot, value) => new Date(value * 1000).toISOString().slice(0, report.granularity === "month" ? 7 : 10) },
        ...series.map((found, index) => ({
          label: found.title,
          stroke: COLOURS[index % COLOURS.length],
          width: 2,
          points: { show: report.periods.length <= 62 },
          value: (plot, value) => money(value),
        })),
      ],
      axes: [{}, { label: report.currency, size: 70 }],
    };
    holder.replaceChildren();
    figure.chart = new uPlot(options, data, holder);
    figure.hidden = false;
    figure.dataset.drawn = String(series.length);
  }

  async function drawFigure(figure) {
    if (figure.dataset.drawing) return;
    figure.dataset.drawing = "yes";
    try {
      const answer = await fetch(figure.dataset.costReport, { headers: { Accept: "application/json" } });
      if (answer.ok) draw(figure, await answer.json());
    } catch (error) {
      console.warn("cost chart: could not draw", error);
    }
  }

  // uPlot comes in its own script, which may still be loading when a tab brings this one.
  function whenUplot(then) {
    const started = Date.now();
    const check = () => {
      if (typeof uPlot !== "undefined") then();
      else if (Date.now() - started < WAIT_FOR_UPLOT_MS) window.setTimeout(check, 50);
    };
    check();
  }

  function drawAll() {
    const figures = [...document.querySelectorAll("figure[data-cost-report]:not([data-drawing])")];
    if (figures.length) whenUplot(() => figures.forEach(drawFigure));
  }

  window.pavedCostCharts = { drawAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
  document.addEventListener("htmx:afterSettle", drawAll);
})();
