// The workflow editor: tasks as boxes with their inputs and outputs, each input's source
// (none, fixed, define_on_first, ui, or the output of another task of the same type; a
// reduce task's List[T] input takes a T output), adding a task from the task type list (its
// description and interface shown, and its documentation a click away, as for every task's
// type), deleting a task with its followers, starting and stopping. The server checks every change too (types, modes, cycles) and its message is
// shown. Above the boxes, the workflow graph (graph.js): the tasks as nodes and the output
// sources as wires, connected by dragging, disconnected, moved; its layout is saved.

import { api } from "./api.js";
import { confirmAction } from "./confirm.js";
import { workflowGraph } from "./graph.js";
import { connects, graphTask } from "./graphlayout.js";
import { append, clear, enc, h } from "./dom.js";
import { markdown } from "./markdown.js";
import { allows, gate, gateAll, levelOf, needsText } from "./session.js";
import { openDocumentation } from "./tasktypes.js";
import { actionButton, workflowActions } from "./workflows.js";

const MODE_LABELS = { none: "none", fixed: "fixed value", define_on_first: "asked the first time", ui: "asked every time", output: "output of a task" };

function typeKey(tt) {
  return `${tt.name}\u0000${tt.version}`;
}

function parseFixed(param, text) {
  if (param.type === "String") return text;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${param.key}: ${JSON.stringify(text)} is not a ${param.type} (write JSON)`);
  }
}

// The source editor of one input of a task of ``kind``: answers {row, read() -> source}.
function sourceEditor(param, source, upstream, kind) {
  const modes = [...(param.supported_modes && param.supported_modes.length ? param.supported_modes : ["none", "fixed"])];
  const candidates = upstream.flatMap((t) => t.outputs.filter((o) => connects(o.type, param.type, kind)).map((o) => ({ task: t.name, key: o.key })));
  const mode = h("select", { class: "source-mode", "aria-label": `Source of ${param.key}` }, modes.map((m) => h("option", { value: m, selected: source.mode === m }, MODE_LABELS[m] || m)));
  const output = h(
    "select",
    { class: "source-output", "aria-label": `Output for ${param.key}` },
    candidates.length ? candidates.map((c) => h("option", { value: `${c.task}\u0000${c.key}`, selected: source.task === c.task && source.key === c.key }, `${c.task} \u2192 ${c.key}`)) : h("option", { value: "" }, `no ${param.type} output upstream`),
  );
  const shownFixed = source.fixed_value ?? param.default;
  const fixed = h("input", { class: "source-fixed", "aria-label": `Value of ${param.key}`, value: shownFixed === undefined || shownFixed === null ? "" : param.type === "String" ? shownFixed : JSON.stringify(shownFixed) });
  const sync = () => {
    output.hidden = mode.value !== "output";
    fixed.hidden = mode.value !== "fixed";
  };
  mode.addEventListener("change", sync);
  sync();
  const row = h(
    "li",
    { class: "port input", "data-input": param.key },
    h("span", { class: "port-dot", "aria-hidden": "true" }),
    h("span", { class: "port-key" }, param.key),
    h("span", { class: "port-type" }, param.type),
    h("span", { class: "source" }, mode, output, fixed),
  );
  return {
    row,
    read() {
      if (mode.value === "output") {
        if (!output.value) throw new Error(`${param.key}: no ${param.type} output to connect upstream`);
        const [task, key] = output.value.split("\u0000");
        return { mode: "output", task, key };
      }
      if (mode.value === "fixed") return { mode: "fixed", fixed_value: parseFixed(param, fixed.value) };
      return { mode: mode.value };
    },
  };
}

export function editorView(main, [name], { notify }) {
  let alive = true;
  let types = new Map(); // "name\0version" -> task type
  let byName = new Map(); // task type name -> newest version
  let chosenType = ""; // the task type chosen in "Add a task" (kept when it is drawn again)
  let level; // the user's level on the workflow: below edit, nothing can be changed here
  const heading = h("h1", {}, `Edit ${name}`);
  const state = h("span", { class: "wf-state" });
  const actions = h("span", { class: "actions" });
  const remarks = h("div", { class: "remarks-box" });
  const canvas = h("div", { class: "editor-canvas" });
  const addBox = h("section", { class: "add-task panel" });
  let shown = []; // the tasks as last drawn, with their types
  const graph = workflowGraph({ editable: true, notify, onConnect: connectInput, onDisconnect: disconnectInput, onLayout: saveLayout });
  main.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/workflows", class: "back" }, "\u2190 Workflows"), heading, state, actions, h("span", { class: "grow" }), h("a", { href: `#/workflows/${enc(name)}`, class: "button runs-link" }, "Runs table")),
    remarks,
    graph.element,
    h("div", { class: "editor-layout" }, canvas, addBox),
  );

  async function load() {
    let workflow;
    try {
      const [wf, all, mine] = await Promise.all([
        api("GET", `/api/workflows/${enc(name)}`),
        types.size ? null : api("GET", "/api/task-types"),
        levelOf(name).catch(() => undefined),
      ]);
      workflow = wf;
      level = mine;
      if (all) {
        types = new Map(all.map((tt) => [typeKey(tt), tt]));
        byName = new Map();
        for (const tt of all) if (!byName.has(tt.name)) byName.set(tt.name, tt);
      }
    } catch (exc) {
      notify(exc.message, "error");
      return;
    }
    if (!alive) return;
    state.className = `wf-state wf-${workflow.state.toLowerCase()}`;
    state.textContent = workflow.locked ? `${workflow.state}, locked` : workflow.state;
    append(clear(actions), workflowActions(workflow).map((a) => actionButton(name, a, { notify, after: load, level })));
    append(clear(remarks), workflow.remarks ? markdown(workflow.remarks) : null);
    const editable = workflow.state === "Draft" && !workflow.locked;
    const tasks = workflow.tasks.map((t) => {
      const tt = types.get(typeKey(t.task_type)) || byName.get(t.task_type.name);
      return { ...t, type: tt, outputs: (tt && tt.interface.outputs) || [] };
    });
    shown = tasks;
    graph.draw(tasks.map(graphTask), workflow.layout);
    append(
      clear(canvas),
      tasks.length ? null : h("p", { class: "empty" }, "No task yet: add one from the task types on the right."),
      level !== undefined && !allows(level, "edit") ? h("p", { class: "muted editor-note needs-note" }, needsText("edit", level)) : null,
      editable ? null : h("p", { class: "muted editor-note" }, workflow.locked ? "The workflow is locked." : "Stop the workflow (back to Draft) to change its tasks' inputs or delete tasks; tasks can be added while it runs."),
      tasks.map((t, i) => taskBox(t, tasks.slice(0, i), editable)),
    );
    drawAdd(tasks, !workflow.locked && workflow.state !== "Obsolete");
  }

  // -- the graph's edits: each is the same call as the boxes', so the server checks it -------
  function inputsOf(task) {
    const params = new Map(((task.type && task.type.interface.inputs) || []).map((p) => [p.key, p]));
    return task.inputs.filter((i) => params.has(i.key));
  }

  async function putInputs(taskName, change, done) {
    const task = shown.find((t) => t.name === taskName);
    const inputs = inputsOf(task).map((i) => ({ key: i.key, source: change(i) }));
    try {
      await api("PUT", `/api/workflows/${enc(name)}/tasks/${enc(taskName)}`, { json: { inputs } });
      notify(done);
    } catch (exc) {
      notify(exc.message, "error");
    }
    load();
  }

  function connectInput(taskName, key, source) {
    const change = (i) => (i.key === key ? { mode: "output", ...source } : i.source);
    return putInputs(taskName, change, `Connected ${source.task}.${source.key} \u2192 ${taskName}.${key}`);
  }

  function disconnectInput(taskName, key) {
    const task = shown.find((t) => t.name === taskName);
    const param = task.type.interface.inputs.find((p) => p.key === key);
    const change = (i) => (i.key === key ? unconnected(param) : i.source);
    return putInputs(taskName, change, `Disconnected ${taskName}.${key}`);
  }

  async function saveLayout(positions) {
    try {
      await api("PUT", `/api/workflows/${enc(name)}/layout`, { json: { positions } });
    } catch (exc) {
      notify(exc.message, "error");
    }
  }

  function taskBox(task, upstream, editable) {
    const params = new Map(((task.type && task.type.interface.inputs) || []).map((p) => [p.key, p]));
    const kind = task.type && task.type.interface.kind;
    const editors = task.inputs.filter((i) => params.has(i.key)).map((i) => sourceEditor(params.get(i.key), i.source, upstream, kind));
    const save = h("button", { type: "button", class: "save-inputs primary", disabled: !editable }, "Save inputs");
    save.addEventListener("click", async () => {
      let inputs;
      try {
        inputs = task.inputs.filter((i) => params.has(i.key)).map((i, n) => ({ key: i.key, source: editors[n].read() }));
      } catch (exc) {
        notify(exc.message, "error");
        return;
      }
      try {
        await api("PUT", `/api/workflows/${enc(name)}/tasks/${enc(task.name)}`, { json: { inputs } });
        notify(`Task ${task.name}: inputs saved`);
      } catch (exc) {
        notify(exc.message, "error");
      }
      load();
    });
    const remove = h("button", { type: "button", class: "delete-task danger", disabled: !editable }, "Delete");
    remove.addEventListener("click", async () => {
      const sure = await confirmAction({
        question: `Delete task ${task.name}?`,
        consequence: `Task ${task.name}, the tasks that take inputs from it, and all their jobs are deleted. This cannot be undone.`,
        action: "Delete task",
      });
      if (!sure) return;
      try {
        const answer = await api("DELETE", `/api/workflows/${enc(name)}/tasks/${enc(task.name)}?followers=true`);
        notify(`Deleted ${answer.deleted.join(", ")}`);
      } catch (exc) {
        notify(exc.message, "error");
      }
      load();
    });
    return h(
      "div",
      { class: `task-box kind-${task.type ? task.type.interface.kind : "unknown"}`, "data-task": task.name },
      h(
        "div",
        { class: "task-head" },
        h("strong", {}, task.name),
        h("span", { class: "muted" }, ` ${task.task_type.name} ${task.task_type.version}`),
        h("button", { type: "button", class: "task-docs link", title: `Documentation of ${task.task_type.name}`, "aria-label": `Documentation of ${task.task_type.name}`, onclick: () => openDocumentation(task.task_type.name, task.task_type.version, { notify }) }, "?"),
      ),
      h("ul", { class: "ports inputs" }, editors.length ? editors.map((e) => e.row) : h("li", { class: "muted" }, "no inputs")),
      h("ul", { class: "ports outputs" }, task.outputs.map((o) => h("li", { class: "port output", "data-output": o.key }, h("span", { class: "port-key" }, o.key), h("span", { class: "port-type" }, o.type), h("span", { class: "port-dot", "aria-hidden": "true" })))),
      gateAll(h("div", { class: "task-actions" }, editors.length ? save : null, remove), "edit", level),
    );
  }

  function drawAdd(tasks, allowed) {
    const choices = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    const select = h("select", { class: "task-type", "aria-label": "Task type" }, choices.map((tt) => h("option", { value: tt.name, selected: tt.name === chosenType }, `${tt.display_name || tt.name} (${tt.name} ${tt.version})`)));
    const taskName = h("input", { class: "task-name", "aria-label": "Task name", placeholder: "name of the task" });
    const about = h("div", { class: "task-type-about" });
    const inputsBox = h("ul", { class: "ports inputs" });
    let editors = [];
    const show = () => {
      const tt = byName.get(select.value);
      if (!tt) return;
      chosenType = tt.name;
      taskName.value = uniqueName(tt.display_name || tt.name.split(".").pop(), tasks);
      append(
        clear(about),
        h("p", {}, tt.summary || h("span", { class: "muted" }, "no description")),
        h("p", { class: "muted" }, `${tt.interface.kind}${tt.dependencies.length ? ` \u00B7 needs ${tt.dependencies.map((d) => d.name).join(", ")}` : ""}${tt.author ? ` \u00B7 by ${tt.author}` : ""}`),
        h("button", { type: "button", class: "docs-button", onclick: () => openDocumentation(tt.name, tt.version, { notify }) }, "Documentation"),
        h("div", { class: "interface" },
          h("h4", {}, "Outputs"),
          h("ul", {}, tt.interface.outputs.map((o) => h("li", {}, h("code", {}, o.key), ` ${o.type}`, o.description ? h("span", { class: "muted" }, ` \u2014 ${o.description}`) : ""))),
        ),
      );
      const kind = tt.interface.kind;
      editors = tt.interface.inputs.map((p) => {
        const start = p.supported_modes && p.supported_modes.includes("output") && tasks.some((t) => t.outputs.some((o) => connects(o.type, p.type, kind)))
          ? { mode: "output", ...lastOutput(p, tasks, kind) }
          : p.default !== undefined ? { mode: "fixed", fixed_value: p.default } : { mode: (p.supported_modes && p.supported_modes[0]) || "none" };
        const editor = sourceEditor(p, start, tasks, kind);
        if (p.description) editor.row.append(h("span", { class: "muted description" }, p.description));
        return editor;
      });
      append(clear(inputsBox), editors.length ? editors.map((e) => e.row) : h("li", { class: "muted" }, "no inputs"));
    };
    select.addEventListener("change", show);
    const form = h(
      "form",
      { class: "add-task-form" },
      h("h2", {}, "Add a task"),
      h("label", {}, "Task type ", select),
      about,
      h("label", {}, "Name ", taskName),
      h("h4", {}, "Inputs"),
      inputsBox,
      h("button", { type: "submit", class: "primary add-task-button", disabled: !allowed }, "Add task"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const tt = byName.get(select.value);
      let inputs;
      try {
        inputs = tt.interface.inputs.map((p, n) => ({ key: p.key, source: editors[n].read() }));
      } catch (exc) {
        notify(exc.message, "error");
        return;
      }
      try {
        const answer = await api("POST", `/api/workflows/${enc(name)}/tasks`, { json: { name: taskName.value.trim(), task_type: { name: tt.name, version: tt.version }, inputs } });
        notify(`Task ${answer.name} added${answer.jobs_created ? ` with ${answer.jobs_created} jobs` : ""}`);
      } catch (exc) {
        notify(exc.message, "error");
      }
      load();
    });
    gate(form.querySelector(".add-task-button"), "edit", level);
    append(clear(addBox), form);
    show();
  }

  load();
  return () => {
    alive = false;
  };
}

