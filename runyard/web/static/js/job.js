// Job information: state, inputs, outputs (files downloadable), error, worker, attempt,
// timings, and the log, followed live while the job runs; abort and restart.

import { api } from "./api.js";
import { FINAL, append, clear, duration, enc, h, stateBadge, when } from "./dom.js";

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

export function renderValue(value) {
  if (isFile(value)) {
    return h(
      "span",
      { class: "file" },
      h("a", { href: `/api/files/${enc(value.file_id)}`, download: value.filename || "file" }, value.filename || value.file_id),
      ` (${size(value.size)})`,
    );
  }
  if (value === null || value === undefined) return h("span", { class: "muted" }, "null");
  if (typeof value === "object") return h("pre", { class: "value" }, JSON.stringify(value, null, 2));
  return h("span", { class: "value" }, String(value));
}

function values(title, object) {
  const keys = Object.keys(object || {});
  return h(
    "section",
    { class: `values ${title.toLowerCase()}` },
    h("h3", {}, title),
    keys.length
      ? h("dl", {}, keys.map((k) => [h("dt", {}, k), h("dd", {}, renderValue(object[k]))]))
      : h("p", { class: "muted" }, "none"),
  );
}

// Draws job ``serial`` into ``container``; answers a function that stops following it.
export function jobPanel(container, serial, { notify, context = {}, onClose, onOpen }) {
  let alive = true;
  let timer = 0;
  let offset = 0; // characters of the log shown so far (code points, as the server counts)
  let job = null;
  const logText = document.createTextNode("");
  const logBox = h("pre", { class: "log", tabindex: "0" }, logText);
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
    details,
    h("section", { class: "log-section" }, h("h3", {}, "Log"), logBox),
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

  function render() {
    title.replaceChildren(`Job ${job.serial} `, stateBadge(job.state));
    where.replaceChildren(
      [context.workflow && `Workflow ${context.workflow}`, context.task && `task ${context.task}`, context.run && `run ${context.run}`]
        .filter(Boolean)
        .join(" \u00B7 ") || `run ${job.run_id}, task ${job.task_id}`,
    );
    append(clear(buttons), 
      ABORTABLE.has(job.state)
        ? h("button", { type: "button", class: "abort danger", onclick: () => act("Aborted", "POST", `/api/jobs/${serial}/state`, { state: "Aborted" }) }, "Abort")
        : null,
      RESTARTABLE.has(job.state)
        ? h("button", { type: "button", class: "restart", onclick: () => act("Restarted", "POST", `/api/jobs/${serial}/restart`) }, "Restart new job")
        : null,
      h("a", { href: `#/jobs/${serial}`, class: "permalink" }, "Open as page"),
    );
    const facts = [
      ["State", job.state],
      ["Worker", job.worker || "\u2014"],
      ["Attempt", String(job.attempt)],
      ["Created", when(job.created_at)],
      ["Started", when(job.started_at)],
      ["Finished", when(job.finished_at)],
      ["Duration", duration(job.started_at, job.finished_at)],
    ];
    if (job.progress) {
      const fraction = job.progress.fraction === null ? "" : `${Math.round(job.progress.fraction * 100)} % `;
      facts.push(["Progress", fraction + (job.progress.message || "")]);
    }
    if (job.workdir) facts.push(["Kept folder", job.workdir]);
    if (job.spawned_by_job) facts.push(["Spawned by", `job ${job.spawned_by_job}`]);
    append(clear(details), 
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      job.error ? h("section", { class: "error" }, h("h3", {}, "Error"), h("pre", { class: "error-text" }, job.error)) : null,
      values("Inputs", job.inputs),
      values("Outputs", job.outputs),
    );
  }

  async function readLog() {
    const text = await api("GET", `/api/jobs/${serial}/log?offset=${offset}`, { text: true });
    if (!text) return;
    const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
    logText.appendData(text);
    offset += [...text].length;
    if (atBottom) logBox.scrollTop = logBox.scrollHeight;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      job = await api("GET", `/api/jobs/${serial}`);
      if (!alive) return;
      render();
      await readLog();
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
