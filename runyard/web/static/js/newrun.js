// New Run: start a run of a workflow at one of its source tasks, with a name. A source task
// that asks the user (an interactive task type) gets the form of its task type's outputs
// (forms.js, as for a Waiting interactive job; files, folders and images chosen in the User
// Data browser): every output is required, and the run starts Done at its source with those
// values. Any other source task starts a job for a worker (or a Waiting job when it asks for
// inputs: its form is then in the job's panel).

import { api } from "./api.js";
import { append, clear, enc, h } from "./dom.js";
import { parameterForm } from "./forms.js";

// The field a refusal of New Run names ("output 'value': must be ..."), if any.
const OUTPUT_PROBLEM = /^output '([^']+)': (.+)$/s;

async function interfaceOf(task) {
  const versions = await api("GET", `/api/task-types/${enc(task.task_type.name)}`);
  const found = versions.find((v) => v.version === task.task_type.version) || versions[0];
  return (found && found.interface) || { kind: "processing", outputs: [] };
}

export async function openNewRun(dialog, name, { notify }) {
  let workflow;
  try {
    workflow = await api("GET", `/api/workflows/${enc(name)}`);
  } catch (exc) {
    notify(exc.message, "error");
    return;
  }
  const sources = workflow.tasks.filter((t) => !t.inputs.some((i) => i.source.mode === "output"));
  const taskSelect = h("select", { name: "task" }, sources.map((t) => h("option", { value: t.name }, `${t.name} (${t.task_type.name})`)));
  const runName = h("input", { name: "name", placeholder: "optional" });
  const outputsBox = h("div", { class: "source-outputs" });
  const message = h("p", { class: "form-error", role: "alert" });
  const start = h("button", { type: "submit", class: "primary start-run", disabled: true }, "Start run");
  let outputs = null; // the form of the source's outputs (a source that asks the user), or null
  let shown = 0; // which task's form is drawn (answers for an older choice are dropped)

  // A chosen file's name names the run, unless the user named it.
  const onPick = (_key, value) => {
    if (!runName.value.trim() && value.filename) runName.value = value.filename;
  };

  async function showOutputs() {
    const task = sources.find((t) => t.name === taskSelect.value);
    const asked = ++shown;
    outputs = null;
    start.disabled = true;
    clear(outputsBox);
    message.textContent = "";
    if (!task) return;
    let iface;
    try {
      iface = await interfaceOf(task);
    } catch (exc) {
      message.textContent = exc.message;
      return;
    }
    if (asked !== shown) return;
    if (iface.kind === "interactive") {
      outputs = parameterForm(iface.outputs || [], { notify, onPick });
      append(outputsBox, h("h3", {}, "Outputs of the source job"), iface.outputs && iface.outputs.length ? outputs.element : h("p", { class: "muted" }, "none"));
    } else {
      append(outputsBox, h("p", { class: "muted source-note" }, `${task.name} is computed by a worker (${iface.kind}); if it asks for inputs, its job waits for them in its panel.`));
    }
    start.disabled = false;
  }

  // The outputs to send, or null when the form shows what is missing.
  function readOutputs() {
    if (!outputs) return undefined;
    try {
      const missing = outputs.missing();
      if (Object.keys(missing).length) {
        outputs.showErrors(missing);
        return null;
      }
      outputs.showErrors({});
      return outputs.values();
    } catch (exc) {
      outputs.showErrors({}, exc.message);
      return null;
    }
  }

  // The server's refusal: beside the field it names, else above the buttons.
  function showRefusal(exc) {
    const errors = (exc.details && exc.details.errors) || {};
    const named = exc.message.match(OUTPUT_PROBLEM);
    if (named) errors[named[1]] = named[2];
    if (outputs && Object.keys(errors).length) outputs.showErrors(errors);
    else message.textContent = exc.message;
  }

  const form = h(
    "form",
    { method: "dialog", class: "new-run-form", novalidate: true },
    h("h2", {}, `New Run in ${name}`),
    sources.length ? null : h("p", { class: "form-error" }, "This workflow has no source task."),
    h("label", {}, "Source task", taskSelect),
    h("label", {}, "Run name", runName),
    outputsBox,
    message,
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", class: "cancel", onclick: () => dialog.close() }, "Cancel"),
      start,
    ),
  );
  taskSelect.addEventListener("change", showOutputs);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const values = readOutputs();
    if (values === null) return;
    const request = { task: taskSelect.value };
    if (values !== undefined) request.outputs = values;
    if (runName.value.trim()) request.name = runName.value.trim();
    try {
      const job = await api("POST", `/api/workflows/${enc(name)}/runs`, { json: request });
      dialog.close();
      notify(`Run started: source job ${job.serial} is ${job.state}`);
    } catch (exc) {
      showRefusal(exc);
    }
  });
  append(clear(dialog), form);
  dialog.showModal();
  await showOutputs();
}
