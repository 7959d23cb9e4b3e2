// Charts of the study table, drawn by uPlot (vendored: ../vendor/uplot, see its README):
// a histogram of a numeric column and a scatter of two numeric columns.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { h } from "./dom.js";

const CSS = "/ui/static/vendor/uplot/uPlot.min.css";
const HEIGHT = 260;
const COLOR = "#2b6cb0";

// uPlot's stylesheet, linked once (the page's rules allow only its own files).
function linkCss() {
  if (document.querySelector(`link[href="${CSS}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href: CSS }));
}

function width(container) {
  return Math.max(240, Math.min(640, container.clientWidth || 480));
}

// The bins of ``values`` (finite numbers): about the square root of their count (5 to 40)
// of equal width; {starts (their middles), counts, size, lo, hi}.
export function bins(values) {
  const n = values.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const count = Math.min(40, Math.max(5, Math.ceil(Math.sqrt(n))));
  const size = hi > lo ? (hi - lo) / count : 1;
  const counts = new Array(count).fill(0);
  for (const v of values) counts[Math.min(count - 1, Math.floor((v - lo) / size))] += 1;
  const starts = counts.map((_, i) => lo + (i + 0.5) * size);
  return { starts, counts, size, lo, hi: lo + count * size };
}

// A histogram of ``values`` (numbers) in ``container``; answers a function that removes it.
export function histogram(container, values, label) {
  linkCss();
  const { starts, counts, lo, hi } = bins(values);
  const chart = new uPlot(
    {
      title: `Histogram of ${label} (${values.length} runs)`,
      width: width(container),
      height: HEIGHT,
      legend: { show: false },
      scales: { x: { time: false, range: () => [lo, hi] }, y: { range: (_, min, max) => [0, Math.max(1, max)] } },
      axes: [{ label }, { label: "runs" }],
      series: [
        {},
        { label: "runs", stroke: COLOR, fill: "rgba(43, 108, 176, 0.35)", paths: uPlot.paths.bars({ size: [0.95, Infinity] }), points: { show: false } },
      ],
    },
    [starts, counts],
    container,
  );
  return () => chart.destroy();
}

// A scatter of the pairs (xs[i], ys[i]) in ``container``; answers a function that removes it.
export function scatter(container, xs, ys, xLabel, yLabel) {
  linkCss();
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]); // uPlot wants x in order
  const chart = new uPlot(
    {
      title: `${yLabel} against ${xLabel} (${xs.length} runs)`,
      width: width(container),
      height: HEIGHT,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, { label: yLabel }],
      series: [{}, { label: yLabel, stroke: COLOR, paths: () => null, points: { show: true, size: 6, fill: COLOR } }],
    },
    [order.map((i) => xs[i]), order.map((i) => ys[i])],
    container,
  );
  return () => chart.destroy();
}
