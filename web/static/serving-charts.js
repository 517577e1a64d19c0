// A deployment's charts: latency (p50, p99), throughput and errors per minute and version,
// from the metrics API, redrawn every few seconds. The page also reloads when what the
// deployment serves changes (a deploy finished, a rollback by the canary's judge).
// Without this script (or without uPlot) the page shows the same figures as tables.
"use strict";

const REDRAW_EVERY_MS = 5000;
const CHART_HEIGHT = 220;
const COLOURS = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#5c940d"];

// One column per version and minute, null where a version answered nothing that minute.
function arrange(points) {
  const seconds = (point) => Date.parse(point.minute) / 1000;
  const minutes = [...new Set(points.map(seconds))].sort((a, b) => a - b);
  const versions = [...new Set(points.map((point) => point.version))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const found = new Map(points.map((point) => [`${point.version}@${seconds(point)}`, point]));
  const column = (version, field) =>
    minutes.map((minute) => {
      const point = found.get(`${version}@${minute}`);
      return point ? point[field] : null;
    });
  return { minutes, versions, column };
}

// What each chart draws: its series (a version and a field) and its unit.
function chartSpecs(versions) {
  const colour = (index) => COLOURS[index % COLOURS.length];
  const latency = [];
  versions.forEach((version, index) => {
    latency.push({ label: `v${version} p50`, version, field: "p50_ms", stroke: colour(index) });
    latency.push({
      label: `v${version} p99`, version, field: "p99_ms", stroke: colour(index), dash: [6, 4],
    });
  });
  const each = (field) =>
    versions.map((version, index) => ({ label: `v${version}`, version, field, stroke: colour(index) }));
  return {
    latency: { unit: "ms", series: latency },
    throughput: { unit: "requests / min", series: each("requests") },
    errors: { unit: "errors / min", series: each("errors") },
  };
}

function lastMinutes(count) {
  const now = Date.now() / 1000;
  return [now - count * 60, now];
}

function drawCharts(section, points, charts) {
  const { minutes, versions, column } = arrange(points);
  const shape = versions.join(",");
  const specs = chartSpecs(versions);
  section.querySelectorAll("[data-chart]").forEach((holder) => {
    const name = holder.dataset.chart;
    const spec = specs[name];
    const data = [minutes, ...spec.series.map((series) => column(series.version, series.field))];
    const width = Math.max(holder.clientWidth, 300);
    const drawn = charts.get(name);
    if (drawn && drawn.shape === shape) {
      if (drawn.plot.width !== width) drawn.plot.setSize({ width, height: CHART_HEIGHT });
      drawn.plot.setData(data);
      return;
    }
    if (drawn) drawn.plot.destroy();
    const options = {
      width,
      height: CHART_HEIGHT,
      scales: {
        // The whole window, not just the minutes that had requests; counts start at zero.
        x: { time: true, range: () => lastMinutes(Number(section.dataset.minutes)) },
        y: { range: (plot, low, high) => [0, high > 0 ? high * 1.1 : 1] },
      },
      series: [
        {},
        ...spec.series.map((series) => ({
          label: series.label, stroke: series.stroke, width: 2, dash: series.dash, points: { show: true },
        })),
      ],
      axes: [{}, { label: spec.unit }],
    };
    charts.set(name, { shape, plot: new uPlot(options, data, holder) });
  });
}

async function redraw(section, charts) {
  const answer = await fetch(section.dataset.metrics, { headers: { Accept: "application/json" } });
  if (answer.ok) drawCharts(section, await answer.json(), charts);
}

function isTyping() {
  const active = document.activeElement;
  return active !== null && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName);
}

// What serves changed since the page was made: show it (unless someone is filling a form).
async function reloadWhenChanged(section) {
  const answer = await fetch(section.dataset.deployment, { headers: { Accept: "application/json" } });
  if (!answer.ok) return;
  const deployment = await answer.json();
  if (Date.parse(deployment.updated_at) !== Date.parse(section.dataset.updated) && !isTyping()) {
    window.location.reload();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("serving-charts");
  if (!section) return;
  const canDraw = typeof uPlot !== "undefined";
  const charts = new Map();
  if (canDraw) section.hidden = false;
  const tick = async () => {
    try {
      if (canDraw) await redraw(section, charts);
      await reloadWhenChanged(section);
    } catch (error) {
      console.warn("serving charts: could not refresh", error);
    }
  };
  tick();
  window.setInterval(tick, REDRAW_EVERY_MS);
});
