// Administration views: the workers (and the dependency packages they provide; admins) and
// the activity log (admins see every entry, a user its own and those on workflows it may
// see).

import { api } from "./api.js";
import { append, clear, h, openDialog, when } from "./dom.js";

const REFRESH_MS = 5000;
// A worker that has not been heard from for this long is shown as not connected.
const CONNECTED_SECONDS = 60;

function refreshing(load) {
  let timer = 0;
  let alive = true;
  async function tick() {
    await load(() => alive);
    if (alive) timer = setTimeout(tick, REFRESH_MS);
  }
  tick();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}

function table(className, headings, body) {
  return h(
    "table",
    { class: `list ${className}` },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))),
    body,
  );
}

export function workersView(main, _params, { notify }) {
  const body = h("tbody");
  const packages = h("tbody");
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Workers")),
    table("workers", ["Name", "Status", "Dependencies", "Max concurrent jobs", "Running jobs", "Version", "Last seen"], body),
    h("div", { class: "toolbar subsection" }, h("h2", {}, "Dependency packages")),
    table("dependency-packages", ["Name", "Version", "Install", "Needs", "Provided by"], packages),
  );
  async function load(alive) {
    try {
      const [workers, dependencies] = await Promise.all([api("GET", "/api/workers"), api("GET", "/api/dependency-packages")]);
      if (!alive()) return;
      drawPackages(packages, dependencies, workers);
      clear(body);
      if (!workers.length) body.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No worker has registered yet.")));
      for (const w of workers) {
        const age = w.last_seen ? (Date.now() - new Date(w.last_seen)) / 1000 : Infinity;
        const connected = age < CONNECTED_SECONDS;
        body.append(
          h(
            "tr",
            { "data-worker": w.name },
            h("td", {}, w.name),
            h("td", {}, h("span", { class: connected ? "conn yes" : "conn no" }, connected ? "connected" : "not connected")),
            h("td", { class: "dependencies" }, dependenciesCell(w, dependencies, notify, () => load(alive))),
            h("td", { class: "num max-jobs" }, limitCell(w, notify, () => load(alive))),
            h("td", { class: "running" }, w.running.length ? w.running.map((serial) => [h("a", { href: `#/jobs/${serial}` }, String(serial)), " "]) : h("span", { class: "muted" }, "none")),
            h("td", {}, w.version),
            h("td", {}, when(w.last_seen)),
          ),
        );
      }
    } catch (exc) {
      notify(exc.message, "error");
    }
  }
  return refreshing(load);
}

// The imported dependency packages, each with the workers that say they have it (--provides).
function drawPackages(body, dependencies, workers) {
  clear(body);
  if (!dependencies.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No dependency package is imported.")));
  const none = (text) => h("span", { class: "muted" }, text);
  for (const d of dependencies) {
    const providers = workers.filter((w) => w.provides.includes(d.name)).map((w) => w.name);
    body.append(
      h(
        "tr",
        { "data-package": d.name, "data-version": d.version },
        h("td", { title: d.summary || "" }, d.display_name ? `${d.name} (${d.display_name})` : d.name),
        h("td", {}, d.version),
        h("td", {}, d.install === null ? none("virtual marker") : h("code", {}, d.install)),
        h("td", {}, d.dependencies.length ? d.dependencies.map((x) => `${x.name} ${x.version}`).join(", ") : none("none")),
        h("td", { class: "providers" }, providers.length ? providers.join(", ") : none("no worker")),
      ),
    );
  }
}

// What a worker provides, whether it installs dependency packages (an admin allows or forbids
// it), and its environments (Installing, Ready, Failed) with their install logs on demand.
function dependenciesCell(worker, dependencies, notify, reload) {
  const provides = worker.provides.length ? worker.provides.join(", ") : h("span", { class: "muted" }, "provides none");
  const may = worker.installs && worker.installs_allowed;
  const installs = worker.installs ? (may ? "installs on demand" : "installs forbidden") : "installs only by admin";
  async function toggle() {
    try {
      await api("PUT", `/api/workers/${encodeURIComponent(worker.name)}/installs`, { json: { allowed: !worker.installs_allowed } });
      notify(`${worker.name} ${worker.installs_allowed ? "may not" : "may"} install dependency packages`);
      reload();
    } catch (exc) {
      notify(exc.message, "error");
    }
  }
  const environments = h("ul", { class: "environments" });
  for (const env of worker.environments) {
    const log = h("pre", { class: "install-log", hidden: true });
    async function showLog() {
      try {
        const found = await api("GET", `/api/workers/${encodeURIComponent(worker.name)}/environments`);
        const mine = found.find((e) => e.key === env.key);
        log.textContent = mine ? `${mine.packages.map((p) => `${p.name} ${p.version}`).join(", ")}\n\n${mine.log}` : "";
        log.hidden = !log.hidden;
      } catch (exc) {
        notify(exc.message, "error");
      }
    }
    environments.append(h("li", { "data-environment": env.key, "data-state": env.state }, h("span", { class: `state-${env.state.toLowerCase()}` }, env.state), " ", h("code", {}, env.key), " ", h("button", { class: "small link", type: "button", onclick: showLog }, "log"), log));
  }
  return [
    h("div", {}, provides),
    h(
      "div",
      { class: "muted installs" },
      installs,
      " ",
      h("button", { class: "small", type: "button", onclick: toggle }, worker.installs_allowed ? "Forbid installs" : "Allow installs"),
      " ",
      h("button", { class: "small install-package", type: "button", onclick: () => askInstall(worker, dependencies, notify, reload) }, "Install dependency package"),
    ),
    worker.environments.length ? environments : null,
  ];
}

// Workers > Install dependency package: a dialog of the imported packages that can be
// installed; the worker makes the environment at its next heartbeat (Requested until then).
function askInstall(worker, dependencies, notify, reload) {
  const installable = dependencies.filter((d) => d.install !== null);
  if (!installable.length) {
    notify("No dependency package that can be installed is imported (runyard import PACKAGE).", "error");
    return;
  }
  const choice = h("select", { name: "package" }, installable.map((d, i) => h("option", { value: String(i) }, `${d.name} ${d.version}`)));
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "install-form stacked" },
    h("h2", {}, `Install a dependency package on ${worker.name}`),
    h("label", {}, "Package", choice),
    h("p", { class: "muted" }, "The worker makes its environment (with the packages it needs) at its next heartbeat, also if it does not install on demand."),
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), h("button", { type: "submit", class: "primary" }, "Install")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = installable[Number(choice.value)];
    try {
      const answer = await api("POST", `/api/workers/${encodeURIComponent(worker.name)}/environments`, { json: { packages: [{ name: d.name, version: d.version }] } });
      dialog.close();
      notify(`${d.name} ${d.version} on ${worker.name}: ${answer.state}`);
      reload();
    } catch (exc) {
      error.textContent = exc.message;
    }
  });
  const dialog = openDialog("install-dialog", form);
  choice.focus();
}

