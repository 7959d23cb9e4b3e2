// The workflow graph (SVG): tasks as nodes with their input ports (left) and output ports
// (right), and each input whose source is the output of a task as a wire between them.
// Editable: drag from an output port to an input port to connect it (a type that does not fit
// is refused here with the reason, and the server checks again), select a wire and press
// Delete (or the Disconnect button) to disconnect it, drag a node (or focus it and use the
// arrow keys) to move it; the positions are saved with the workflow. Read-only (the runs
// page): each node shows its task's live jobs by state, or one run's job state.
// Both: zoom (wheel, buttons) and pan (drag the background).

import { ICONS, STATES, h } from "./dom.js";
import { NODE_WIDTH, nodeHeight, placeAll, portPoint, refusal, wirePath } from "./graphlayout.js";

const SVG = "http://www.w3.org/2000/svg";
const STEP = 10; // px an arrow key moves a node (Shift: five times)
const SAVE_AFTER_MS = 600; // keyboard moves are saved once the keys rest

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined && value !== null && value !== false) el.setAttribute(key, String(value));
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

// ``editable``: connect, disconnect and move; callbacks answer promises:
// onConnect(task, inputKey, {task, key}), onDisconnect(task, inputKey), onLayout(positions).
export function workflowGraph({ editable = false, notify, onConnect, onDisconnect, onLayout, tools: extra = [] }) {
  let tasks = [];
  let byName = new Map();
  let positions = {};
  let counts = null; // {task: {state: n}} (read-only graph)
  let run = null; // {name, jobs: {task: {state}}}: one run's jobs
  let view = { x: 0, y: 0, zoom: 1 };
  let selectedWire = null; // "task\0input"
  let saveTimer = null;
  const withCounts = !editable;

  const wires = s("g", { class: "graph-wires" });
  const nodes = s("g", { class: "graph-nodes" });
  const ghost = s("path", { class: "graph-ghost", d: "" });
  const viewport = s("g", { class: "graph-viewport" }, wires, nodes, ghost);
  const svg = s("svg", { class: "graph-svg", role: "group", "aria-label": editable ? "Workflow graph: drag from an output to an input to connect" : "Workflow graph" }, viewport);
  const disconnect = h("button", { type: "button", class: "graph-disconnect", disabled: true, hidden: !editable, onclick: () => removeWire() }, "Disconnect");
  const runNote = h("span", { class: "graph-run muted" });
  const zoomBy = (f) => setZoom(view.zoom * f, svg.clientWidth / 2, svg.clientHeight / 2);
  const tools = h(
    "div",
    { class: "graph-tools" },
    h("button", { type: "button", class: "graph-zoom-in", title: "Zoom in", "aria-label": "Zoom in", onclick: () => zoomBy(1.25) }, "+"),
    h("button", { type: "button", class: "graph-zoom-out", title: "Zoom out", "aria-label": "Zoom out", onclick: () => zoomBy(0.8) }, "\u2212"),
    h("button", { type: "button", class: "graph-fit", onclick: () => fit() }, "Fit"),
    disconnect,
    runNote,
    extra,
  );
  const element = h("div", { class: `workflow-graph${editable ? " editable" : " read-only"}` }, tools, svg);

  function draw(newTasks, layout) {
    tasks = newTasks;
    byName = new Map(tasks.map((t) => [t.name, t]));
    positions = placeAll(tasks, { ...(layout && layout.positions), ...keptPositions() }, withCounts);
    if (selectedWire && !wireExists(selectedWire)) selectWire(null);
    render();
  }

  function keptPositions() {
    const kept = {};
    for (const name of Object.keys(positions)) if (byName.has(name)) kept[name] = positions[name];
    return kept;
  }

  function render() {
    nodes.replaceChildren(...tasks.map(node));
    renderWires();
    applyView();
  }

  function node(task) {
    const p = positions[task.name];
    const height = nodeHeight(task, withCounts);
    const job = run && run.jobs[task.name];
    const state = job ? job.state.toLowerCase() : run ? "none" : "";
    const ports = [
      ...task.inputs.map((i) => port(task, "input", i)),
      ...task.outputs.map((o) => port(task, "output", o)),
    ];
    const label = `${task.name} (${task.typeName}); ${job ? `job ${job.state}` : run ? "no job in this run" : summaryText(counts && counts[task.name])}`;
    return s(
      "g",
      { class: `graph-node kind-${task.kind}${state ? ` s-${state}` : ""}`, "data-task": task.name, transform: `translate(${p.x} ${p.y})`, tabindex: 0, role: "button", "aria-label": label },
      s("title", {}, label),
      s("rect", { class: "graph-box", width: NODE_WIDTH, height, rx: 6 }),
      s("text", { class: "graph-name", x: 10, y: 19 }, clip(task.name, 24)),
      ports,
      withCounts ? countsRow(task, height) : null,
    );
  }

  function port(task, side, p) {
    const at = portPoint(task, side, p.key);
    const labelX = side === "input" ? at.x + 10 : at.x - 10;
    return s(
      "g",
      { class: `graph-port ${side}`, "data-task": task.name, "data-key": p.key },
      s("title", {}, `${p.key}: ${p.type}`),
      s("circle", { cx: at.x, cy: at.y, r: 6 }),
      s("text", { x: labelX, y: at.y + 4, "text-anchor": side === "input" ? "start" : "end" }, clip(p.key, 14), s("tspan", { class: "graph-type" }, ` ${clip(p.type, 10)}`)),
    );
  }

  function countsRow(task, height) {
    const y = height - 8;
    if (run) {
      const job = run.jobs[task.name];
      return s("text", { class: "graph-counts", x: 10, y }, job ? `${ICONS[job.state] || ""} ${job.state}` : "no job");
    }
    const byState = (counts && counts[task.name]) || {};
    const shown = STATES.filter((st) => byState[st]);
    return s(
      "text",
      { class: "graph-counts", x: 10, y },
      shown.length ? shown.map((st) => s("tspan", { class: `s-${st.toLowerCase()}`, "data-state": st }, `${ICONS[st]} ${byState[st]}  `)) : "no jobs",
    );
  }

  function summaryText(byState) {
    const shown = STATES.filter((st) => byState && byState[st]);
    return shown.length ? shown.map((st) => `${byState[st]} ${st}`).join(", ") : "no jobs";
  }

  function renderWires() {
    const paths = [];
    for (const task of tasks) {
      for (const input of task.inputs) {
        const src = input.source;
        if (!src || src.mode !== "output" || !byName.has(src.task)) continue;
        const from = byName.get(src.task);
        const a = portPoint(from, "output", src.key);
        const b = portPoint(task, "input", input.key);
        const pa = positions[from.name];
        const pb = positions[task.name];
        const d = wirePath({ x: pa.x + a.x, y: pa.y + a.y }, { x: pb.x + b.x, y: pb.y + b.y });
        const id = `${task.name}\u0000${input.key}`;
        const label = `${src.task}.${src.key} \u2192 ${task.name}.${input.key}`;
        paths.push(
          s(
            "g",
            { class: `graph-wire${id === selectedWire ? " selected" : ""}`, "data-from": `${src.task}.${src.key}`, "data-to": `${task.name}.${input.key}`, "data-id": id, tabindex: editable ? 0 : undefined, "aria-label": label },
            s("title", {}, label),
            s("path", { class: "graph-wire-hit", d }),
            s("path", { class: "graph-wire-line", d }),
          ),
        );
      }
    }
    wires.replaceChildren(...paths);
  }

  function wireExists(id) {
    const [task, key] = id.split("\u0000");
    const t = byName.get(task);
    return Boolean(t && t.inputs.some((i) => i.key === key && i.source && i.source.mode === "output"));
  }

  function selectWire(id) {
    selectedWire = id;
    disconnect.disabled = !id;
    for (const w of wires.children) w.classList.toggle("selected", w.dataset.id === id);
  }

  async function removeWire() {
    if (!selectedWire) return;
    const [task, key] = selectedWire.split("\u0000");
    selectWire(null);
    await onDisconnect(task, key);
  }

  // -- view: zoom and pan ------------------------------------------------------------------
  function applyView() {
    viewport.setAttribute("transform", `translate(${view.x} ${view.y}) scale(${view.zoom})`);
    element.style.setProperty("--graph-zoom", String(view.zoom));
  }

  function setZoom(zoom, cx, cy) {
    const z = Math.min(3, Math.max(0.25, zoom));
    view = { zoom: z, x: cx - ((cx - view.x) * z) / view.zoom, y: cy - ((cy - view.y) * z) / view.zoom };
    applyView();
  }

  function fit() {
    if (!tasks.length) return;
    const xs = tasks.map((t) => positions[t.name].x);
    const ys = tasks.map((t) => positions[t.name].y);
    const right = Math.max(...tasks.map((t) => positions[t.name].x + NODE_WIDTH));
    const bottom = Math.max(...tasks.map((t) => positions[t.name].y + nodeHeight(t, withCounts)));
    const left = Math.min(...xs) - 20;
    const top = Math.min(...ys) - 20;
    const zoom = Math.min(1, Math.max(0.25, Math.min(svg.clientWidth / (right - left + 20), svg.clientHeight / (bottom - top + 20))));
    view = { zoom, x: -left * zoom, y: -top * zoom };
    applyView();
  }

  function toGraph(event) {
    const box = svg.getBoundingClientRect();
    return { x: (event.clientX - box.left - view.x) / view.zoom, y: (event.clientY - box.top - view.y) / view.zoom };
  }

  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = svg.getBoundingClientRect();
    setZoom(view.zoom * Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });

  // -- pointer: connect, move, select, pan ------------------------------------------------
  svg.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const out = event.target.closest(".graph-port.output");
    const wire = event.target.closest(".graph-wire");
    const nodeEl = event.target.closest(".graph-node");
    if (out && editable) return follow(event, wireDrag(out));
    if (wire && editable) {
      selectWire(wire.dataset.id);
      wire.focus();
      return;
    }
    if (nodeEl && editable) return follow(event, nodeDrag(nodeEl));
    if (!nodeEl) return follow(event, panDrag(event));
  });

  // Calls the drag's move(event) until the pointer is released, then its end(event).
  function follow(event, drag) {
    event.preventDefault();
    const move = (e) => drag.move(e);
    const up = (e) => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      drag.end(e);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  function panDrag(start) {
    const from = { x: start.clientX - view.x, y: start.clientY - view.y };
    selectWire(null);
    return {
      move(e) {
        view = { ...view, x: e.clientX - from.x, y: e.clientY - from.y };
        applyView();
      },
      end() {},
    };
  }

  function nodeDrag(nodeEl) {
    const name = nodeEl.dataset.task;
    const start = { ...positions[name] };
    let grab = null;
    let moved = false;
    nodeEl.focus();
    return {
      move(e) {
        const at = toGraph(e);
        grab = grab || at;
        positions[name] = { x: Math.round(start.x + at.x - grab.x), y: Math.round(start.y + at.y - grab.y) };
        moved = true;
        nodeEl.setAttribute("transform", `translate(${positions[name].x} ${positions[name].y})`);
        renderWires();
      },
      end() {
        if (moved) saveLayout();
      },
    };
  }

  function wireDrag(out) {
    const from = byName.get(out.dataset.task);
    const output = from.outputs.find((o) => o.key === out.dataset.key);
    const p = positions[from.name];
    const a = portPoint(from, "output", output.key);
    const origin = { x: p.x + a.x, y: p.y + a.y };
    element.classList.add("connecting");
    return {
      move(e) {
        ghost.setAttribute("d", wirePath(origin, toGraph(e)));
      },
      end(e) {
        ghost.setAttribute("d", "");
        element.classList.remove("connecting");
        const target = document.elementFromPoint(e.clientX, e.clientY);
        const inp = target && target.closest && target.closest(".graph-port.input");
        if (inp) connect({ task: from, output }, inp);
      },
    };
  }

  async function connect(from, inp) {
    const task = byName.get(inp.dataset.task);
    const input = task.inputs.find((i) => i.key === inp.dataset.key);
    const why = refusal(from, { task, input });
    if (why) {
      notify(`Not connected: ${why}`, "error");
      return;
    }
    await onConnect(task.name, input.key, { task: from.task.name, key: from.output.key });
  }

  // -- keyboard ----------------------------------------------------------------------------
  svg.addEventListener("keydown", (event) => {
    const wire = event.target.closest && event.target.closest(".graph-wire");
    if (wire && editable && (event.key === "Delete" || event.key === "Backspace")) {
      event.preventDefault();
      selectWire(wire.dataset.id);
      removeWire();
      return;
    }
    const nodeEl = event.target.closest && event.target.closest(".graph-node");
    const delta = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (!nodeEl || !delta || !editable) return;
    event.preventDefault();
    const name = nodeEl.dataset.task;
    const step = event.shiftKey ? STEP * 5 : STEP;
    positions[name] = { x: positions[name].x + delta[0] * step, y: positions[name].y + delta[1] * step };
    nodeEl.setAttribute("transform", `translate(${positions[name].x} ${positions[name].y})`);
    renderWires();
    clearTimeout(saveTimer);
    saveTimer = setTimeout(saveLayout, SAVE_AFTER_MS);
  });
  svg.addEventListener("focusin", (event) => {
    const wire = event.target.closest && event.target.closest(".graph-wire");
    if (wire && editable) selectWire(wire.dataset.id);
  });

  function saveLayout() {
    clearTimeout(saveTimer);
    const saved = {};
    for (const t of tasks) saved[t.name] = positions[t.name];
    onLayout(saved);
  }

  return {
    element,
    draw,
    fit,
    setCounts(newCounts) {
      counts = newCounts;
      if (!run) render();
    },
    setRun(picked) {
      run = picked;
      runNote.textContent = picked ? `Run ${picked.name}: its jobs' states` : "Live jobs of each task by state";
      render();
    },
  };
}

function clip(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}\u2026` : text;
}
