// The runs table of a workflow: runs as rows, tasks as columns, each cell the state of the
// run's live job of that task. Rows come from the server a block at a time and only the
// rows in view exist in the page (virtual scrolling), so 100,000 runs scroll as smoothly
// as ten. A Server-Sent Events stream says when something changed; the rows in view are
// then fetched again. Stale cells and jobs no worker can run are marked. Obsolete runs are
// listed on demand (struck through, labelled). The actions on a run (its menu) and on a
// selection of runs (the bulk bar), and Re-run stale, are in runactions.js; the selection of
// jobs (cells, ranges, columns, states) and restarting them, in jobselection.js. What the
// user's level on the workflow does not allow is disabled, saying which level it needs.

import { api } from "./api.js";
import { CLAIMED, ICONS, STATES, append, clear, countChips, debounce, enc, h } from "./dom.js";
import { jobPanel } from "./job.js";
import { jobSelection } from "./jobselection.js";
import { openNewRun } from "./newrun.js";
import { reduceButtons } from "./reduces.js";
import { rerunStaleButton, runMenu, runSelection } from "./runactions.js";
import { runsGraph } from "./runsgraph.js";
import { gate, levelOf, needsText } from "./session.js";
import { openShareDialog } from "./sharing.js";
import { actionButton, workflowActions } from "./workflows.js";

const ROW_HEIGHT = 30; // px; the same as .runs-row in app.css
const BLOCK = 200; // runs per request
const OVERSCAN = 8; // rows drawn above and below the visible ones
const REFRESH_GAP_MS = 300; // at most about three refreshes a second
const REFRESH_ANYWAY_MS = 30000; // renames and priorities raise no event: look now and then
// The runs listed, as the page API's parameter obsolete takes them.
const SHOWN = [["exclude", "Live runs"], ["include", "Live and obsolete runs"], ["only", "Obsolete runs only"]];

