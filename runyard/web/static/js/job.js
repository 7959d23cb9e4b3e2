// Job information: state, inputs, outputs (files downloadable, images viewable as slices, a
// CSV as a table of its first rows, a Bitmap as the picture, other composite values as JSON),
// error, worker, attempt, timings, provenance, whether it is stale, its history, a reduce
// job's runs, and the log, followed live while the job runs; abort, restart and rename; the
// form of a job waiting for a user's values (these need operate access to its workflow).

import { api } from "./api.js";
import { confirmed } from "./confirm.js";
import { CLAIMED, FINAL, append, clear, duration, enc, h, stateBadge, when } from "./dom.js";
import { outputsZipLink } from "./downloads.js";
import { bitmapValue, csvValue, isBitmap, isCsv } from "./filevalues.js";
import { parameterForm } from "./forms.js";
import { imageButton, isImage } from "./image.js";
import { allows, gate, gateAll, levelOf, needsText } from "./session.js";

const POLL_MS = 1000;
const ABORTABLE = new Set(["Waiting", "Queued", "Running"]);
const RESTARTABLE = new Set(["Done", "Failed", "Aborted"]);

function isFile(value) {
  return value && typeof value === "object" && typeof value.file_id === "string";
}

function size(bytes) {
  if (typeof bytes !== "number") return "";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return unit ? `${n.toFixed(1)} ${units[unit]}` : `${n} bytes`;
}

// The User Data path of a file, folder or image value (a folder path plus a file name, or the
// whole path).
function userDataPath(value) {
  return value.virtualpath.endsWith("/") && value.filename ? value.virtualpath + value.filename : value.virtualpath;
}

function isUserData(value) {
  return Boolean(value && typeof value === "object" && value.source === "userdata" && typeof value.virtualpath === "string");
}

// A number as a person reads it: whole numbers as they are, others to 6 significant digits.
export function shownNumber(n) {
  return Number.isInteger(n) || !Number.isFinite(n) ? String(n) : String(Number(n.toPrecision(6)));
}

function isPlain(value) {
  return value === null || ["number", "string", "boolean"].includes(typeof value);
}

// A number, with its exact value on hover when it is shown rounded.
function numberValue(n) {
  const shown = shownNumber(n);
  return h("span", { class: "value number", title: shown === String(n) ? null : String(n) }, shown);
}

// A list of plain values (a reduce job's inputs: one per run) on one line; a long one folded.
function listValue(items) {
  if (!items.length) return h("span", { class: "muted" }, "empty list");
  const text = items.map((v) => (typeof v === "number" ? shownNumber(v) : String(v)));
  if (text.length <= 6) return h("span", { class: "value list" }, text.join(", "));
  return h(
    "details",
    { class: "value list" },
    h("summary", {}, `${text.length} values: ${text.slice(0, 4).join(", ")}, \u2026`),
    h("div", { class: "list-items" }, text.join(", ")),
  );
}

function fileLink(value) {
  return h(
    "span",
    { class: "file", title: value.type || null },
    h("a", { href: `/api/files/${enc(value.file_id)}`, download: value.filename || "file" }, value.filename || value.file_id),
    ` (${size(value.size)})`,
  );
}

// A list of files (a reduce job's input: one per run) as links, a long one folded.
function fileList(items) {
  const list = h("ol", { class: "value file-list" }, items.map((v) => h("li", {}, fileLink(v))));
  if (items.length <= 6) return list;
  return h("details", { class: "value list" }, h("summary", {}, `${items.length} files: ${items.slice(0, 3).map((v) => v.filename).join(", ")}, \u2026`), list);
}

export function renderValue(value, { key, images, notify } = {}) {
  if (isImage(value) && images) {
    const where = value.virtualpath ? userDataPath(value) : value.filename;
    return h("span", { class: "image-value" }, `${where} `, value.size ? `(${value.size.join(" \u00D7 ")}) ` : "", imageButton(key, images, notify));
  }
  if (isFile(value)) {
    const link = fileLink(value);
    if (isBitmap(value)) return bitmapValue(value, link);
    if (isCsv(value)) return csvValue(value, link);
    return link;
  }
  if (isUserData(value)) {
    return h("span", { class: "value userdata-path", title: `${value.type || "file"} in User Data` }, userDataPath(value));
  }
  if (value && value.type === "Entity" && typeof value.name === "string") {
    return h("span", { class: "value entity", title: `entity ${value.uuid || ""}` }, value.name);
  }
  if (value === null || value === undefined) return h("span", { class: "muted" }, "null");
  if (typeof value === "number") return numberValue(value);
  if (Array.isArray(value) && value.every(isPlain)) return listValue(value);
  if (Array.isArray(value) && value.length && value.every(isFile)) return fileList(value);
  if (typeof value === "object") return h("pre", { class: "value" }, JSON.stringify(value, null, 2));
  return h("span", { class: "value" }, String(value));
}

