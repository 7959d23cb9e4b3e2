// The runs table of a workflow: runs as rows, tasks as columns, each cell the state of the
// run's live job of that task. Only the rows in view exist in the page (runrows.js); the
// keyboard moves about the cells (runkeys.js). The filters, the sort and the open job are in
// the address (#/workflows/NAME?name=&state=&sort=&shown=&job=), so a reload or a link
// shows the same. A Server-Sent Events stream says when something changed; the rows in view
// are then fetched again. Stale cells and jobs no worker can run are marked. Obsolete runs are
// listed on demand (struck through, labelled). The actions on a run (its menu) and on a
// selection of runs (the bulk bar), and Re-run stale, are in runactions.js; the selection of
// jobs (cells, ranges, columns, states) and restarting them, in jobselection.js. What the
// user's level on the workflow does not allow is disabled, saying which level it needs.

import { ICONS, STATES, append, clear, countChips, debounce, enc, h } from "./dom.js";
import { jobPanel } from "./job.js";
import { jobSelection } from "./jobselection.js";
import { openNewRun } from "./newrun.js";
import { reduceButtons } from "./reduces.js";
import { openResult } from "./results.js";
import { runRow } from "./runcells.js";
import { runKeys } from "./runkeys.js";
import { runRows } from "./runrows.js";
import { rerunStaleButton, runMenu, runSelection } from "./runactions.js";
import { runsGraph } from "./runsgraph.js";
import { workflowChanged } from "./notices.js";
import { gate, levelOf, needsText } from "./session.js";
import { openShareDialog } from "./sharing.js";
import { actionButton, workflowActions } from "./workflows.js";

const REFRESH_ANYWAY_MS = 30000; // renames and priorities raise no event: look now and then
// The runs listed, as the page API's parameter obsolete takes them.
const SHOWN = [["exclude", "Live runs"], ["include", "Live and obsolete runs"], ["only", "Obsolete runs only"]];

// The filters as the address has them (unknown values are the defaults).
function filterOf(query) {
  const pick = (value, allowed, otherwise) => (allowed.includes(value) ? value : otherwise);
  return {
    state: pick(query.get("state"), STATES, ""),
    name: (query.get("name") || "").trim(),
    order: pick(query.get("sort"), ["name"], "sort_order"),
    obsolete: pick(query.get("shown"), ["include", "only"], "exclude"),
  };
}

