// The geometry of the workflow graph: a node's size and the places of its ports, and the
// automatic layered layout used for the tasks without a saved position (each task one layer
// right of the furthest task it takes an output from).

export const NODE_WIDTH = 200;
const HEAD = 28; // the task's name
const ROW = 20; // one port
const COUNTS = 22; // the counts row of the read-only graph
const GAP_X = 80;
const GAP_Y = 30;
const MARGIN = 30;

export function nodeHeight(task, withCounts) {
  return HEAD + Math.max(1, task.inputs.length, task.outputs.length) * ROW + 8 + (withCounts ? COUNTS : 0);
}

// The centre of an input port (left edge) or an output port (right edge), relative to the node.
export function portPoint(task, side, key) {
  const list = side === "input" ? task.inputs : task.outputs;
  const index = Math.max(0, list.findIndex((p) => p.key === key));
  return { x: side === "input" ? 0 : NODE_WIDTH, y: HEAD + index * ROW + ROW / 2 };
}

// The tasks a task takes an output from.
export function upstreamOf(task) {
  return task.inputs.filter((i) => i.source && i.source.mode === "output").map((i) => i.source.task);
}

// {task: {x, y}} for every task: the saved position, else its place in the layered layout.
export function placeAll(tasks, saved, withCounts) {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const layer = new Map();
  const layerOf = (task, seen = new Set()) => {
    if (layer.has(task.name)) return layer.get(task.name);
    if (seen.has(task.name)) return 0; // a cycle (the server refuses them): stop here
    seen.add(task.name);
    const ups = upstreamOf(task).map((n) => byName.get(n)).filter(Boolean);
    const value = ups.length ? 1 + Math.max(...ups.map((u) => layerOf(u, seen))) : 0;
    layer.set(task.name, value);
    return value;
  };
  const nextY = new Map();
  const positions = {};
  for (const task of tasks) {
    const l = layerOf(task);
    const y = nextY.get(l) ?? MARGIN;
    nextY.set(l, y + nodeHeight(task, withCounts) + GAP_Y);
    const own = saved && saved[task.name];
    positions[task.name] = own ? { x: own.x, y: own.y } : { x: MARGIN + l * (NODE_WIDTH + GAP_X), y };
  }
  return positions;
}

// A wire from an output port at ``a`` to an input port at ``b``: a horizontal S curve.
export function wirePath(a, b) {
  const bend = Math.max(40, Math.abs(b.x - a.x) / 2);
  return `M ${a.x} ${a.y} C ${a.x + bend} ${a.y}, ${b.x - bend} ${b.y}, ${b.x} ${b.y}`;
}

// Whether an output of ``outputType`` may feed an input of ``inputType`` of a task of ``kind``:
// the same type, or for a reduce task a list of it (one value per run), as the server checks
// (runyard/validation.py).
export function connects(outputType, inputType, kind) {
  return outputType === inputType || (kind === "reduce" && inputType === `List[${outputType}]`);
}

// Why an output (``from``: {task, output}) cannot feed an input (``to``: {task, input}), or "".
export function refusal(from, to) {
  const where = `${from.task.name}.${from.output.key} \u2192 ${to.task.name}.${to.input.key}`;
  if (from.task.name === to.task.name) return `${where}: a task cannot take its own output`;
  if (!to.input.modes.includes("output")) return `${where}: input ${to.input.key} does not take the output of a task`;
  if (!connects(from.output.type, to.input.type, to.task.kind)) {
    return `${where}: input ${to.input.key} needs ${to.input.type}, output ${from.output.key} is ${from.output.type}`;
  }
  return "";
}

// A task as the graph draws it: its type's inputs (with their sources) and outputs; ``task``
// as the workflow JSON has it, with ``type`` its task type (as /api/task-types lists it).
export function graphTask(task) {
  const iface = (task.type && task.type.interface) || { inputs: [], outputs: [], kind: "unknown" };
  const sources = new Map(task.inputs.map((i) => [i.key, i.source]));
  return {
    name: task.name,
    typeName: task.task_type.name,
    kind: iface.kind,
    inputs: iface.inputs.map((p) => ({ key: p.key, type: p.type, modes: p.supported_modes || ["none", "fixed"], source: sources.get(p.key) })),
    outputs: iface.outputs.map((o) => ({ key: o.key, type: o.type })),
  };
}
