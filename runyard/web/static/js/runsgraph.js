// The runs page's workflow graph (read-only), shown by a toggle above the runs table: each
// task's live jobs by state, fetched again whenever the page hears that the workflow changed;
// or, when a run is picked (a click on its name), the state of that run's job of each task.

import { api } from "./api.js";
import { enc, h } from "./dom.js";
import { workflowGraph } from "./graph.js";
import { graphTask } from "./graphlayout.js";

export function runsGraph(name, { notify }) {
  let loaded = false;
  let picked = null; // the run whose jobs are shown, or null: the counts of all runs
  const allRuns = h("button", { type: "button", class: "graph-all-runs", hidden: true, onclick: () => pick(null) }, "All runs");
  const graph = workflowGraph({ editable: false, notify, tools: [allRuns] });
  const element = h("section", { class: "runs-graph", hidden: true, "aria-label": "Workflow graph" }, graph.element);
  const toggle = h("button", { type: "button", class: "graph-toggle", "aria-pressed": "false", title: "The workflow as a graph, with each task's jobs by state" }, "Graph");
  toggle.addEventListener("click", () => {
    element.hidden = !element.hidden;
    toggle.setAttribute("aria-pressed", String(!element.hidden));
    if (!element.hidden) (loaded ? refresh() : load());
  });

  async function load() {
    try {
      const [workflow, types] = await Promise.all([api("GET", `/api/workflows/${enc(name)}`), api("GET", "/api/task-types")]);
      const byKey = new Map(types.map((tt) => [`${tt.name}\u0000${tt.version}`, tt]));
      const tasks = workflow.tasks.map((t) => graphTask({ ...t, type: byKey.get(`${t.task_type.name}\u0000${t.task_type.version}`) }));
      graph.draw(tasks, workflow.layout);
      graph.setRun(picked);
      loaded = true;
      await refresh();
      graph.fit();
    } catch (exc) {
      notify(exc.message, "error");
    }
  }

  // The counts again (the workflow changed); only while the graph is shown.
  async function refresh() {
    if (element.hidden || !loaded) return;
    try {
      graph.setCounts((await api("GET", `/api/workflows/${enc(name)}/task-counts`)).tasks);
    } catch (exc) {
      notify(exc.message, "error");
    }
  }

  // Show one run's jobs (a run as the runs page lists it: {name, jobs: {task: job}}), or
  // none: the counts of all runs.
  function pick(run) {
    picked = run ? { id: run.id, name: run.name, jobs: run.jobs } : null;
    allRuns.hidden = !picked;
    if (loaded) graph.setRun(picked);
  }

  // A run drawn again in the table (its jobs changed): the picked one is shown anew.
  function saw(run) {
    if (picked && run.id === picked.id && run.jobs !== picked.jobs) pick(run);
  }

  return { toggle, element, refresh, pick, saw, shown: () => !element.hidden };
}