// The slots a worker registered with, an admin's limit below them, and a button to set it.
function limitCell(worker, notify, reload) {
  const shown = worker.max_jobs_limit === null ? String(worker.max_jobs) : `${worker.max_jobs_limit} of ${worker.max_jobs} (limited)`;
  return [h("span", { class: "limit" }, shown), " ", h("button", { class: "small", type: "button", onclick: () => askLimit(worker, notify, reload) }, "Set limit")];
}

// Set limit: a dialog asking how many jobs at once (0: none), or no limit (the slots the
// worker registered with); a value that is not a whole number is refused in the form.
function askLimit(worker, notify, reload) {
  const count = h("input", { name: "max_jobs", type: "number", min: "0", step: "1", value: worker.max_jobs_limit ?? worker.max_jobs });
  const none = h("input", { name: "unlimited", type: "checkbox", checked: worker.max_jobs_limit === null });
  const sync = () => (count.disabled = none.checked);
  none.addEventListener("change", sync);
  sync();
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "limit-form stacked", novalidate: true },
    h("h2", {}, `Jobs at once on ${worker.name}`),
    h("label", {}, "At most (0: none)", count),
    h("label", { class: "inline" }, none, ` No limit (the ${worker.max_jobs} slot${worker.max_jobs === 1 ? "" : "s"} it registered with)`),
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), h("button", { type: "submit", class: "primary" }, "Set limit")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = none.checked ? null : Number(count.value);
    if (value !== null && !(count.value.trim() !== "" && Number.isInteger(value) && value >= 0)) {
      error.textContent = `"${count.value}" is not a whole number of 0 or more`;
      return;
    }
    try {
      await api("PUT", `/api/workers/${encodeURIComponent(worker.name)}/max-jobs`, { json: { max_jobs: value } });
      dialog.close();
      notify(value === null ? `${worker.name}: no limit` : `${worker.name}: at most ${value} job${value === 1 ? "" : "s"} at once`);
      reload();
    } catch (exc) {
      error.textContent = exc.message;
    }
  });
  const dialog = openDialog("limit-dialog", form);
  (none.checked ? none : count).focus();
}

// The kinds of entries, to filter by (a filter is a prefix: "run." finds every run action).
const ACTIONS = [
  "workflow.", "workflow.create", "workflow.import", "workflow.state", "workflow.lock", "workflow.share",
  "task.", "run.", "run.new", "run.obsolete", "run.restore", "job.", "job.state", "job.restart", "job.submit", "job.message",
  "session.", "session.login", "session.refused", "user.", "group.", "token.", "task_type.install",
  "dependency_package.import", "userdata.", "worker.",
];
const PAGE = 100; // entries per page
const FILTERS = ["actor", "action", "workflow"];