export function runsView(main, [name], { notify, query: address = new URLSearchParams() }) {
  const filter = filterOf(address);
  let tasks = [];
  let closePanel = null;
  let openSerial = null; // the job in the panel
  let source = null;
  let alive = true;
  let level; // the user's level on the workflow (undefined until known)
  let shownState = null; // [state, locked] as last drawn

  // -- the page ---------------------------------------------------------------------------
  const heading = h("h1", {}, name);
  const wfState = h("span", { class: "wf-state" });
  const wfButtons = h("span", { class: "actions" });
  const summary = h("div", { class: "summary" });
  const count = h("span", { class: "count" });
  const reduceBox = h("span", { class: "reduce" });
  const stateSelect = h(
    "select",
    { class: "filter-state", "aria-label": "Filter by job state" },
    h("option", { value: "" }, "All states"),
    STATES.filter((s) => s !== "Obsolete").map((s) => h("option", { value: s }, `${ICONS[s]} ${s}`)),
  );
  const nameInput = h("input", { type: "search", class: "filter-name", placeholder: "Filter by run name", "aria-label": "Filter by run name" });
  const orderSelect = h(
    "select",
    { class: "order", "aria-label": "Sort" },
    h("option", { value: "sort_order" }, "Sort order"),
    h("option", { value: "name" }, "Name"),
  );
  const shownSelect = h(
    "select",
    { class: "filter-obsolete", "aria-label": "Show obsolete runs", title: "Obsolete runs are hidden unless shown here; they can be restored" },
    SHOWN.map(([value, label]) => h("option", { value }, label)),
  );
  const newRunButton = h("button", { type: "button", class: "new-run primary", onclick: () => openNewRun(dialog, name, { notify }) }, "New Run");
  const editLink = h("a", { href: `#/workflows/${enc(name)}/edit`, class: "button edit-workflow" }, "Edit workflow");
  const timelineLink = h("a", { href: `#/workflows/${enc(name)}/timeline`, class: "button timeline-link" }, "Timeline");
  const studyLink = h("a", { href: `#/workflows/${enc(name)}/study`, class: "button study-link", title: "A task's results for all runs: sort, filter, chart, export" }, "Study table");
  const levelNote = h("span", { class: "level-note", hidden: true });
  const shareButton = h("button", { type: "button", class: "share-button", hidden: true, title: "Share it with users or groups", onclick: () => openShareDialog(name, { notify }) }, "Share\u2026");
  const head = h("div", { class: "runs-head runs-row", role: "row", "aria-rowindex": "1" });
  const body = h("div", { class: "runs-body", role: "rowgroup" });
  const emptyNote = h("p", { class: "empty runs-empty", hidden: true });
  const scroller = h("div", { class: "runs-scroll", tabindex: "0", role: "grid", "aria-label": `Runs of ${name}: arrow keys move, Enter opens the job, Space selects it` }, head, body, emptyNote);
  const panel = h("aside", { class: "job-panel", hidden: true });
  const dialog = h("dialog", { class: "new-run-dialog" });
  dialog.addEventListener("close", () => clear(dialog));
  const refresh = () => rows.refresh();
  const menu = runMenu({ notify, refresh, level: () => level });
  const selection = runSelection({ notify, refresh, body, level: () => level });
  const rerunButton = rerunStaleButton(name, { notify, refresh });
  const runsBetween = (first, last) => rows.runsBetween(first, last);
  const jobs = jobSelection({ name, notify, refresh, runsBetween, tasks: () => tasks, level: () => level });
  const graph = runsGraph(name, { notify }); // the workflow graph above the table (runsgraph.js)

  main.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/workflows", class: "back" }, "\u2190 Workflows"), heading, wfState, wfButtons, editLink, timelineLink, studyLink, shareButton, levelNote, h("span", { class: "grow" }), summary),
    h("div", { class: "toolbar filters" }, newRunButton, rerunButton, jobs.stateSelect, stateSelect, nameInput, orderSelect, shownSelect, reduceBox, graph.toggle, h("span", { class: "grow" }), count),
    graph.element,
    selection.element,
    jobs.element,
    h("div", { class: "runs-layout" }, scroller, panel),
    dialog,
  );

  // -- data -------------------------------------------------------------------------------
  function url(offset, limit) {
    const params = new URLSearchParams({ offset, limit, order: filter.order });
    if (filter.state) params.set("state", filter.state);
    if (filter.name) params.set("name", filter.name);
    if (filter.obsolete !== "exclude") params.set("obsolete", filter.obsolete);
    return `/api/workflows/${enc(name)}/runs?${params}`;
  }

  // A page of runs: the columns (when they changed) and the count.
  function onPage({ tasks: newTasks, reduce, reduce_held: held }) {
    showReduce(reduce || {}, held || {});
    if (newTasks.join("\u0000") !== tasks.join("\u0000")) {
      tasks = newTasks;
      scroller.style.setProperty("--tasks", String(Math.max(1, tasks.length)));
      const heading = (t) => h("div", { class: "cell head", title: `${t}: select all its jobs`, role: "columnheader", tabindex: "0", dataset: { task: t } }, t);
      append(clear(head), h("div", { class: "run-name", role: "columnheader" }, "Run"), tasks.map(heading));
      jobs.paint(body, head);
      selection.setTasks(tasks);
      rows.redrawAll();
    }
    showCount();
  }

  // The count of runs, and what to do when there is none.
  function showCount() {
    const total = rows.total();
    scroller.setAttribute("aria-rowcount", String(total + 1)); // with the heading's row
    const kind = filter.obsolete === "only" ? "obsolete run" : "run";
    count.textContent = `${total.toLocaleString()} ${kind}${total === 1 ? "" : "s"}`;
    emptyNote.hidden = total > 0;
    const filtered = filter.state || filter.name || filter.obsolete === "only";
    emptyNote.textContent = filtered ? "No run matches these filters." : tasks.length ? "No run yet: New Run starts one at a source task." : "No task yet: Edit workflow adds them.";
  }

  // The reduce tasks (reduces.js): not columns; a button each, saying why one is held back.
  let reduceKey = "";
  function showReduce(reduce, held) {
    const key = JSON.stringify([reduce, held]);
    if (key === reduceKey) return;
    reduceKey = key;
    append(clear(reduceBox), reduceButtons(reduce, held, (serial, task) => openJob(serial, { workflow: name, task })));
  }

  // -- live updates -----------------------------------------------------------------------
  function showWorkflow(state, locked) {
    shownState = [state, locked];
    wfState.className = `wf-state wf-${state.toLowerCase()}`;
    wfState.textContent = locked ? `${state}, locked` : state;
    append(clear(wfButtons), workflowActions({ state, locked }).map((a) => actionButton(name, a, { notify, after: () => {}, level })));
  }

  // The user's level: disable what it does not allow (the server would refuse it).
  async function readLevel() {
    try {
      level = await levelOf(name);
    } catch (exc) {
      if (alive) notify(exc.message, "error");
      return;
    }
    if (!alive) return;
    gate(newRunButton, "operate", level);
    gate(rerunButton, "edit", level);
    shareButton.hidden = level !== "own";
    levelNote.hidden = level === "own" || level === "edit";
    levelNote.textContent = `you may ${level}`;
    levelNote.title = level === "view" ? needsText("operate", level) : "Changing its tasks, starting and stopping it need edit access";
    if (shownState) showWorkflow(...shownState);
  }

  function listen() {
    source = new EventSource(`/api/workflows/${enc(name)}/events`);
    source.addEventListener("changed", (event) => {
      const change = JSON.parse(event.data);
      workflowChanged(name, change); // notices: finished, a job failed (notices.js)
      append(clear(summary), countChips(change.jobs));
      showWorkflow(change.state, change.locked);
      rows.refresh();
      graph.refresh();
    });
    source.addEventListener("error", (event) => {
      if (event.data) notify(JSON.parse(event.data).error.message, "error");
    });
  }

  // -- job information ---------------------------------------------------------------------
  // ``how`` the address says so: "push" (a new history entry: Back closes the panel),
  // "keep" (the entry replaced, as it was pushed or not), "none" (it says so already).
  function openJob(serial, context, how = "keep") {
    if (closePanel) closePanel();
    panel.hidden = false;
    openSerial = serial;
    setAddress(how);
    closePanel = jobPanel(panel, serial, { notify, context, onClose: () => closeJob(), onOpen: (next) => openJob(next, context) });
  }

  // The panel closed; the address too goes back to the entry before the job, if it was pushed.
  function closeJob({ address = true } = {}) {
    if (!closePanel) return;
    closePanel();
    closePanel = null;
    openSerial = null;
    panel.hidden = true;
    clear(panel);
    for (const el of body.querySelectorAll(".cell.selected")) el.classList.remove("selected");
    if (address && history.state && history.state.runyardJob) history.back();
    else if (address) setAddress("replace");
  }

  function openCell(target, index, how) {
    const run = rows.runAt(index);
    for (const el of body.querySelectorAll(".cell.selected")) el.classList.remove("selected");
    target.classList.add("selected");
    openJob(Number(target.dataset.serial), { workflow: name, task: target.dataset.task, run: run && run.name }, how);
  }

  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.target.closest("dialog")) closeJob();
  });

  body.addEventListener("contextmenu", (event) => {
    const row = event.target.closest(".runs-row.run");
    const run = row && rows.runAt(Number(row.dataset.index));
    if (!run || event.target.closest(".cell.job")) return;
    event.preventDefault();
    menu.open(run, row.querySelector(".run-menu-button"));
  });

  body.addEventListener("click", (event) => {
    const picked = event.target.closest(".run-name .text");
    if (picked && graph.shown()) graph.pick(rows.runAt(Number(picked.closest(".runs-row").dataset.index)));
  });

  body.addEventListener("click", (event) => {
    const box = event.target.closest(".select-run");
    if (box) {
      const row = box.closest(".runs-row");
      const run = rows.runAt(Number(row.dataset.index));
      if (!run) return;
      row.classList.toggle("chosen", box.checked);
      selection.toggle(run, box.checked);
      return;
    }
    const menuButton = event.target.closest(".run-menu-button");
    if (menuButton) {
      const row = menuButton.closest(".runs-row");
      const run = rows.runAt(Number(row.dataset.index));
      if (run) menu.open(run, menuButton);
      return;
    }
    const target = event.target.closest(".cell.job");
    if (!target) return;
    const row = target.closest(".runs-row");
    const index = Number(row.dataset.index);
    keys.activate(index, [...row.querySelectorAll(".cell")].indexOf(target));
    if (jobs.click(event, target, index)) return;
    openCell(target, index, closePanel ? "keep" : "push");
  });

  // A double click on a job's cell opens its result: an image, a table, else the job (results.js).
  body.addEventListener("dblclick", (event) => {
    const target = event.target.closest(".cell.job");
    if (target && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      openResult(Number(target.dataset.serial), { notify, openJob: (serial) => openJob(serial, { workflow: name, task: target.dataset.task }) });
    }
  });

  // A column's heading selects all its jobs (click, or Enter or Space on it).
  const column = (event) => event.target.closest(".cell.head")?.dataset.task;
  head.addEventListener("click", (event) => column(event) && jobs.toggleColumn(column(event)));
  head.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && column(event)) {
      event.preventDefault();
      jobs.toggleColumn(column(event));
    }
  });

  // -- the rows and the keyboard ----------------------------------------------------------
  const rows = runRows({
    scroller,
    head,
    body,
    url,
    notify,
    onPage,
    render: (run, index) => {
      graph.saw(run);
      return runRow(run, index, { tasks, selection, picks: jobs.picks });
    },
    onDrawn: () => keys.drawn(),
  });
  const keys = runKeys({
    scroller,
    head,
    body,
    total: () => rows.total(),
    columns: () => tasks.length,
    onEnter: (cell, index) => cell.matches(".cell.job") && openCell(cell, index, closePanel ? "keep" : "push"),
    onSpace: (cell, index) => cell.matches(".cell.job") && jobs.toggle(cell, index),
    onEscape: () => closeJob(),
  });

  // -- filters and the address -------------------------------------------------------------
  function addressOf() {
    const params = new URLSearchParams();
    if (filter.name) params.set("name", filter.name);
    if (filter.state) params.set("state", filter.state);
    if (filter.order !== "sort_order") params.set("sort", filter.order);
    if (filter.obsolete !== "exclude") params.set("shown", filter.obsolete);
    if (openSerial !== null) params.set("job", String(openSerial));
    const search = params.toString();
    return `#/workflows/${enc(name)}${search ? `?${search}` : ""}`;
  }

  // The address says what is shown; no history entry per keystroke (see openJob for ``how``).
  function setAddress(how) {
    if (!alive || how === "none" || addressOf() === location.hash) return;
    if (how === "push") history.pushState({ runyardJob: true }, "", addressOf());
    else history.replaceState(how === "keep" ? history.state : null, "", addressOf());
  }

  function showFilters() {
    stateSelect.value = filter.state;
    nameInput.value = filter.name;
    orderSelect.value = filter.order;
    shownSelect.value = filter.obsolete;
  }

  function restart() {
    if (!alive) return;
    setAddress("replace");
    showCount();
    rows.restart();
  }

  // Back or Forward, or an address typed, for this workflow: the filters and job it says.
  function showAddress(query) {
    const wanted = filterOf(query);
    if (JSON.stringify(wanted) !== JSON.stringify(filter)) {
      Object.assign(filter, wanted);
      showFilters();
      showCount();
      rows.restart();
    }
    const serial = Number(query.get("job")) || null;
    if (serial === openSerial) return;
    if (serial) openJob(serial, { workflow: name }, "none");
    else closeJob({ address: false });
  }

  stateSelect.addEventListener("change", () => {
    filter.state = stateSelect.value;
    restart();
  });
  nameInput.addEventListener(
    "input",
    debounce(() => {
      filter.name = nameInput.value.trim();
      restart();
    }, 250),
  );
  orderSelect.addEventListener("change", () => {
    filter.order = orderSelect.value;
    restart();
  });
  shownSelect.addEventListener("change", () => {
    filter.obsolete = shownSelect.value;
    restart();
  });

  showFilters();
  const openAtFirst = Number(address.get("job")) || null;
  if (openAtFirst) openJob(openAtFirst, { workflow: name }, "none");
  readLevel();
  listen();
  const every = setInterval(refresh, REFRESH_ANYWAY_MS);
  const dispose = () => {
    alive = false;
    menu.dispose();
    rows.dispose();
    clearInterval(every);
    if (source) source.close();
    if (closePanel) closePanel();
  };
  dispose.showAddress = showAddress; // app.js: the same view, another query (Back, Forward)
  return dispose;
}