// The source an input takes when its wire is removed: none where it may, else its default.
function unconnected(param) {
  const modes = (param.supported_modes || ["none", "fixed"]).filter((m) => m !== "output");
  if (modes.includes("none")) return { mode: "none" };
  if (modes.includes("fixed") && param.default !== undefined) return { mode: "fixed", fixed_value: param.default };
  return { mode: modes[0] || "none" };
}

function uniqueName(base, tasks) {
  const taken = new Set(tasks.map((t) => t.name));
  let candidate = base;
  for (let n = 2; taken.has(candidate); n += 1) candidate = `${base} ${n}`;
  return candidate;
}

function lastOutput(param, tasks, kind) {
  for (let i = tasks.length - 1; i >= 0; i -= 1) {
    const found = tasks[i].outputs.find((o) => connects(o.type, param.type, kind));
    if (found) return { task: tasks[i].name, key: found.key };
  }
  return {};
}

// "New workflow…": a dialog that creates an empty Draft workflow and opens its editor.
export function newWorkflowDialog({ notify }) {
  const dialog = h("dialog", { class: "new-workflow-dialog" });
  const nameInput = h("input", { name: "name", required: true, "aria-label": "Workflow name" });
  const remarks = h("textarea", { name: "remarks", rows: 5, "aria-label": "Remarks (Markdown)" });
  const message = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "new-run-form" },
    h("h2", {}, "New workflow"),
    h("label", {}, "Name", nameInput),
    h("label", {}, "Remarks (Markdown: *emphasis*, `code`, lists, links)", remarks),
    message,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), h("button", { type: "submit", class: "primary create-workflow" }, "Create")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("POST", "/api/workflows", { json: { name: nameInput.value, remarks: remarks.value } });
      dialog.close();
      notify(`Workflow ${made.name} created`);
      location.hash = `#/workflows/${enc(made.name)}/edit`;
    } catch (exc) {
      message.textContent = exc.message;
    }
  });
  dialog.addEventListener("close", () => dialog.remove());
  append(dialog, form);
  document.body.append(dialog);
  dialog.showModal();
}
