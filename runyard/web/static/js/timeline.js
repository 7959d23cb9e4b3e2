// The timeline of a workflow (#/workflows/NAME/timeline): one lane per worker (or per task),
// each job a bar from its claim to its end coloured by its state, the time it waited for a
// worker as a thin lighter lead-in; the hatched lane between bars is a worker's idle time.
// Wheel or the buttons zoom, dragging pans, a bar opens its job. Below: the jobs ended per
// minute over the last hour. Drawn as SVG here; live through the workflow's event stream.

import { api } from "./api.js";
import { append, clear, debounce, duration, enc, h, when } from "./dom.js";
import { watchEvents } from "./notices.js";

const SVG = "http://www.w3.org/2000/svg";
const LABEL_WIDTH = 150; // px of the lane names
const AXIS_HEIGHT = 24;
const ROW = 18; // px of one row of bars in a lane
const LANE_GAP = 8;
const MIN_SPAN = 100; // ms: the most one can zoom in
const NO_WORKER = "(waiting for a worker)";
const TICKS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
  .map((s) => s * 1000);

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

const ms = (iso) => (iso ? new Date(iso).getTime() : null);

// A job's bar: [start, end] on the chart (claimed to ended, or now), with its lead-in.
export function barOf(job, now) {
  const made = ms(job.created_at);
  const claimed = ms(job.claimed_at);
  const end = ms(job.ended_at) ?? now;
  return { job, made, claimed, started: ms(job.script_started_at), start: claimed ?? made, end: Math.max(end, claimed ?? made) };
}

// Lanes of bars, each bar on the first row of its lane where it overlaps nothing.
export function lanesOf(bars, by) {
  const lanes = new Map();
  for (const bar of [...bars].sort((a, b) => a.start - b.start)) {
    const key = (by === "task" ? bar.job.task : bar.job.worker) || NO_WORKER;
    if (!lanes.has(key)) lanes.set(key, []);
    const rows = lanes.get(key);
    let row = rows.findIndex((last) => last <= bar.start);
    if (row < 0) row = rows.push(0) - 1;
    rows[row] = bar.end;
    bar.row = row;
    bar.lane = key;
  }
  const names = [...lanes.keys()].sort((a, b) => (a === NO_WORKER) - (b === NO_WORKER) || a.localeCompare(b));
  return names.map((name) => ({ name, rows: lanes.get(name).length, bars: bars.filter((b) => b.lane === name) }));
}

function tip(bar) {
  const { job } = bar;
  const waited = job.claimed_at ? duration(job.created_at, job.claimed_at) : duration(job.created_at, null);
  return [
    `Job ${job.serial}: ${job.task}, run ${job.run} \u2014 ${job.state}${job.attempt > 1 ? ` (attempt ${job.attempt})` : ""}`,
    `worker: ${job.worker || "none yet"}`,
    `made ${when(job.created_at)}; waited ${waited}${job.claimed_at ? "" : " so far"}`,
    job.claimed_at ? `ran ${duration(job.script_started_at || job.claimed_at, job.ended_at)}${job.ended_at ? `, ended ${when(job.ended_at)}` : " so far"}` : "",
  ].filter(Boolean).join("\n");
}

function niceStep(span, width) {
  const want = span / Math.max(2, width / 110);
  return TICKS.find((t) => t >= want) || Math.ceil(want / 86400000) * 86400000;
}

function tickLabel(t, step) {
  const d = new Date(t);
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: step < 60000 ? "2-digit" : undefined, fractionalSecondDigits: step < 1000 ? 1 : undefined });
  return step >= 86400000 ? d.toLocaleDateString() : hm;
}

