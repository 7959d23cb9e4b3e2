// The reduce tasks of a workflow, beside the runs table's filters: they are not columns (one
// job per workflow, not per run). Each is a button that opens its live job; a reduce held back
// (active runs still have upstream work pending, so no job of it is queued) says so and why
// ("held back: waiting for 3 runs (Waiting: 2, Queued: 1)"), from the runs page's
// ``reduce_held``.

import { ICONS, h } from "./dom.js";

// The buttons of ``reduce`` ({task: its live job}) and ``held`` ({task: why it is held back});
// ``open(serial, task)`` opens a job.
export function reduceButtons(reduce, held, open) {
  const tasks = [...new Set([...Object.keys(reduce), ...Object.keys(held)])];
  return tasks.map((task) => {
    const job = reduce[task];
    const why = held[task];
    const title = [
      job ? `reduce task ${task}: job ${job.serial}, ${job.state}` : `reduce task ${task}: no live job`,
      why ? `held back: ${why}` : "",
    ].filter(Boolean).join("\n");
    const dataset = { task };
    if (job) Object.assign(dataset, { serial: String(job.serial), state: job.state });
    if (why) dataset.held = why;
    return h(
      "button",
      { type: "button", class: `reduce-job${job ? ` s-${job.state.toLowerCase()}` : ""}${why ? " held" : ""}`, title, dataset, disabled: !job, onclick: () => job && open(job.serial, task) },
      `${task} `,
      job ? h("span", { class: "state" }, `${ICONS[job.state] || "?"} ${job.state}`) : null,
      why ? h("span", { class: "held-note" }, `held back: ${why}`) : null,
    );
  });
}
