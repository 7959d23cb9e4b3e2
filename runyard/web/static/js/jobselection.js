// The selection of jobs in the runs table, and restarting them together
// (POST /api/workflows/{name}/jobs/restart). Ctrl-click (Cmd on a Mac) picks or drops a cell;
// shift-click picks the cells between the last cell clicked and this one (the rows and columns
// between them); a column's heading picks every job of that task, and "Select jobs" every job
// in a state ("all Failed"), both together narrowing each other: those are sent as a filter,
// so they reach the runs not scrolled into view too. Restart selected asks first, then says
// how many were restarted and why the others were skipped. Download files saves the output
// files of the cells picked one by one as one zip (downloads.js).
// runs.js draws the cells and calls these.

import { api } from "./api.js";
import { openCompare } from "./compare.js";
import { confirmAction } from "./confirm.js";
import { ICONS, append, clear, enc, h } from "./dom.js";
import { downloadZip } from "./downloads.js";
import { gateAll } from "./session.js";

// The states a job can be restarted from (the server's RESTARTABLE).
const RESTARTABLE = ["Waiting", "Queued", "Running", "Done", "Failed", "Aborted"];
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// ``runsBetween(first, last)``: a promise of the runs of rows first..last (runs.js);
// ``tasks()``: the columns in order. Answers {element, stateSelect, click(event, cell, index),
// toggle(cell, index), toggleColumn(task), picks(job, task), paint(body, head)}.
export function jobSelection({ name, notify, refresh, runsBetween, tasks, level = () => undefined }) {
  const serials = new Map(); // serial -> task, the cells picked one by one
  let filter = null; // {tasks: Set, states: Set}: every live job these choose
  let anchor = null; // {index, task, serial}: the last cell clicked, where a range starts
  let painted = () => {};

  const count = h("span", { class: "jobs-count" });
  const result = h("div", { class: "restart-result" });
  const restartButton = h("button", { type: "button", class: "restart-selected danger", onclick: () => restartSelected() }, "Restart selected");
  // Their output files as one zip (cells picked one by one; not a whole-state filter).
  const downloadButton = h("button", { type: "button", class: "download-selected", "data-always": true, title: "Download the output files of the selected jobs as one zip", onclick: () => downloadZip(name, { serials: [...serials.keys()] }, `${name}-selection.zip`, { notify }) }, "Download files");
  // Their images side by side (compare.js): two or more cells picked one by one.
  const compareButton = h("button", { type: "button", class: "compare-selected", "data-always": true, title: "Show the images of the selected jobs side by side", onclick: () => openCompare([...serials.keys()], { notify }) }, "Compare");
  const clearButton = h("button", { type: "button", class: "link jobs-clear", title: "Clear the selection of jobs", "data-always": true, onclick: () => clearAll() }, "\u00D7");
  const element = h("div", { class: "toolbar bulk jobs-bulk", hidden: true }, count, restartButton, downloadButton, compareButton, clearButton, result);
  const stateSelect = h(
    "select",
    { class: "select-state", "aria-label": "Select jobs by state", title: "Select every job in a state (with a column's heading: of that task only)" },
    h("option", { value: "" }, "Select jobs\u2026"),
    RESTARTABLE.map((s) => h("option", { value: s }, `${ICONS[s]} all ${s}`)),
  );
  stateSelect.addEventListener("change", () => {
    if (stateSelect.value) pickFilter({ states: [stateSelect.value] });
    stateSelect.value = "";
  });

  // What is picked: "3 jobs", "all Failed jobs of Add".
  function picked() {
    if (!filter) return plural(serials.size, "job");
    const states = filter.states.size ? [...filter.states].join(", ") : "live";
    return `all ${states} jobs${filter.tasks.size ? ` of ${[...filter.tasks].join(", ")}` : ""}`;
  }

  function describe() {
    const what = picked();
    return filter ? `${what[0].toUpperCase()}${what.slice(1)} selected (every live run)` : `${what} selected`;
  }

  function show() {
    const any = Boolean(filter) || serials.size > 0;
    count.textContent = any ? describe() : "";
    restartButton.hidden = !any;
    downloadButton.hidden = filter !== null || serials.size === 0;
    compareButton.hidden = filter !== null || serials.size < 2;
    element.hidden = !any && !result.childNodes.length;
    gateAll(element, "operate", level());
    painted();
  }

  // A filter: a column (``tasks``) or a state (``states``), added to the filter chosen so far.
  function pickFilter({ tasks: more = [], states = [] }) {
    serials.clear();
    filter = filter || { tasks: new Set(), states: new Set() };
    for (const t of more) filter.tasks.has(t) ? filter.tasks.delete(t) : filter.tasks.add(t);
    for (const s of states) filter.states.has(s) ? filter.states.delete(s) : filter.states.add(s);
    if (!filter.tasks.size && !filter.states.size) filter = null;
    clear(result);
    show();
  }

  function clearAll() {
    serials.clear();
    filter = null;
    clear(result);
    show();
  }

  // A click on a job's cell: ctrl/cmd picks or drops it, shift picks a range; answers whether
  // the click was a selection (else it opens the job, and is where the next range starts).
  function click(event, cell, index) {
    const here = { index, task: cell.dataset.task, serial: Number(cell.dataset.serial) };
    if (event.shiftKey && anchor) {
      pickRange(anchor, here);
      return true;
    }
    anchor = here;
    if (!(event.ctrlKey || event.metaKey)) return false;
    toggle(cell, index);
    return true;
  }

  // Picks or drops the job of ``cell`` (of row ``index``): a ctrl-click, or Space on it.
  function toggle(cell, index) {
    anchor = { index, task: cell.dataset.task, serial: Number(cell.dataset.serial) };
    filter = null;
    const serial = Number(cell.dataset.serial);
    if (serials.has(serial)) serials.delete(serial);
    else serials.set(serial, cell.dataset.task);
    clear(result);
    show();
  }

  async function pickRange(from, to) {
    const columns = tasks();
    const [a, b] = [columns.indexOf(from.task), columns.indexOf(to.task)].sort((x, y) => x - y);
    const chosen = columns.slice(Math.max(0, a), b + 1);
    let runs;
    try {
      runs = await runsBetween(Math.min(from.index, to.index), Math.max(from.index, to.index));
    } catch (exc) {
      notify(exc.message, "error");
      return;
    }
    // The rows may have moved since the first click (a filter, a new run): start again.
    const start = runs[from.index <= to.index ? 0 : runs.length - 1];
    if (!start || !start.jobs[from.task] || start.jobs[from.task].serial !== from.serial) {
      anchor = to;
      notify("The rows changed since the first click: shift-click again to pick the range from here");
      return;
    }
    filter = null;
    for (const run of runs) {
      for (const task of chosen) {
        const job = run && !run.obsolete && run.jobs[task];
        if (job) serials.set(job.serial, task);
      }
    }
    clear(result);
    show();
  }

  // Whether the cell of ``job`` (of ``task``) is in the selection.
  function picks(job, task) {
    if (filter) {
      return (!filter.tasks.size || filter.tasks.has(task)) && (!filter.states.size || filter.states.has(job.state)) && RESTARTABLE.includes(job.state);
    }
    return serials.has(job.serial);
  }

  // Marks the picked cells and columns among those drawn (and, from now on, after each change).
  function paint(body, head) {
    painted = () => {
      for (const el of body.querySelectorAll(".runs-row.run")) {
        const live = el.dataset.obsolete !== "true";
        for (const cell of el.querySelectorAll(".cell.job")) {
          const on = live && picks({ serial: Number(cell.dataset.serial), state: cell.dataset.state }, cell.dataset.task);
          cell.classList.toggle("picked", on);
          cell.setAttribute("aria-selected", String(on));
        }
      }
      for (const cell of head.querySelectorAll(".cell.head")) {
        cell.classList.toggle("picked-column", Boolean(filter && filter.tasks.has(cell.dataset.task)));
        cell.setAttribute("aria-selected", String(Boolean(filter && filter.tasks.has(cell.dataset.task))));
      }
    };
    painted();
  }

  function request() {
    if (!filter) return { serials: [...serials.keys()] };
    const states = filter.states.size ? [...filter.states] : RESTARTABLE;
    return { filter: { states, tasks: [...filter.tasks] } };
  }

  async function restartSelected() {
    const sure = await confirmAction({
      question: `Restart ${filter ? `${picked()} (in every live run)` : plural(serials.size, "selected job")}?`,
      consequence: "Each job and every job downstream of it in its run become Obsolete (a Running one is stopped, its work lost); a new job is created in its place. Jobs that cannot be restarted are skipped, with the reason.",
      action: "Restart jobs",
    });
    if (!sure) return;
    restartButton.disabled = true;
    try {
      const answer = await api("POST", `/api/workflows/${enc(name)}/jobs/restart`, { json: request() });
      serials.clear();
      filter = null;
      showResult(answer);
    } catch (exc) {
      notify(exc.message, "error");
    }
    restartButton.disabled = false;
    show();
    refresh();
  }

  function showResult({ restarted, skipped }) {
    const summary = `Restarted ${plural(restarted.length, "job")}${skipped.length ? `; skipped ${skipped.length}` : ""}`;
    notify(summary, skipped.length && !restarted.length ? "error" : "info");
    append(
      clear(result),
      h("span", { class: "restart-summary" }, summary),
      skipped.length
        ? h("ul", { class: "skipped" }, skipped.map((s) => h("li", { dataset: { serial: String(s.serial) } }, `job ${s.serial}: ${s.reason}`)))
        : null,
    );
  }

  return { element, stateSelect, click, toggle, toggleColumn: (task) => pickFilter({ tasks: [task] }), picks, paint };
}
