// The runs table of a workflow: runs as rows, tasks as columns, each cell the state of the
// run's live job of that task. Rows come from the server a block at a time and only the
// rows in view exist in the page (virtual scrolling), so 100,000 runs scroll as smoothly
// as ten. A Server-Sent Events stream says when something changed; the rows in view are
// then fetched again. Runs have context actions (rename, copy, priority, obsolete), a
// selection of runs has bulk actions, stale cells and jobs no worker can run are marked.

import { api } from "./api.js";
import { ICONS, STATES, append, clear, countChips, debounce, enc, h } from "./dom.js";
import { jobPanel } from "./job.js";
import { pickUserData, userDataValue } from "./userdata.js";
import { actionButton, workflowActions } from "./workflows.js";

const ROW_HEIGHT = 30; // px; the same as .runs-row in app.css
const BLOCK = 200; // runs per request
const OVERSCAN = 8; // rows drawn above and below the visible ones
const REFRESH_GAP_MS = 300; // at most about three refreshes a second
const REFRESH_ANYWAY_MS = 30000; // renames and priorities raise no event: look now and then
const PRIORITIES = ["high", "normal", "paused"];
const RESTARTABLE = new Set(["Done", "Failed", "Aborted"]);
const PICKED_TYPES = new Set(["ForeignFile", "Folder", "Image"]);