function drawBars(lanes, view, width) {
  const span = view.end - view.start;
  const x = (t) => LABEL_WIDTH + ((t - view.start) / span) * (width - LABEL_WIDTH);
  const clip = (t) => Math.min(width + 5, Math.max(LABEL_WIDTH - 5, x(t)));
  let y = AXIS_HEIGHT;
  const parts = [];
  for (const lane of lanes) {
    const height = lane.rows * ROW;
    parts.push(s("g", { class: "tl-lane", "data-lane": lane.name },
      s("rect", { class: "tl-idle", x: LABEL_WIDTH, y, width: width - LABEL_WIDTH, height }),
      s("text", { class: "tl-lane-name", x: 6, y: y + Math.min(height, ROW) / 2 + 4 }, lane.name.length > 22 ? `${lane.name.slice(0, 21)}\u2026` : lane.name, s("title", {}, lane.name)),
      lane.bars.filter((b) => b.end >= view.start && Math.min(b.made, b.start) <= view.end).map((bar) => {
        const top = y + bar.row * ROW + 2;
        const lead = bar.claimed !== null && bar.made < bar.claimed
          ? s("rect", { class: "tl-lead", x: clip(bar.made), y: top + ROW / 2 - 3, width: Math.max(0, clip(bar.claimed) - clip(bar.made)), height: 4 }) : null;
        const left = clip(bar.start);
        const scripted = bar.started !== null ? clip(bar.started) : left;
        return s("a", { href: `#/jobs/${bar.job.serial}`, class: `tl-bar s-${bar.job.state.toLowerCase()}${bar.claimed === null ? " unclaimed" : ""}`, "data-serial": bar.job.serial },
          s("title", {}, tip(bar)),
          lead,
          s("rect", { class: "tl-claimed", x: left, y: top, width: Math.max(2, clip(bar.end) - left), height: ROW - 4, rx: 2 }),
          bar.claimed !== null ? s("rect", { class: "tl-run", x: scripted, y: top, width: Math.max(2, clip(bar.end) - scripted), height: ROW - 4, rx: 2 }) : null);
      })));
    y += height + LANE_GAP;
  }
  const step = niceStep(span, width - LABEL_WIDTH);
  const ticks = [];
  for (let t = Math.ceil(view.start / step) * step; t <= view.end; t += step) {
    ticks.push(s("g", { class: "tl-tick" },
      s("line", { x1: x(t), x2: x(t), y1: AXIS_HEIGHT - 4, y2: y }),
      s("text", { x: x(t), y: AXIS_HEIGHT - 8 }, tickLabel(t, step))));
  }
  return { height: y, parts: [...ticks, ...parts] };
}