function values(title, object, notify) {
  const keys = Object.keys(object || {});
  const images = Object.fromEntries(keys.filter((k) => isImage(object[k])).map((k) => [k, object[k]]));
  return h(
    "section",
    { class: `values ${title.toLowerCase()}` },
    h("h3", {}, title),
    keys.length
      ? h("dl", {}, keys.map((k) => [h("dt", {}, k), h("dd", {}, renderValue(object[k], { key: k, images, notify }))]))
      : h("p", { class: "muted" }, "none"),
  );
}

// Draws job ``serial`` into ``container``; answers a function that stops following it.
export function jobPanel(container, serial, { notify, context = {}, onClose, onOpen }) {
  let alive = true;
  let timer = 0;
  let offset = 0; // characters of the log shown so far (code points, as the server counts)
  let job = null;
  let level; // the user's level on the job's workflow (undefined until known)
  let formShownFor = ""; // "serial:state" whose form is drawn (not redrawn while typing)
  let historyFor = ""; // the state the history was read in
  const formBox = h("div", { class: "job-form" });
  const extra = h("div", { class: "job-extra" });
  const logText = document.createTextNode("");
  const logBox = h("pre", { class: "log", tabindex: "0", "data-empty": "Nothing in the log yet." }, logText);
  const details = h("div", { class: "job-details" });
  const title = h("h2", {}, `Job ${serial}`);
  const where = h("p", { class: "where" });
  const buttons = h("div", { class: "job-actions" });
  append(clear(container), 
    h(
      "div",
      { class: "job-head" },
      title,
      onClose ? h("button", { type: "button", class: "close link", title: "Close", onclick: onClose }, "\u00D7") : null,
    ),
    where,
    buttons,
    formBox,
    details,
    h("section", { class: "log-section" }, h("h3", {}, "Log"), logBox),
    extra,
  );

  async function act(label, method, path, json) {
    try {
      const answer = await api(method, path, json === undefined ? {} : { json });
      notify(`${label}: job ${answer.serial} is ${answer.state}`);
      if (answer.serial !== serial && onOpen) onOpen(answer.serial);
      else refresh();
    } catch (exc) {
      notify(exc.message, "error");
    }
  }

  function rename() {
    const input = h("input", { class: "job-name-input", "aria-label": "Job name", value: (job.metadata && job.metadata.display_name) || "" });
    const form = h("form", { class: "inline-form" }, input, h("button", { type: "submit", class: "primary" }, "Rename"), h("button", { type: "button", onclick: () => form.remove() }, "Cancel"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("PUT", `/api/jobs/${serial}/name`, { json: { name: input.value } });
        notify(`Job ${serial} renamed`);
        form.remove();
        refresh();
      } catch (exc) {
        notify(exc.message, "error");
      }
    });
    buttons.after(form);
    input.focus();
  }

  function actionButtons() {
    return gateEach([
      ABORTABLE.has(job.state)
        ? h("button", { type: "button", class: "abort danger", onclick: () => confirmed(abortQuestion(), () => act("Aborted", "POST", `/api/jobs/${serial}/state`, { state: "Aborted" })) }, "Abort")
        : null,
      RESTARTABLE.has(job.state)
        ? h("button", { type: "button", class: "restart", onclick: () => confirmed(restartQuestion(), () => act("Restarted", "POST", `/api/jobs/${serial}/restart`)) }, "Restart new job")
        : null,
      job.state !== "Obsolete" ? h("button", { type: "button", class: "rename", onclick: rename }, "Rename") : null,
    ]);
  }

  function abortQuestion() {
    const running = job.state === "Running" ? "Its script is stopped and its work so far is lost; the" : "The";
    return { question: `Abort job ${serial}?`, consequence: `${running} job ends Aborted and nothing downstream of it runs. Restart new job runs it again.`, action: "Abort job" };
  }

  function restartQuestion() {
    const where = job.run && job.task ? ` of task ${job.task} in run ${job.run.name}` : "";
    return {
      question: `Restart job ${serial}?`,
      consequence: `Job ${serial}${where} and every job downstream of it in its run become Obsolete (their results are kept but no longer used); a new job is created in its place.`,
      action: "Restart new job",
    };
  }

  // Abort, restart, rename and forms need operate access to the workflow.
  function gateEach(buttons) {
    for (const button of buttons) gate(button, "operate", level);
    return buttons;
  }

  function render() {
    const shownName = job.metadata && job.metadata.display_name;
    title.replaceChildren(
      `Job ${job.serial} `,
      shownName ? h("span", { class: "job-name" }, shownName) : "",
      stateBadge(job.state),
      job.claimed ? h("span", { class: "claimed-tag", title: CLAIMED }, "claimed, not started") : "",
    );
    const workflow = job.workflow || context.workflow;
    where.replaceChildren(
      [job.run && !job.run.study && `run ${job.run.name}`, job.task && `task ${job.task}`]
        .filter(Boolean)
        .join(" \u00B7 ") || `run ${job.run_id}, task ${job.task_id}`,
      workflow ? " \u00B7 workflow " : "",
      // On the job's own page, the way back to its runs table.
      workflow && !onClose ? h("a", { href: `#/workflows/${enc(workflow)}`, class: "workflow-link" }, workflow) : workflow || "",
    );
    // The jobs of an obsolete run wait as they were: restoring the run is all there is to do.
    const obsolete = Boolean(job.run && job.run.obsolete);
    append(clear(buttons), 
      obsolete ? h("span", { class: "obsolete-note" }, h("span", { class: "obsolete-mark" }, "obsolete run"), " Restore the run (in the runs table) to act on its jobs.") : null,
      obsolete ? null : actionButtons(),
      // The panel beside the runs table links to the job's own page (not the page itself).
      onClose ? h("a", { href: `#/jobs/${serial}`, class: "permalink" }, "Open as page") : null,
    );
    const facts = [
      ["State", job.claimed ? `${job.state} (${CLAIMED[0].toLowerCase()}${CLAIMED.slice(1)})` : job.state],
      ["Worker", job.worker || "\u2014"],
      ["Attempt", String(job.attempt)],
      ["Created", when(job.created_at) || "\u2014"],
      ["Started", when(job.started_at) || "\u2014"],
      ["Finished", when(job.finished_at) || "\u2014"],
      ["Duration", duration(job.started_at, job.finished_at) || "\u2014"],
    ];
    // Progress is what a running script reports; a finished job's last report would mislead.
    if (job.progress && !FINAL.has(job.state)) {
      const fraction = job.progress.fraction === null ? "" : `${Math.round(job.progress.fraction * 100)} % `;
      facts.push(["Progress", fraction + (job.progress.message || "")]);
    }
    if (job.workdir) facts.push(["Kept folder", job.workdir]);
    if (job.spawned_by_job) facts.push(["Spawned by", h("a", { href: `#/jobs/${job.spawned_by_job}`, class: "spawned-by" }, `job ${job.spawned_by_job}`)]);
    const prov = job.provenance;
    const runs = job.metadata && Array.isArray(job.metadata.runs) ? job.metadata.runs : null;
    append(clear(details), 
      job.stale ? h("p", { class: "stale-note", title: "This result was computed from something its task no longer uses" }, "\u26A0 Stale: ", job.stale) : null,
      job.held_back ? h("p", { class: "held-note", title: "Active runs still have upstream work pending: the next job of this reduce is not queued until they finish" }, `Next job held back: ${job.held_back}`) : null,
      job.worker_missing && job.worker_missing.length ? h("p", { class: "stale-note worker-missing", title: "No registered worker provides, has installed or may install these dependency packages" }, `Worker missing [${job.worker_missing.join(", ")}]`) : null,
      h("dl", { class: "facts job-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      job.error ? h("section", { class: "error" }, h("h3", {}, "Error"), h("pre", { class: "error-text" }, job.error)) : null,
      values("Inputs", job.inputs, notify),
      values("Outputs", job.outputs, notify),
      outputsZipLink(serial, job.outputs),
      prov
        ? h("section", { class: "provenance" }, h("h3", {}, "Provenance"),
            h("dl", { class: "facts provenance-facts" },
              h("dt", {}, "Task type"), h("dd", {}, `${prov.task_type.name} ${prov.task_type.version}`),
              h("dt", {}, "Configuration"), h("dd", {}, h("code", {}, prov.configuration)),
              h("dt", {}, "Computed"), h("dd", {}, prov.computed ? `yes${prov.worker ? `, by worker ${prov.worker}` : ""}` : "not yet")))
        : null,
      runs
        ? h("section", { class: "reduce-runs" }, h("h3", {}, `Runs reduced (${runs.length})`),
            h("ol", { class: "runs-list" }, runs.map((r) => h("li", { "data-run": String(r.id) }, r.name, r.entity && r.entity.name && r.entity.name !== r.name ? h("span", { class: "muted" }, ` \u00B7 ${r.entity.name}`) : ""))))
        : null,
    );
    showForm();
  }

  // The form of a Waiting job that asks for a user's values (or an interactive job's outputs).
  async function showForm() {
    const key = `${job.serial}:${job.state}:${Boolean(job.run && job.run.obsolete)}:${level}`;
    if (key === formShownFor) return;
    formShownFor = key;
    clear(formBox);
    if (job.state !== "Waiting" || (job.run && job.run.obsolete)) return;
    let spec;
    try {
      spec = await api("GET", `/api/jobs/${serial}/form`);
    } catch (exc) {
      notify(exc.message, "error");
      return;
    }
    if (!alive || (!spec.inputs.length && !spec.outputs.length)) return;
    const inputs = parameterForm(spec.inputs, { values: Object.fromEntries(spec.inputs.map((p) => [p.key, p.template])), notify });
    const outputs = spec.outputs.length ? parameterForm(spec.outputs, { notify }) : null;
    const form = h(
      "form",
      { class: "submit-form", novalidate: true },
      h("h3", {}, spec.kind === "interactive" ? "This interactive job waits for you" : "This job waits for your values"),
      spec.inputs.length ? [h("h4", {}, "Inputs"), inputs.element] : null,
      outputs ? [h("h4", {}, "Outputs"), outputs.element] : null,
      h("button", { type: "submit", class: "primary submit-job" }, "Submit"),
      level !== undefined && !allows(level, "operate") ? h("p", { class: "muted needs-note" }, needsText("operate", level)) : null,
    );
    gateAll(form, "operate", level);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      try {
        if (spec.inputs.length) body.inputs = inputs.values();
        if (outputs) body.outputs = outputs.values();
      } catch (exc) {
        inputs.showErrors({}, exc.message);
        return;
      }
      try {
        const answer = await api("POST", `/api/jobs/${serial}/submit`, { json: body });
        notify(`Submitted: job ${answer.serial} is ${answer.state}`);
        refresh();
      } catch (exc) {
        const errors = (exc.details && exc.details.errors) || {};
        const mine = (keys) => Object.fromEntries(Object.entries(errors).filter(([k]) => keys.includes(k)));
        inputs.showErrors(mine(spec.inputs.map((p) => p.key)), exc.message);
        if (outputs) outputs.showErrors(mine(spec.outputs.map((p) => p.key)));
        if (!Object.keys(errors).length) notify(exc.message, "error");
      }
    });
    append(formBox, form);
  }

  async function readHistory() {
    try {
      const events = await api("GET", `/api/jobs/${serial}/history`);
      if (!alive) return;
      append(
        clear(extra),
        h("section", { class: "history" }, h("h3", {}, "History"),
          h("table", { class: "list history-table" },
            h("tbody", {}, events.map((e) => h("tr", { class: e.level ? `level-${e.level}` : "" }, h("td", { class: "nowrap" }, when(e.at)), h("td", {}, e.what), h("td", {}, e.actor), h("td", {}, e.message)))))),
      );
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    }
  }

  async function readLog() {
    const text = await api("GET", `/api/jobs/${serial}/log?offset=${offset}`, { text: true });
    // An empty log says so (its text, drawn by the style sheet, is not part of the log).
    if (!offset && !text) logBox.dataset.empty = FINAL.has(job.state) ? "The job wrote nothing to its log." : "Nothing in the log yet.";
    if (!text) return;
    delete logBox.dataset.empty;
    const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
    logText.appendData(text);
    offset += [...text].length;
    if (atBottom) logBox.scrollTop = logBox.scrollHeight;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      job = await api("GET", `/api/jobs/${serial}`);
      const workflow = job.workflow || context.workflow;
      if (workflow) level = await levelOf(workflow).catch(() => undefined);
      if (!alive) return;
      render();
      await readLog();
      if (!historyFor || historyFor !== job.state) {
        historyFor = job.state;
        readHistory();
      }
    } catch (exc) {
      if (alive) notify(exc.message, "error");
      return;
    }
    if (alive && !FINAL.has(job.state)) timer = setTimeout(refresh, POLL_MS);
  }

  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

export function jobPage(main, [serial], { notify }) {
  const box = h("div", { class: "job-page" });
  main.append(box);
  let stop = null;
  const open = (n) => {
    if (stop) stop();
    stop = jobPanel(box, Number(n), { notify, onOpen: (next) => (location.hash = `#/jobs/${next}`) });
  };
  open(serial);
  return () => stop && stop();
}
