// The workflows list (those the user may see): state, runs and live jobs by state, owner
// and the user's level; start, stop, obsolete, lock, unlock; share; import a package;
// export a workflow.

import { api } from "./api.js";
import { confirmAction } from "./confirm.js";
import { clear, countChips, enc, h } from "./dom.js";
import { newWorkflowDialog } from "./editor.js";
import { markdown } from "./markdown.js";
import { gate, isAdmin, me, rememberLevel } from "./session.js";
import { openShareDialog } from "./sharing.js";

const REFRESH_MS = 3000;

// The actions offered on a workflow; locking is for admins only.
export function workflowActions(workflow) {
  const admin = isAdmin();
  if (workflow.locked) return admin ? ["unlock"] : [];
  const actions = {
    Draft: ["start", "obsolete"],
    Started: ["stop", "obsolete"],
    Obsolete: ["start"],
  }[workflow.state] || [];
  return admin ? [...actions, "lock"] : actions;
}

const ACTION_LABELS = {
  start: "Start",
  stop: "Stop",
  obsolete: "Obsolete",
  lock: "Lock",
  unlock: "Unlock",
};

// What each action does to the work in flight (docs/states.md).
const ACTION_HINTS = {
  start: "Jobs are claimed by workers again",
  stop: "Back to Draft to edit its tasks: no new job starts; running jobs finish",
  obsolete: "Soft-delete: its running jobs are stopped and given back; Start restores it",
  lock: "A locked workflow cannot change state until an admin unlocks it",
  unlock: "Allow changes again",
};

// What an action asks before it acts (it stops work in flight).
const ACTION_CONFIRMS = {
  stop: (name) => ({
    question: `Stop workflow ${name}?`,
    consequence: `Back to Draft: no new job of ${name} starts (its queued jobs wait); running jobs finish. Start goes on where it stopped.`,
    action: "Stop workflow",
    danger: false,
  }),
  obsolete: (name) => ({
    question: `Obsolete workflow ${name}?`,
    consequence: `Its Running jobs are stopped (their work is lost) and given back; no job of ${name} starts. Start brings it back.`,
    action: "Obsolete workflow",
  }),
};

// A workflow action's button; disabled when ``level`` (the user's) is below edit.
export function actionButton(name, action, { notify, after, level }) {
  return gate(h(
    "button",
    {
      type: "button",
      class: `action-${action}`,
      title: ACTION_HINTS[action],
      "data-action": action,
      onclick: async (event) => {
        const button = event.currentTarget;
        if (ACTION_CONFIRMS[action] && !(await confirmAction(ACTION_CONFIRMS[action](name)))) return;
        button.disabled = true;
        try {
          const workflow = await api("POST", `/api/workflows/${enc(name)}/${action}`);
          notify(`Workflow ${workflow.name}: ${workflow.state}${workflow.locked ? ", locked" : ""}`);
        } catch (exc) {
          notify(exc.message, "error");
        }
        after();
      },
    },
    ACTION_LABELS[action],
  ), "edit", level);
}

// What the workflows list says of a level ("own": the owner, or an admin).
const LEVEL_TEXT = { own: "owner", edit: "may edit", operate: "may operate", view: "may view" };
const owners = new Map(); // workflow name -> owner's name (null: none), when the list lacks it

// Who owns workflow ``w``: from the list when it says, else from its shares (once).
function ownerCell(w) {
  const cell = h("span", { class: "owner" });
  const show = (owner) => {
    cell.textContent = owner ? `owner ${owner}` : "no owner";
    if (owner && me() && owner === me().name) cell.textContent = "owner: you";
  };
  if (w.owner !== undefined) show(w.owner);
  else if (owners.has(w.name)) show(owners.get(w.name));
  else {
    api("GET", `/api/workflows/${enc(w.name)}/shares`)
      .then((answer) => {
        owners.set(w.name, answer.owner);
        show(answer.owner);
      })
      .catch(() => {});
  }
  return cell;
}


// What POST /api/packages imported, in words: a task type, a workflow or a dependency
// package (a "virtual marker" has no install command).
export function importMessage(answer) {
  if (answer.kind === "workflow") return `Imported workflow ${answer.workflow.name}`;
  if (answer.kind === "dependency") {
    const pkg = answer.dependency_package;
    const what = `dependency package ${pkg.name} ${pkg.version}`;
    const how = pkg.install === null ? "a virtual marker: nothing to install" : `install: ${pkg.install}`;
    return answer.installed ? `Imported ${what} (${how})` : `The ${what} was imported already`;
  }
  const tt = answer.task_type;
  return answer.installed
    ? `Imported task type ${tt.name} ${tt.version}`
    : `Task type ${tt.name} ${tt.version} was installed already`;
}