// The jobs ended per minute over the last hour, Failed ones on top in red.
function throughputChart(minutes) {
  const width = 600;
  const height = 120;
  const top = Math.max(1, ...minutes.map((m) => m.ended));
  const bw = width / minutes.length;
  const total = minutes.reduce((n, m) => n + m.ended, 0);
  const failed = minutes.reduce((n, m) => n + m.failed, 0);
  const bars = minutes.map((m, i) => {
    const done = ((m.ended - m.failed) / top) * (height - 16);
    const bad = (m.failed / top) * (height - 16);
    return s("g", { class: "tp-minute", "data-ended": m.ended },
      s("title", {}, `${when(m.minute)}: ${m.ended} ended${m.failed ? `, ${m.failed} failed` : ""}`),
      s("rect", { class: "tp-hit", x: i * bw, y: 0, width: bw, height }),
      s("rect", { class: "tp-done", x: i * bw + 1, y: height - done, width: bw - 2, height: done }),
      s("rect", { class: "tp-failed", x: i * bw + 1, y: height - done - bad, width: bw - 2, height: bad }));
  });
  return h("div", { class: "throughput" },
    h("h3", {}, `Jobs ended per minute, last hour: ${total}${failed ? ` (${failed} failed)` : ""}; most in a minute: ${top === 1 && !total ? 0 : top}`),
    s("svg", { class: "tp-svg", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": `${total} jobs ended in the last hour` }, bars),
    h("div", { class: "tp-axis muted" }, h("span", {}, "60 min ago"), h("span", {}, "30 min ago"), h("span", {}, "now")));
}

export function timelineView(main, [name], { notify }) {
  let data = null;
  let by = "worker";
  let view = null; // the shown time window {start, end} (ms); null: everything
  let alive = true;
  const svg = s("svg", { class: "tl-svg", role: "img", "aria-label": `Timeline of ${name}` });
  const chart = h("div", { class: "tl-chart" }, svg);
  const below = h("div", {});
  const cutNote = h("span", { class: "tl-cut muted" });
  const bySelect = h("select", { class: "tl-by", title: "One lane per worker or per task", onchange: () => { by = bySelect.value; draw(); } },
    h("option", { value: "worker" }, "Lanes: workers"), h("option", { value: "task" }, "Lanes: tasks"));
  const zoom = (factor, at) => {
    const full = fullWindow();
    const cur = view || full;
    const pivot = at ?? (cur.start + cur.end) / 2;
    const span = Math.max(MIN_SPAN, Math.min(full.end - full.start, (cur.end - cur.start) * factor));
    const start = Math.max(full.start, Math.min(pivot - (pivot - cur.start) * (span / (cur.end - cur.start)), full.end - span));
    view = { start, end: start + span };
    draw();
  };
  append(main,
    h("div", { class: "toolbar" }, h("a", { href: `#/workflows/${enc(name)}`, class: "back" }, `\u2190 ${name}`), h("h1", {}, `Timeline of ${name}`)),
    h("div", { class: "toolbar tl-tools" }, bySelect,
      h("button", { type: "button", class: "tl-zoom-in", title: "Zoom in (or the mouse wheel)", onclick: () => zoom(0.5) }, "+"),
      h("button", { type: "button", class: "tl-zoom-out", title: "Zoom out", onclick: () => zoom(2) }, "\u2212"),
      h("button", { type: "button", class: "tl-fit", title: "Show all", onclick: () => { view = null; draw(); } }, "Fit"),
      h("button", { type: "button", class: "tl-refresh", onclick: () => load() }, "Refresh"),
      h("span", { class: "grow" }), cutNote,
      h("span", { class: "tl-legend muted" }, h("span", { class: "tl-key lead" }), "waiting for a worker ", h("span", { class: "tl-key claimed" }), "claimed ", h("span", { class: "tl-key run" }), "running ", h("span", { class: "tl-key idle" }), "idle")),
    chart, below);

  // From the first bar's start to the last one's end, a little wider (an hour up to now
  // when there is no bar).
  function fullWindow() {
    const now = data ? ms(data.now) : Date.now();
    const bars = data ? data.jobs.map((j) => barOf(j, now)) : [];
    if (!bars.length) return { start: now - 3600000, end: now };
    const start = Math.min(...bars.map((b) => Math.min(b.made, b.start)));
    const end = Math.max(...bars.map((b) => b.end));
    const pad = Math.max(500, (end - start) * 0.02);
    return { start: start - pad, end: end + pad };
  }

  function draw() {
    if (!data) return;
    const width = Math.max(LABEL_WIDTH + 200, chart.clientWidth);
    const now = ms(data.now);
    const lanes = lanesOf(data.jobs.map((j) => barOf(j, now)), by);
    const shown = view || fullWindow();
    const { height, parts } = drawBars(lanes, shown, width);
    svg.dataset.span = String(Math.round(shown.end - shown.start)); // ms in view
    svg.setAttribute("width", width);
    svg.setAttribute("height", Math.max(height, AXIS_HEIGHT + 40));
    clear(svg).append(...parts);
    if (!lanes.length) svg.append(s("text", { class: "tl-empty", x: width / 2, y: AXIS_HEIGHT + 24 }, "No job has waited for or run on a worker yet."));
    cutNote.textContent = data.cut ? `The newest ${data.jobs.length} jobs; older ones are left out.` : `${data.jobs.length} jobs`;
    append(clear(below), throughputChart(data.throughput));
  }

  async function load() {
    try {
      const answer = await api("GET", `/api/workflows/${enc(name)}/timeline`);
      if (!alive) return;
      data = answer;
      draw();
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    }
  }

  chart.addEventListener("wheel", (event) => {
    if (!data) return;
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    const cur = view || fullWindow();
    const at = cur.start + ((event.clientX - box.left - LABEL_WIDTH) / (box.width - LABEL_WIDTH)) * (cur.end - cur.start);
    zoom(event.deltaY < 0 ? 0.8 : 1.25, at);
  }, { passive: false });

  let dragFrom = null;
  chart.addEventListener("pointerdown", (event) => {
    if (event.button === 0 && view && !event.target.closest("a")) dragFrom = { x: event.clientX, view };
  });
  const dropDrag = () => (dragFrom = null);
  window.addEventListener("pointerup", dropDrag);
  chart.addEventListener("pointermove", (event) => {
    if (!dragFrom) return;
    const full = fullWindow();
    const span = dragFrom.view.end - dragFrom.view.start;
    const shift = ((dragFrom.x - event.clientX) / (svg.clientWidth - LABEL_WIDTH)) * span;
    const start = Math.max(full.start, Math.min(dragFrom.view.start + shift, full.end - span));
    view = { start, end: start + span };
    draw();
  });

  const resized = new ResizeObserver(debounce(draw, 100));
  resized.observe(chart);
  const reload = debounce(load, 500);
  const stop = watchEvents(name, () => reload());
  load();
  return () => {
    alive = false;
    window.removeEventListener("pointerup", dropDrag);
    resized.disconnect();
    stop();
  };
}
