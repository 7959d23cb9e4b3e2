// Administration views: the workers (and the dependency packages they provide) and the
// activity log.

import { api } from "./api.js";
import { clear, h, when } from "./dom.js";

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
            h("td", {}, w.provides.length ? w.provides.join(", ") : h("span", { class: "muted" }, "none")),
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

// The slots a worker registered with, an admin's limit below them, and a button to set it.
function limitCell(worker, notify, reload) {
  const shown = worker.max_jobs_limit === null ? String(worker.max_jobs) : `${worker.max_jobs_limit} of ${worker.max_jobs} (limited)`;
  async function setLimit() {
    const answer = window.prompt(`At most how many jobs at once on ${worker.name}? (0: none; empty: no limit)`, worker.max_jobs_limit ?? "");
    if (answer === null) return;
    const value = answer.trim() === "" ? null : Number(answer);
    if (value !== null && !(Number.isInteger(value) && value >= 0)) {
      notify(`"${answer}" is not a whole number of 0 or more`, "error");
      return;
    }
    try {
      await api("PUT", `/api/workers/${encodeURIComponent(worker.name)}/max-jobs`, { json: { max_jobs: value } });
      notify(value === null ? `${worker.name}: no limit` : `${worker.name}: at most ${value} job${value === 1 ? "" : "s"} at once`);
      reload();
    } catch (exc) {
      notify(exc.message, "error");
    }
  }
  return [h("span", { class: "limit" }, shown), " ", h("button", { class: "small", type: "button", onclick: setLimit }, "Set limit")];
}

export function activityView(main, _params, { notify }) {
  const body = h("tbody");
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Activity")), table("activity", ["When", "Level", "Who", "What", "Message"], body));
  return refreshing(async (alive) => {
    try {
      const entries = await api("GET", "/api/activity?limit=200");
      if (!alive()) return;
      clear(body);
      for (const e of entries) {
        body.append(
          h(
            "tr",
            { class: `level-${e.level}` },
            h("td", { class: "nowrap" }, when(e.at)),
            h("td", {}, e.level),
            h("td", {}, e.actor),
            h("td", {}, e.action),
            h("td", {}, e.message),
          ),
        );
      }
    } catch (exc) {
      notify(exc.message, "error");
    }
  });
}
