// The runs table's actions on runs: the menu of one run (its ⋯ button or a right click:
// rename, copy, priority, obsolete with Undo; Restore for an obsolete run) and the bar of a
// selection of runs (obsolete, priority, restart a task's jobs; Restore for obsolete runs),
// and Re-run stale (the workflow's stale jobs).
// runs.js draws the rows and calls these; ``refresh`` fetches the rows in view again.

import { api } from "./api.js";
import { confirmAction } from "./confirm.js";
import { enc, h } from "./dom.js";
import { allows, gateAll, needsText } from "./session.js";

export const PRIORITIES = ["high", "normal", "paused"];
const RESTARTABLE = new Set(["Done", "Failed", "Aborted"]);

// The menu of one run: answers {open(run, anchor), close(), dispose()}. ``level()``: the
// user's level on the workflow; below operate the menu's actions are disabled.
export function runMenu({ notify, refresh, level = () => undefined }) {
  let menu = null;

  function close() {
    if (menu) menu.remove();
    menu = null;
  }

  async function runAction(label, method, path, json) {
    try {
      const answer = await api(method, path, json === undefined ? {} : { json });
      refresh();
      return answer;
    } catch (exc) {
      notify(`${label}: ${exc.message}`, "error");
      return null;
    }
  }

  async function obsoleteRun(run) {
    if (await runAction("Obsolete", "POST", `/api/runs/${run.id}/obsolete`)) {
      notify(`Run ${run.name} is obsolete`, "info", { label: "Undo (restore)", run: () => restoreRun(run) });
    }
  }

  async function restoreRun(run) {
    const restored = await runAction("Restore", "POST", `/api/runs/${run.id}/restore`);
    if (restored) notify(`Run ${restored.name} restored`);
  }

  const menuItem = (label, cls, fn) => h("button", { type: "button", class: `menu-item ${cls}`, onclick: () => { close(); fn(); } }, label);

  // An obsolete run: Restore is all that makes sense (its jobs wait as they were).
  function obsoleteMenu(run) {
    return [
      h("div", { class: "menu-title" }, run.name, " ", h("span", { class: "obsolete-mark" }, "obsolete")),
      menuItem("Restore", "restore-run primary", () => restoreRun(run)),
    ];
  }

  function liveMenu(run) {
    const rename = h("input", { class: "run-name-input", "aria-label": "New run name", value: run.name });
    const renameForm = h("form", { class: "inline-form" }, rename, h("button", { type: "submit", class: "primary" }, "Rename"));
    renameForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      close();
      const renamed = await runAction("Rename", "PUT", `/api/runs/${run.id}/name`, { name: rename.value });
      if (renamed) notify(`Run renamed ${renamed.name}`);
    });
    return [
      h("div", { class: "menu-title" }, run.name),
      renameForm,
      menuItem("Copy", "copy-run", async () => {
        const copy = await runAction("Copy", "POST", `/api/runs/${run.id}/copy`, {});
        if (copy) notify(`Run copied as ${copy.name}`);
      }),
      h("div", { class: "menu-row" }, "Priority ", PRIORITIES.map((p) =>
        h("button", { type: "button", class: `priority-${p}${run.priority === p ? " current" : ""}`, "data-priority": p, onclick: async () => {
          close();
          if (await runAction("Priority", "PUT", `/api/runs/${run.id}/priority`, { priority: p })) notify(`Run ${run.name}: priority ${p}`);
        } }, p))),
      menuItem("Obsolete", "obsolete-run danger", () => obsoleteRun(run)),
    ];
  }

  function open(run, anchor) {
    close();
    menu = h("div", { class: `run-menu${run.obsolete ? " for-obsolete" : ""}`, role: "menu" }, run.obsolete ? obsoleteMenu(run) : liveMenu(run));
    const mine = level();
    if (mine !== undefined && !allows(mine, "operate")) {
      gateAll(menu, "operate", mine);
      menu.append(h("p", { class: "muted needs-note" }, needsText("operate", mine)));
    }
    const rect = anchor.getBoundingClientRect();
    menu.style.left = `${Math.min(rect.left, window.innerWidth - 300)}px`;
    menu.style.top = `${Math.min(rect.bottom + 2, window.innerHeight - 240)}px`;
    document.body.append(menu);
    const first = menu.querySelector("input:enabled, .menu-item:enabled");
    if (first) {
      first.focus();
      if (first.select) first.select();
    }
  }

  const outside = (event) => {
    if (menu && !menu.contains(event.target) && !event.target.closest(".run-menu-button")) close();
  };
  const escape = (event) => event.key === "Escape" && close();
  document.addEventListener("mousedown", outside);
  document.addEventListener("keydown", escape);

  return {
    open,
    close,
    dispose() {
      close();
      document.removeEventListener("mousedown", outside);
      document.removeEventListener("keydown", escape);
    },
  };
}

