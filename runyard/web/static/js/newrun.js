// New Run: start a run of a workflow at one of its source tasks, with a name and the source
// job's outputs (JSON, the form starting from the task type's output keys); outputs that are
// User Data files, folders or images are chosen in the User Data browser.

import { api } from "./api.js";
import { append, clear, enc, h } from "./dom.js";
import { pickUserData, userDataValue } from "./userdata.js";

const PICKED_TYPES = new Set(["ForeignFile", "Folder", "Image"]);

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
  const outputs = h("textarea", { name: "outputs", rows: 5, spellcheck: "false" }, "{}");
  const message = h("p", { class: "form-error", role: "alert" });
  const pickers = h("div", { class: "pickers" });
  // Outputs that are User Data files, folders or images: chosen in the User Data browser.
  function setOutput(key, value) {
    let current = {};
    try {
      current = JSON.parse(outputs.value || "{}");
    } catch {
      current = {};
    }
    current[key] = value;
    outputs.value = JSON.stringify(current, null, 2);
    if (!runName.value.trim() && value.filename) runName.value = value.filename;
  }
  async function template() {
    const task = sources.find((t) => t.name === taskSelect.value);
    clear(pickers);
    if (!task) return;
    try {
      const versions = await api("GET", `/api/task-types/${enc(task.task_type.name)}`);
      const found = versions.find((v) => v.version === task.task_type.version) || versions[0];
      const params = (found && found.interface && found.interface.outputs) || [];
      // What the user typed meanwhile is kept.
      if (!typed) outputs.value = JSON.stringify(Object.fromEntries(params.map((p) => [p.key, null])), null, 2);
      for (const p of params.filter((p) => PICKED_TYPES.has(p.type))) {
        pickers.append(
          h("button", {
            type: "button",
            class: "pick-userdata",
            dataset: { key: p.key },
            onclick: async () => {
              const pick = await pickUserData({ notify, folders: p.type === "Folder", files: p.type !== "Folder", title: `Choose ${p.key} (${p.type})` });
              if (pick) setOutput(p.key, userDataValue(p.type, pick));
            },
          }, `Choose ${p.key} from User Data\u2026`),
        );
      }
    } catch {
      if (!typed) outputs.value = "{}";
    }
  }
  let typed = false;
  outputs.addEventListener("input", () => (typed = true));
  taskSelect.addEventListener("change", () => {
    typed = false;
    template();
  });
  const form = h(
    "form",
    { method: "dialog", class: "new-run-form" },
    h("h2", {}, `New Run in ${name}`),
    sources.length ? null : h("p", { class: "form-error" }, "This workflow has no source task."),
    h("label", {}, "Source task", taskSelect),
    h("label", {}, "Run name", runName),
    pickers,
    h("label", {}, "Outputs of the source job (JSON)", outputs),
    message,
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", class: "cancel", onclick: () => dialog.close() }, "Cancel"),
      h("button", { type: "submit", class: "primary start-run" }, "Start run"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    let values;
    try {
      values = JSON.parse(outputs.value || "{}");
    } catch (exc) {
      message.textContent = `The outputs are not valid JSON: ${exc.message}`;
      return;
    }
    const request = { task: taskSelect.value, outputs: values };
    if (runName.value.trim()) request.name = runName.value.trim();
    try {
      const job = await api("POST", `/api/workflows/${enc(name)}/runs`, { json: request });
      dialog.close();
      notify(`Run started: source job ${job.serial} is ${job.state}`);
    } catch (exc) {
      message.textContent = exc.message;
    }
  });
  append(clear(dialog), form);
  dialog.showModal();
  await template();
}