// The address of the activity view with these filters (and page: ``before`` an entry id).
export function activityAddress(params) {
  const query = new URLSearchParams();
  for (const key of [...FILTERS, "before"]) if (params[key]) query.set(key, params[key]);
  const text = query.toString();
  return text ? `#/activity?${text}` : "#/activity";
}

// The activity log as a table, newest first, filtered by user, action and workflow (the
// address keeps the filters: #/activity?actor=NAME&action=run.&workflow=NAME&before=ID);
// "Older entries" pages back. The first page follows the log live.
export function activityView(main, _params, { notify, query = new URLSearchParams() }) {
  const shown = Object.fromEntries([...FILTERS, "before"].map((k) => [k, (query.get(k) || "").trim()]));
  const body = h("tbody");
  const users = h("datalist", { id: "activity-users" });
  const workflows = h("datalist", { id: "activity-workflows" });
  const actions = h("datalist", { id: "activity-actions" }, ACTIONS.map((a) => h("option", { value: a })));
  const field = (key, label, list, placeholder) =>
    h("label", { class: "filter" }, label, h("input", { type: "search", name: key, value: shown[key], list, placeholder, "aria-label": `Filter by ${label.toLowerCase()}`, autocomplete: "off", spellcheck: "false" }));
  const form = h(
    "form",
    { class: "toolbar filters activity-filters" },
    field("actor", "User", "activity-users", "who"),
    field("action", "Action", "activity-actions", "e.g. run. or job.state"),
    field("workflow", "Workflow", "activity-workflows", "name"),
    h("button", { type: "submit", class: "primary" }, "Filter"),
    FILTERS.some((k) => shown[k]) ? h("a", { href: "#/activity", class: "button clear-filters" }, "Clear filters") : null,
    users,
    actions,
    workflows,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = Object.fromEntries(FILTERS.map((k) => [k, form.elements[k].value.trim()]));
    const address = activityAddress(next);
    if (location.hash === address) reload();
    else location.hash = address;
  });
  const paging = h("div", { class: "toolbar paging" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Activity"), shown.before ? h("span", { class: "muted page-note" }, `entries before #${shown.before}`) : null),
    form,
    table("activity", ["When", "Who", "Action", "Workflow", "Message", "Address"], body),
    paging,
  );

  // Links that narrow the filters to one user or one workflow.
  const narrow = (key, value) => h("a", { href: activityAddress({ ...shown, before: "", [key]: value }), class: `by-${key}`, title: `Only the entries of ${value}` }, value);

  function draw(entries) {
    clear(body);
    if (!entries.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, FILTERS.some((k) => shown[k]) ? "No entry matches these filters." : "The activity log is empty.")));
    for (const e of entries) {
      body.append(
        h(
          "tr",
          { class: `entry level-${e.level}`, dataset: { id: String(e.id), actor: e.actor, action: e.action } },
          h("td", { class: "nowrap", title: e.at }, when(e.at)),
          h("td", { class: "actor nowrap" }, e.actor ? narrow("actor", e.actor) : ""),
          h("td", { class: "action" }, h("code", {}, e.action), e.level !== "info" ? h("span", { class: `tag level ${e.level}` }, e.level) : null),
          h("td", { class: "workflow" }, e.workflow ? narrow("workflow", e.workflow) : "", e.job_serial ? [e.workflow ? " \u00B7 " : "", h("a", { href: `#/jobs/${e.job_serial}`, class: "job-link" }, `job ${e.job_serial}`)] : null),
          h("td", { class: "message" }, e.message),
          h("td", { class: "address nowrap" }, e.address || ""),
        ),
      );
    }
    const last = entries[entries.length - 1];
    append(
      clear(paging),
      shown.before ? h("a", { href: activityAddress({ ...shown, before: "" }), class: "button newest" }, "\u2190 Newest") : null,
      entries.length >= PAGE && last ? h("a", { href: activityAddress({ ...shown, before: String(last.id) }), class: "button older" }, "Older entries \u2192") : null,
    );
  }

  async function reload(alive = () => true) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    for (const key of [...FILTERS, "before"]) if (shown[key]) params.set(key, shown[key]);
    try {
      const entries = await api("GET", `/api/activity?${params}`);
      if (alive()) draw(entries);
    } catch (exc) {
      if (alive()) notify(exc.message, "error");
    }
  }

  // Suggestions for the filters: the users and the workflows the user may see.
  Promise.all([api("GET", "/api/users").catch(() => []), api("GET", "/api/workflows").catch(() => [])]).then(([u, w]) => {
    append(users, u.map((x) => h("option", { value: x.name })));
    append(workflows, w.map((x) => h("option", { value: x.name })));
  });

  // Older pages do not change; the newest one follows the log.
  if (shown.before) {
    reload();
    return () => {};
  }
  return refreshing(reload);
}