// The selection of runs and its bar. Live runs get the live actions, obsolete ones Restore;
// a mixed selection shows both, each acting on its own runs. ``body`` holds the drawn rows
// (their checkboxes). Answers {element, setTasks(tasks), toggle(run, on), has(id), remember(run)}.
export function runSelection({ notify, refresh, body, level = () => undefined }) {
  const selected = new Map(); // run id -> run (as last drawn)
  const count = h("span", { class: "bulk-count" });
  const priority = h("select", { "aria-label": "Priority of the selected runs", class: "bulk-priority" }, h("option", { value: "" }, "Set priority\u2026"), PRIORITIES.map((p) => h("option", { value: p }, p)));
  const task = h("select", { "aria-label": "Task to restart in the selected runs", class: "bulk-task" });
  // What makes sense for live runs only; obsolete runs can be restored, nothing else.
  const live = h(
    "span",
    { class: "group bulk-live" },
    h("button", { type: "button", class: "bulk-obsolete danger", onclick: () => bulkObsolete() }, "Obsolete"),
    priority,
    h("span", { class: "group" }, task, h("button", { type: "button", class: "bulk-restart", onclick: () => bulkRestart() }, "Restart jobs")),
  );
  const restore = h("button", { type: "button", class: "bulk-restore primary", title: "Restore the selected obsolete runs", onclick: () => bulkRestore() }, "Restore");
  const element = h(
    "div",
    { class: "toolbar bulk", hidden: true },
    count,
    live,
    restore,
    h("button", { type: "button", class: "link bulk-clear", title: "Clear the selection", "data-always": true, onclick: () => clearSelection() }, "\u00D7"),
  );

  function show() {
    const runs = [...selected.values()];
    element.hidden = runs.length === 0;
    live.hidden = !runs.some((run) => !run.obsolete);
    restore.hidden = !runs.some((run) => run.obsolete);
    const obsolete = runs.filter((run) => run.obsolete).length;
    count.textContent = `${runs.length} run${runs.length === 1 ? "" : "s"} selected${obsolete && obsolete < runs.length ? ` (${obsolete} obsolete)` : ""}`;
    gateAll(element, "operate", level());
  }

  function clearSelection() {
    selected.clear();
    for (const el of body.querySelectorAll(".select-run")) el.checked = false;
    for (const el of body.querySelectorAll(".runs-row.chosen")) el.classList.remove("chosen");
    show();
  }

  // ``call`` for each of ``runs`` (default: the selected runs that are obsolete
  // (``obsolete``) or live (not)); the notice may offer ``undo(runs it acted on)``.
  async function eachSelected(label, obsolete, call, { runs = chosen(obsolete), undo = null } = {}) {
    const acted = [];
    const problems = [];
    for (const run of runs) {
      try {
        if (await call(run)) acted.push(run);
      } catch (exc) {
        problems.push(`${run.name}: ${exc.message}`);
      }
    }
    const action = undo && acted.length ? { label: "Undo", run: () => undo(acted) } : null;
    notify(`${label}: ${acted.length} of ${runs.length}${problems.length ? `\n${problems.join("\n")}` : ""}`, problems.length ? "error" : "info", action);
    refresh();
  }

  const chosen = (obsolete) => [...selected.values()].filter((run) => Boolean(run.obsolete) === obsolete);

  // Obsoleting runs can be undone: the notice offers to restore them.
  async function bulkObsolete() {
    const restore = (runs) => eachSelected("Restored", true, (run) => api("POST", `/api/runs/${run.id}/restore`), { runs });
    await eachSelected("Obsoleted", false, (run) => api("POST", `/api/runs/${run.id}/obsolete`), { undo: restore });
    clearSelection();
  }

  async function bulkRestore() {
    await eachSelected("Restored", true, (run) => api("POST", `/api/runs/${run.id}/restore`));
    clearSelection();
  }

  priority.addEventListener("change", async () => {
    const chosen = priority.value;
    if (!chosen) return;
    await eachSelected(`Priority ${chosen}`, false, (run) => api("PUT", `/api/runs/${run.id}/priority`, { json: { priority: chosen } }));
    priority.value = "";
  });

  async function bulkRestart() {
    const name = task.value;
    const runs = chosen(false);
    const sure = await confirmAction({
      question: `Restart the ${name} jobs of ${runs.length} run${runs.length === 1 ? "" : "s"}?`,
      consequence: `In each selected run, its ${name} job (if Done, Failed or Aborted) and every job downstream of it become Obsolete; a new ${name} job is created in its place.`,
      action: "Restart jobs",
    });
    if (!sure) return;
    await eachSelected(`Restarted ${name}`, false, async (run) => {
      const job = run.jobs[name];
      if (!job || !RESTARTABLE.has(job.state)) return false;
      await api("POST", `/api/jobs/${job.serial}/restart`);
      return true;
    });
  }

  return {
    element,
    setTasks(tasks) {
      task.replaceChildren(...tasks.map((t) => h("option", { value: t }, t)));
    },
    toggle(run, on) {
      if (on) selected.set(run.id, run);
      else selected.delete(run.id);
      show();
    },
    has: (id) => selected.has(id),
    // A selected run drawn again: keep its newest state (the bar acts on it).
    remember(run) {
      if (selected.has(run.id)) selected.set(run.id, run);
    },
  };
}

// Re-run stale: restarts the stale jobs of workflow ``name``, in dependency order.
export function rerunStaleButton(name, { notify, refresh }) {
  const button = h("button", { type: "button", class: "rerun-stale", title: "Restart the stale jobs of this workflow, in dependency order" }, "Re-run stale");
  button.addEventListener("click", async () => {
    const sure = await confirmAction({
      question: `Re-run the stale jobs of ${name}?`,
      consequence: "Every stale job and the jobs downstream of it become Obsolete; new jobs compute them again, in dependency order.",
      action: "Re-run stale",
    });
    if (!sure) return;
    button.disabled = true;
    try {
      const answer = await api("POST", `/api/workflows/${enc(name)}/rerun-stale`, { json: {} });
      notify(answer.jobs ? `Re-running ${answer.jobs} stale job${answer.jobs === 1 ? "" : "s"}` : "No stale job to re-run");
      refresh();
    } catch (exc) {
      notify(exc.message, "error");
    }
    button.disabled = false;
  });
  return button;
}