export function workflowsView(main, _params, { notify }) {
  const body = h("tbody");
  const fileInput = h("input", { type: "file", accept: ".xfp,.zip", class: "import-file" });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    try {
      const answer = await api("POST", `/api/packages?filename=${enc(file.name)}`, { body: file });
      notify(importMessage(answer));
      load();
    } catch (exc) {
      notify(exc.message, "error");
    }
    fileInput.value = "";
  });
  main.append(
    h(
      "div",
      { class: "toolbar" },
      h("h1", {}, "Workflows"),
      h("span", { class: "grow" }),
      h("button", { type: "button", class: "new-workflow primary", onclick: () => newWorkflowDialog({ notify }) }, "New workflow\u2026"),
      h("label", { class: "button" }, "Import package\u2026", fileInput),
    ),
    h(
      "table",
      { class: "list workflows" },
      h(
        "thead",
        {},
        h("tr", {}, ["Name", "State", "Runs", "Jobs", "Access", "Actions", ""].map((t) => h("th", {}, t))),
      ),
      body,
    ),
  );

  let timer = 0;
  let alive = true;
  const unfolded = new Set(); // workflows whose long remarks are shown whole
  async function load() {
    clearTimeout(timer);
    try {
      const workflows = await api("GET", "/api/workflows");
      if (!alive) return;
      clear(body);
      if (!workflows.length) {
        body.append(
          h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No workflow yet: create one or import a workflow package, or ask a colleague to share one with you.")),
        );
      }
      for (const w of workflows) {
        if (w.your_level) rememberLevel(w.name, w.your_level);
        body.append(row(w));
      }
      foldLongRemarks();
    } catch (exc) {
      notify(exc.message, "error");
    }
    if (alive) timer = setTimeout(load, REFRESH_MS);
  }

  function row(w) {
    const level = w.your_level;
    return h(
      "tr",
      { "data-workflow": w.name, "data-level": level || "" },
      h(
        "td",
        {},
        h("a", { href: `#/workflows/${enc(w.name)}`, class: "workflow-name" }, w.name),
        w.remarks ? h("div", { class: `remarks${unfolded.has(w.name) ? " open" : ""}` }, markdown(w.remarks)) : null,
        w.remarks ? h("button", { type: "button", class: "link remarks-more", hidden: true, onclick: () => toggleRemarks(w.name) }, unfolded.has(w.name) ? "less" : "more\u2026") : null,
      ),
      h(
        "td",
        {},
        h("span", { class: `wf-state wf-${w.state.toLowerCase()}` }, w.state),
        w.locked ? h("span", { class: "locked", title: "Locked: its state cannot change until it is unlocked" }, " locked") : null,
      ),
      h("td", { class: "num" }, String(w.runs)),
      h("td", {}, countChips(w.jobs)),
      h(
        "td",
        { class: "access" },
        level ? h("span", { class: `level level-${level}`, title: "Your level on this workflow" }, isAdmin() && level === "own" ? "admin" : LEVEL_TEXT[level] || level) : null,
        " ",
        ownerCell(w),
      ),
      h(
        "td",
        { class: "actions" },
        h(
          "div",
          {},
          workflowActions(w).map((a) => actionButton(w.name, a, { notify, after: load, level })),
          level === "own" ? h("button", { type: "button", class: "share-button", title: "Share it with users or groups", onclick: () => openShareDialog(w.name, { notify, onChange: load }) }, "Share…") : null,
        ),
      ),
      h("td", { class: "links" }, h("a", { href: `#/workflows/${enc(w.name)}/edit`, class: "edit-link" }, "Edit"), " ", h("a", { href: `/api/workflows/${enc(w.name)}/export`, download: `${w.name}.xfp` }, "Export")),
    );
  }

  // Remarks longer than a few lines are cut: say so, with a way to read them whole.
  function foldLongRemarks() {
    for (const box of body.querySelectorAll(".remarks")) {
      const long = box.classList.contains("open") || box.scrollHeight > box.clientHeight + 2;
      box.classList.toggle("folded", long && !box.classList.contains("open"));
      box.nextElementSibling.hidden = !long;
    }
  }

  function toggleRemarks(name) {
    if (unfolded.has(name)) unfolded.delete(name);
    else unfolded.add(name);
    const tr = [...body.querySelectorAll("tr[data-workflow]")].find((el) => el.dataset.workflow === name);
    if (!tr) return;
    tr.querySelector(".remarks").classList.toggle("open", unfolded.has(name));
    tr.querySelector(".remarks-more").textContent = unfolded.has(name) ? "less" : "more\u2026";
    foldLongRemarks();
  }

  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
