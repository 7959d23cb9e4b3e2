// How a run's row of the runs table looks: its name (with its checkbox, priority, obsolete
// mark and menu button) and a cell per task: the state of the run's live job of that task,
// stale and worker-missing marks, and a Done job's results (results.js). The rows are
// placed and dropped by runrows.js; runs.js handles what is done with them.

import { CLAIMED, ICONS, h } from "./dom.js";
import { resultLines, resultNodes } from "./results.js";

// ``selection``: the selection of runs (runactions.js); ``picks(job, task)``: whether the
// job's cell is in the selection of jobs (jobselection.js).
export function runRow(run, index, { tasks, selection, picks }) {
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
    { class: `runs-row run priority-${run.priority}${run.obsolete ? " obsolete" : ""}${chosen ? " chosen" : ""}`, role: "row", "aria-rowindex": String(index + 2), dataset: { run: String(run.id), index: String(index), obsolete: String(run.obsolete) } },
    h(
      "div",
      { class: "run-name", title, role: "rowheader" },
      box,
      !run.obsolete && run.priority !== "normal" ? h("span", { class: "prio", title: `priority ${run.priority}` }, run.priority === "paused" ? ICONS.Waiting : "\u2191") : null,
      h("span", { class: "text" }, run.name),
      run.obsolete ? h("span", { class: "obsolete-mark" }, "obsolete") : null,
      h("button", { type: "button", class: "link run-menu-button", title: "Run actions", "aria-label": `Actions of run ${run.name}` }, "\u22EF"),
    ),
    tasks.map((task) => cell(run, task, picks)),
  );
}

function cell(run, task, picks) {
  const job = run.jobs[task];
  if (!job) return h("div", { class: "cell none", title: `${task}: no job`, role: "gridcell" });
  const missing = job.worker_missing ? `Worker missing [${job.worker_missing.join(", ")}]` : "";
  const title = [
    `${task}: job ${job.serial}, ${job.state}${job.attempt > 1 ? `, attempt ${job.attempt}` : ""}`,
    job.claimed ? CLAIMED : "",
    job.stale ? `Stale: ${job.stale}` : "",
    missing ? `${missing}: no registered worker provides what this task type needs` : "",
    job.error,
    ...resultLines(job),
  ].filter(Boolean).join("\n");
  const dataset = { serial: String(job.serial), task, state: job.state };
  if (job.stale) dataset.stale = job.stale;
  if (missing) dataset.workerMissing = job.worker_missing.join(",");
  if (job.claimed) dataset.claimed = "true";
  const picked = !run.obsolete && picks(job, task);
  return h(
    "div",
    { class: `cell job s-${job.state.toLowerCase()}${job.stale ? " stale" : ""}${missing ? " worker-missing" : ""}${job.claimed ? " claimed" : ""}${picked ? " picked" : ""}`, title, dataset, role: "gridcell", "aria-selected": String(picked) },
    h("span", { class: "icon", "aria-hidden": "true" }, ICONS[job.state] || "?"),
    (job.state === "Done" && resultNodes(job)) || h("span", { class: "label" }, missing || (job.claimed ? "Claimed" : job.state)),
    job.stale ? h("span", { class: "stale-mark", "aria-label": "stale" }, "\u26A0") : null,
  );
}