export function runsView(main, [name], { notify }) {
  const filter = { state: "", name: "", order: "sort_order", obsolete: "exclude" };
  let tasks = [];
  let total = 0;
  let generation = 0; // raised by every filter change: answers of older requests are dropped
  const blocks = new Map(); // block index -> runs
  const loading = new Set(); // "generation:block" of the requests under way
  const drawn = new Map(); // row index -> {el, run}
  let closePanel = null;
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
  const levelNote = h("span", { class: "level-note", hidden: true });
  const shareButton = h("button", { type: "button", class: "share-button", hidden: true, title: "Share it with users or groups", onclick: () => openShareDialog(name, { notify }) }, "Share\u2026");
  const head = h("div", { class: "runs-head runs-row" });
  const body = h("div", { class: "runs-body" });
  const emptyNote = h("p", { class: "empty runs-empty", hidden: true });
  const scroller = h("div", { class: "runs-scroll", tabindex: "0" }, head, body, emptyNote);
  const panel = h("aside", { class: "job-panel", hidden: true });
  const dialog = h("dialog", { class: "new-run-dialog" });
  dialog.addEventListener("close", () => clear(dialog));
  const refresh = () => refreshVisible();
  const menu = runMenu({ notify, refresh, level: () => level });
  const selection = runSelection({ notify, refresh, body, level: () => level });
  const rerunButton = rerunStaleButton(name, { notify, refresh });
  const jobs = jobSelection({ name, notify, refresh, runsBetween, tasks: () => tasks, level: () => level });
  const graph = runsGraph(name, { notify }); // the workflow graph above the table (runsgraph.js)

  main.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/workflows", class: "back" }, "\u2190 Workflows"), heading, wfState, wfButtons, editLink, shareButton, levelNote, h("span", { class: "grow" }), summary),
    h("div", { class: "toolbar filters" }, newRunButton, rerunButton, jobs.stateSelect, stateSelect, nameInput, orderSelect, shownSelect, reduceBox, graph.toggle, h("span", { class: "grow" }), count),
    graph.element,
    selection.element,
    jobs.element,
    h("div", { class: "runs-layout" }, scroller, panel),
    dialog,
  );

  // -- data -------------------------------------------------------------------------------
  function query(offset, limit) {
    const params = new URLSearchParams({ offset, limit, order: filter.order });
    if (filter.state) params.set("state", filter.state);
    if (filter.name) params.set("name", filter.name);
    if (filter.obsolete !== "exclude") params.set("obsolete", filter.obsolete);
    return `/api/workflows/${enc(name)}/runs?${params}`;
  }

  async function fetchBlock(index) {
    const asked = generation;
    const key = `${asked}:${index}`;
    if (loading.has(key)) return;
    loading.add(key);
    try {
      const page = await api("GET", query(index * BLOCK, BLOCK));
      if (!alive || asked !== generation) return;
      blocks.set(index, page.runs);
      setShape(page);
      draw();
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    } finally {
      loading.delete(key);
    }
  }

  function setShape({ tasks: newTasks, total: newTotal, reduce, reduce_held: held }) {
    showReduce(reduce || {}, held || {});
    if (newTasks.join("\u0000") !== tasks.join("\u0000")) {
      tasks = newTasks;
      scroller.style.setProperty("--tasks", String(Math.max(1, tasks.length)));
      const heading = (t) => h("div", { class: "cell head", title: `${t}: select all its jobs`, role: "button", tabindex: "0", dataset: { task: t } }, t);
      append(clear(head), h("div", { class: "run-name" }, "Run"), tasks.map(heading));
      jobs.paint(body, head);
      selection.setTasks(tasks);
      for (const row of drawn.values()) row.el.remove();
      drawn.clear();
    }
    if (newTotal !== total) {
      total = newTotal;
      body.style.height = `${total * ROW_HEIGHT}px`;
    }
    showCount();
  }

  // The count of runs, and what to do when there is none.
  function showCount() {
    const kind = filter.obsolete === "only" ? "obsolete run" : "run";
    count.textContent = `${total.toLocaleString()} ${kind}${total === 1 ? "" : "s"}`;
    emptyNote.hidden = total > 0;
    const filtered = filter.state || filter.name || filter.obsolete === "only";
    emptyNote.textContent = filtered ? "No run matches these filters." : tasks.length ? "No run yet: New Run starts one at a source task." : "No task yet: Edit workflow adds them.";
  }

  // The runs of rows first..last, with the blocks not at hand fetched (a shift-click range).
  async function runsBetween(first, last) {
    const found = [];
    for (let b = Math.floor(first / BLOCK); b <= Math.floor(last / BLOCK); b += 1) {
      const runs = blocks.get(b) || (await api("GET", query(b * BLOCK, BLOCK))).runs;
      runs.forEach((run, i) => b * BLOCK + i >= first && b * BLOCK + i <= last && found.push(run));
    }
    return found;
  }

  function visibleRange() {
    const top = Math.max(0, scroller.scrollTop - head.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((top + scroller.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    return [first, last];
  }

  // The reduce tasks (reduces.js): not columns; a button each, saying why one is held back.
  let reduceKey = "";
  function showReduce(reduce, held) {
    const key = JSON.stringify([reduce, held]);
    if (key === reduceKey) return;
    reduceKey = key;
    append(clear(reduceBox), reduceButtons(reduce, held, (serial, task) => openJob(serial, { workflow: name, task })));
  }

  // -- drawing ----------------------------------------------------------------------------
  let frame = 0;
  function draw() {
    if (!frame) frame = requestAnimationFrame(drawNow);
  }

  function drawNow() {
    frame = 0;
    const [first, last] = visibleRange();
    for (const [index, row] of drawn) {
      if (index < first || index > last) {
        row.el.remove();
        drawn.delete(index);
      }
    }
    for (let index = first; index <= last; index += 1) {
      const runs = blocks.get(Math.floor(index / BLOCK));
      if (!runs) {
        fetchBlock(Math.floor(index / BLOCK));
        continue;
      }
      const run = runs[index % BLOCK];
      const row = drawn.get(index);
      if (row && row.run === run) continue;
      const el = run ? runRow(run, index) : h("div", { class: "runs-row placeholder" });
      el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
      if (row) row.el.replaceWith(el);
      else body.append(el);
      drawn.set(index, { el, run });
      if (run) graph.saw(run);
    }
  }

  function runRow(run, index) {
    const title = [
      run.name,
      run.obsolete && "obsolete: none of its jobs runs; Restore brings it back as it was",
      run.entity && `entity ${run.entity.name}`,
      `sort order ${run.sort_order}`,
      !run.obsolete && run.priority !== "normal" && `priority ${run.priority}`,
    ]
      .filter(Boolean)
      .join("\n");
    selection.remember(run);
    const chosen = selection.has(run.id);
    const box = h("input", { type: "checkbox", class: "select-run", "aria-label": `Select run ${run.name}` });
    box.checked = chosen;
    return h(
      "div",
      { class: `runs-row run priority-${run.priority}${run.obsolete ? " obsolete" : ""}${chosen ? " chosen" : ""}`, role: "row", dataset: { run: String(run.id), index: String(index), obsolete: String(run.obsolete) } },
      h(
        "div",
        { class: "run-name", title },
        box,
        !run.obsolete && run.priority !== "normal" ? h("span", { class: "prio", title: `priority ${run.priority}` }, run.priority === "paused" ? ICONS.Waiting : "\u2191") : null,
        h("span", { class: "text" }, run.name),
        run.obsolete ? h("span", { class: "obsolete-mark" }, "obsolete") : null,
        h("button", { type: "button", class: "link run-menu-button", title: "Run actions", "aria-label": `Actions of run ${run.name}` }, "\u22EF"),
      ),
      tasks.map((task) => cell(run, task)),
    );
  }

  function cell(run, task) {
    const job = run.jobs[task];
    if (!job) return h("div", { class: "cell none", title: `${task}: no job` });
    const missing = job.worker_missing ? `Worker missing [${job.worker_missing.join(", ")}]` : "";
    const title = [
      `${task}: job ${job.serial}, ${job.state}${job.attempt > 1 ? `, attempt ${job.attempt}` : ""}`,
      job.claimed ? CLAIMED : "",
      job.stale ? `Stale: ${job.stale}` : "",
      missing ? `${missing}: no registered worker provides what this task type needs` : "",
      job.error,
    ].filter(Boolean).join("\n");
    const dataset = { serial: String(job.serial), task, state: job.state };
    if (job.stale) dataset.stale = job.stale;
    if (missing) dataset.workerMissing = job.worker_missing.join(",");
    if (job.claimed) dataset.claimed = "true";
    return h(
      "div",
      { class: `cell job s-${job.state.toLowerCase()}${job.stale ? " stale" : ""}${missing ? " worker-missing" : ""}${job.claimed ? " claimed" : ""}${!run.obsolete && jobs.picks(job, task) ? " picked" : ""}`, title, dataset },
      h("span", { class: "icon", "aria-hidden": "true" }, ICONS[job.state] || "?"),
      h("span", { class: "label" }, missing || (job.claimed ? "Claimed" : job.state)),
      job.stale ? h("span", { class: "stale-mark", "aria-label": "stale" }, "\u26A0") : null,
    );
  }

  // -- live updates -----------------------------------------------------------------------
  let refreshing = false;
  let again = false;
  async function refreshVisible() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    const [first, last] = visibleRange();
    const wanted = new Set();
    for (let i = Math.max(0, first); i <= Math.max(first, last); i += 1) wanted.add(Math.floor(i / BLOCK));
    for (const index of [...blocks.keys()]) if (!wanted.has(index)) blocks.delete(index);
    const asked = generation;
    try {
      for (const index of wanted) {
        const page = await api("GET", query(index * BLOCK, BLOCK));
        if (!alive || asked !== generation) return;
        blocks.set(index, page.runs);
        setShape(page);
      }
      draw();
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    } finally {
      refreshing = false;
      if (again && alive) {
        again = false;
        setTimeout(refreshVisible, REFRESH_GAP_MS);
      }
    }
  }

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
      append(clear(summary), countChips(change.jobs));
      showWorkflow(change.state, change.locked);
      refreshVisible();
      graph.refresh();
    });
    source.addEventListener("error", (event) => {
      if (event.data) notify(JSON.parse(event.data).error.message, "error");
    });
  }

  // -- job information ---------------------------------------------------------------------
  function openJob(serial, context) {
    if (closePanel) closePanel();
    panel.hidden = false;
    closePanel = jobPanel(panel, serial, {
      notify,
      context,
      onClose: () => {
        if (closePanel) closePanel();
        closePanel = null;
        panel.hidden = true;
        clear(panel);
      },
      onOpen: (next) => openJob(next, context),
    });
  }

  body.addEventListener("contextmenu", (event) => {
    const row = event.target.closest(".runs-row.run");
    const run = row && drawn.get(Number(row.dataset.index))?.run;
    if (!run || event.target.closest(".cell.job")) return;
    event.preventDefault();
    menu.open(run, row.querySelector(".run-menu-button"));
  });

  body.addEventListener("click", (event) => {
    const picked = event.target.closest(".run-name .text");
    if (picked && graph.shown()) graph.pick(drawn.get(Number(picked.closest(".runs-row").dataset.index))?.run);
  });

  body.addEventListener("click", (event) => {
    const box = event.target.closest(".select-run");
    if (box) {
      const row = box.closest(".runs-row");
      const run = drawn.get(Number(row.dataset.index))?.run;
      if (!run) return;
      row.classList.toggle("chosen", box.checked);
      selection.toggle(run, box.checked);
      return;
    }
    const menuButton = event.target.closest(".run-menu-button");
    if (menuButton) {
      const row = menuButton.closest(".runs-row");
      const run = drawn.get(Number(row.dataset.index))?.run;
      if (run) menu.open(run, menuButton);
      return;
    }
    const target = event.target.closest(".cell.job");
    if (!target) return;
    const row = target.closest(".runs-row");
    const run = drawn.get(Number(row.dataset.index))?.run;
    if (jobs.click(event, target, Number(row.dataset.index))) return;
    for (const el of body.querySelectorAll(".cell.selected")) el.classList.remove("selected");
    target.classList.add("selected");
    openJob(Number(target.dataset.serial), { workflow: name, task: target.dataset.task, run: run && run.name });
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

  // -- filters -------------------------------------------------------------------------------
  function restart() {
    generation += 1;
    blocks.clear();
    for (const row of drawn.values()) row.el.remove();
    drawn.clear();
    scroller.scrollTop = 0;
    fetchBlock(0);
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
    showCount();
    restart();
  });
  scroller.addEventListener("scroll", draw, { passive: true });
  const resize = new ResizeObserver(draw);
  resize.observe(scroller);

  readLevel();
  fetchBlock(0);
  listen();
  const every = setInterval(refreshVisible, REFRESH_ANYWAY_MS);
  return () => {
    alive = false;
    menu.dispose();
    clearInterval(every);
    if (source) source.close();
    if (closePanel) closePanel();
    resize.disconnect();
    if (frame) cancelAnimationFrame(frame);
  };
}