export function runsView(main, [name], { notify }) {
  const filter = { state: "", name: "", order: "sort_order" };
  let tasks = [];
  let total = 0;
  let generation = 0; // raised by every filter change: answers of older requests are dropped
  const blocks = new Map(); // block index -> runs
  const loading = new Set(); // "generation:block" of the requests under way
  const drawn = new Map(); // row index -> {el, run}
  let closePanel = null;
  let source = null;
  let alive = true;
  const selected = new Map(); // run id -> run (as last drawn)
  let menu = null;

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
  const newRunButton = h("button", { type: "button", class: "new-run primary", onclick: () => openNewRun() }, "New Run");
  const rerunButton = h("button", { type: "button", class: "rerun-stale", title: "Restart the stale jobs of this workflow, in dependency order", onclick: () => rerunStale() }, "Re-run stale");
  const editLink = h("a", { href: `#/workflows/${enc(name)}/edit`, class: "button edit-workflow" }, "Edit workflow");
  const bulkCount = h("span", { class: "bulk-count" });
  const bulkPriority = h("select", { "aria-label": "Priority of the selected runs", class: "bulk-priority" }, h("option", { value: "" }, "Set priority\u2026"), PRIORITIES.map((p) => h("option", { value: p }, p)));
  const bulkTask = h("select", { "aria-label": "Task to restart in the selected runs", class: "bulk-task" });
  const bulk = h(
    "div",
    { class: "toolbar bulk", hidden: true },
    bulkCount,
    h("button", { type: "button", class: "bulk-obsolete danger", onclick: () => bulkObsolete() }, "Obsolete"),
    bulkPriority,
    h("span", { class: "group" }, bulkTask, h("button", { type: "button", class: "bulk-restart", onclick: () => bulkRestart() }, "Restart jobs")),
    h("button", { type: "button", class: "link bulk-clear", title: "Clear the selection", onclick: () => clearSelection() }, "\u00D7"),
  );
  const head = h("div", { class: "runs-head runs-row" });
  const body = h("div", { class: "runs-body" });
  const scroller = h("div", { class: "runs-scroll", tabindex: "0" }, head, body);
  const panel = h("aside", { class: "job-panel", hidden: true });
  const dialog = h("dialog", { class: "new-run-dialog" });

  main.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/workflows", class: "back" }, "\u2190 Workflows"), heading, wfState, wfButtons, editLink, h("span", { class: "grow" }), summary),
    h("div", { class: "toolbar filters" }, newRunButton, rerunButton, stateSelect, nameInput, orderSelect, reduceBox, h("span", { class: "grow" }), count),
    bulk,
    h("div", { class: "runs-layout" }, scroller, panel),
    dialog,
  );

  // -- data -------------------------------------------------------------------------------
  function query(offset, limit) {
    const params = new URLSearchParams({ offset, limit, order: filter.order });
    if (filter.state) params.set("state", filter.state);
    if (filter.name) params.set("name", filter.name);
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

  function setShape({ tasks: newTasks, total: newTotal, reduce }) {
    showReduce(reduce || {});
    if (newTasks.join("\u0000") !== tasks.join("\u0000")) {
      tasks = newTasks;
      scroller.style.setProperty("--tasks", String(Math.max(1, tasks.length)));
      append(clear(head), h("div", { class: "run-name" }, "Run"), tasks.map((t) => h("div", { class: "cell head", title: t }, t)));
      append(clear(bulkTask), tasks.map((t) => h("option", { value: t }, t)));
      for (const row of drawn.values()) row.el.remove();
      drawn.clear();
    }
    if (newTotal !== total) {
      total = newTotal;
      body.style.height = `${total * ROW_HEIGHT}px`;
      count.textContent = `${total.toLocaleString()} run${total === 1 ? "" : "s"}`;
    }
  }

  function visibleRange() {
    const top = Math.max(0, scroller.scrollTop - head.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((top + scroller.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    return [first, last];
  }

  // The reduce tasks: one job per workflow, not a column.
  let reduceKey = "";
  function showReduce(reduce) {
    const key = JSON.stringify(reduce);
    if (key === reduceKey) return;
    reduceKey = key;
    append(
      clear(reduceBox),
      Object.entries(reduce).map(([task, job]) =>
        h(
          "button",
          {
            type: "button",
            class: `reduce-job s-${job.state.toLowerCase()}`,
            title: `reduce task ${task}: job ${job.serial}, ${job.state}`,
            dataset: { task, serial: String(job.serial), state: job.state },
            onclick: () => openJob(job.serial, { workflow: name, task }),
          },
          `${task} `,
          h("span", { class: "state" }, `${ICONS[job.state] || "?"} ${job.state}`),
        ),
      ),
    );
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
    }
  }

  function runRow(run, index) {
    const title = [run.name, run.entity && `entity ${run.entity.name}`, `sort order ${run.sort_order}`, run.priority !== "normal" && `priority ${run.priority}`]
      .filter(Boolean)
      .join("\n");
    if (selected.has(run.id)) selected.set(run.id, run);
    const box = h("input", { type: "checkbox", class: "select-run", "aria-label": `Select run ${run.name}` });
    box.checked = selected.has(run.id);
    return h(
      "div",
      { class: `runs-row run priority-${run.priority}${selected.has(run.id) ? " chosen" : ""}`, role: "row", dataset: { run: String(run.id), index: String(index) } },
      h(
        "div",
        { class: "run-name", title },
        box,
        run.priority !== "normal" ? h("span", { class: "prio", title: `priority ${run.priority}` }, run.priority === "paused" ? "\u23F8" : "\u2191") : null,
        h("span", { class: "text" }, run.name),
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
      job.stale ? `Stale: ${job.stale}` : "",
      missing ? `${missing}: no registered worker provides what this task type needs` : "",
      job.error,
    ].filter(Boolean).join("\n");
    const dataset = { serial: String(job.serial), task, state: job.state };
    if (job.stale) dataset.stale = job.stale;
    if (missing) dataset.workerMissing = job.worker_missing.join(",");
    return h(
      "div",
      { class: `cell job s-${job.state.toLowerCase()}${job.stale ? " stale" : ""}${missing ? " worker-missing" : ""}`, title, dataset },
      h("span", { class: "icon", "aria-hidden": "true" }, ICONS[job.state] || "?"),
      h("span", { class: "label" }, missing || job.state),
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
    wfState.className = `wf-state wf-${state.toLowerCase()}`;
    wfState.textContent = locked ? `${state} \uD83D\uDD12` : state;
    append(clear(wfButtons), workflowActions({ state, locked }).map((a) => actionButton(name, a, { notify, after: () => {} })));
  }

  function listen() {
    source = new EventSource(`/api/workflows/${enc(name)}/events`);
    source.addEventListener("changed", (event) => {
      const change = JSON.parse(event.data);
      append(clear(summary), countChips(change.jobs));
      showWorkflow(change.state, change.locked);
      refreshVisible();
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
    openRunMenu(run, row.querySelector(".run-menu-button"));
  });

  body.addEventListener("click", (event) => {
    const box = event.target.closest(".select-run");
    if (box) {
      const row = box.closest(".runs-row");
      const run = drawn.get(Number(row.dataset.index))?.run;
      if (!run) return;
      if (box.checked) selected.set(run.id, run);
      else selected.delete(run.id);
      row.classList.toggle("chosen", box.checked);
      showBulk();
      return;
    }
    const menuButton = event.target.closest(".run-menu-button");
    if (menuButton) {
      const row = menuButton.closest(".runs-row");
      const run = drawn.get(Number(row.dataset.index))?.run;
      if (run) openRunMenu(run, menuButton);
      return;
    }
    const target = event.target.closest(".cell.job");
    if (!target) return;
    const row = target.closest(".runs-row");
    const run = drawn.get(Number(row.dataset.index))?.run;
    for (const el of body.querySelectorAll(".cell.selected")) el.classList.remove("selected");
    target.classList.add("selected");
    openJob(Number(target.dataset.serial), { workflow: name, task: target.dataset.task, run: run && run.name });
  });

  // -- run actions ---------------------------------------------------------------------------
  function closeMenu() {
    if (menu) menu.remove();
    menu = null;
  }

  async function runAction(label, method, path, json) {
    try {
      const answer = await api(method, path, json === undefined ? {} : { json });
      refreshVisible();
      return answer;
    } catch (exc) {
      notify(`${label}: ${exc.message}`, "error");
      return null;
    }
  }

  async function obsoleteRun(run) {
    if (await runAction("Obsolete", "POST", `/api/runs/${run.id}/obsolete`)) {
      notify(`Run ${run.name} is obsolete`, "info", { label: "Undo (restore)", run: () => runAction("Restore", "POST", `/api/runs/${run.id}/restore`).then((r) => r && notify(`Run ${r.name} restored`)) });
    }
  }

  function openRunMenu(run, anchor) {
    closeMenu();
    const rename = h("input", { class: "run-name-input", "aria-label": "New run name", value: run.name });
    const renameForm = h("form", { class: "inline-form" }, rename, h("button", { type: "submit", class: "primary" }, "Rename"));
    renameForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      closeMenu();
      const renamed = await runAction("Rename", "PUT", `/api/runs/${run.id}/name`, { name: rename.value });
      if (renamed) notify(`Run renamed ${renamed.name}`);
    });
    const item = (label, cls, fn) => h("button", { type: "button", class: `menu-item ${cls}`, onclick: () => { closeMenu(); fn(); } }, label);
    menu = h(
      "div",
      { class: "run-menu", role: "menu" },
      h("div", { class: "menu-title" }, run.name),
      renameForm,
      item("Copy", "copy-run", async () => {
        const copy = await runAction("Copy", "POST", `/api/runs/${run.id}/copy`, {});
        if (copy) notify(`Run copied as ${copy.name}`);
      }),
      h("div", { class: "menu-row" }, "Priority ", PRIORITIES.map((p) =>
        h("button", { type: "button", class: `priority-${p}${run.priority === p ? " current" : ""}`, "data-priority": p, onclick: async () => {
          closeMenu();
          if (await runAction("Priority", "PUT", `/api/runs/${run.id}/priority`, { priority: p })) notify(`Run ${run.name}: priority ${p}`);
        } }, p))),
      item("Obsolete", "obsolete-run danger", () => obsoleteRun(run)),
    );
    const rect = anchor.getBoundingClientRect();
    menu.style.left = `${Math.min(rect.left, window.innerWidth - 300)}px`;
    menu.style.top = `${Math.min(rect.bottom + 2, window.innerHeight - 240)}px`;
    document.body.append(menu);
    rename.focus();
    rename.select();
  }

  const outside = (event) => {
    if (menu && !menu.contains(event.target) && !event.target.closest(".run-menu-button")) closeMenu();
  };
  const escape = (event) => event.key === "Escape" && closeMenu();
  document.addEventListener("mousedown", outside);
  document.addEventListener("keydown", escape);

  // -- bulk actions on the selected runs ----------------------------------------------------
  function showBulk() {
    bulk.hidden = selected.size === 0;
    bulkCount.textContent = `${selected.size} run${selected.size === 1 ? "" : "s"} selected`;
  }

  function clearSelection() {
    selected.clear();
    for (const el of body.querySelectorAll(".select-run")) el.checked = false;
    for (const el of body.querySelectorAll(".runs-row.chosen")) el.classList.remove("chosen");
    showBulk();
  }

  async function eachSelected(label, call) {
    let done = 0;
    const problems = [];
    for (const run of [...selected.values()]) {
      try {
        if (await call(run)) done += 1;
      } catch (exc) {
        problems.push(`${run.name}: ${exc.message}`);
      }
    }
    notify(`${label}: ${done} of ${selected.size}${problems.length ? `\n${problems.join("\n")}` : ""}`, problems.length ? "error" : "info");
    refreshVisible();
  }

  async function bulkObsolete() {
    await eachSelected("Obsoleted", (run) => api("POST", `/api/runs/${run.id}/obsolete`));
    clearSelection();
  }

  bulkPriority.addEventListener("change", async () => {
    const priority = bulkPriority.value;
    if (!priority) return;
    await eachSelected(`Priority ${priority}`, (run) => api("PUT", `/api/runs/${run.id}/priority`, { json: { priority } }));
    bulkPriority.value = "";
  });

  async function bulkRestart() {
    const task = bulkTask.value;
    await eachSelected(`Restarted ${task}`, async (run) => {
      const job = run.jobs[task];
      if (!job || !RESTARTABLE.has(job.state)) return false;
      await api("POST", `/api/jobs/${job.serial}/restart`);
      return true;
    });
  }

  async function rerunStale() {
    rerunButton.disabled = true;
    try {
      const answer = await api("POST", `/api/workflows/${enc(name)}/rerun-stale`, { json: {} });
      notify(answer.jobs ? `Re-running ${answer.jobs} stale job${answer.jobs === 1 ? "" : "s"}` : "No stale job to re-run");
      refreshVisible();
    } catch (exc) {
      notify(exc.message, "error");
    }
    rerunButton.disabled = false;
  }

  // -- New Run -----------------------------------------------------------------------------
  dialog.addEventListener("close", () => clear(dialog));

  async function openNewRun() {
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
  scroller.addEventListener("scroll", draw, { passive: true });
  const resize = new ResizeObserver(draw);
  resize.observe(scroller);

  fetchBlock(0);
  listen();
  const every = setInterval(refreshVisible, REFRESH_ANYWAY_MS);
  return () => {
    alive = false;
    closeMenu();
    document.removeEventListener("mousedown", outside);
    document.removeEventListener("keydown", escape);
    clearInterval(every);
    if (source) source.close();
    if (closePanel) closePanel();
    resize.disconnect();
    if (frame) cancelAnimationFrame(frame);
  };
}
