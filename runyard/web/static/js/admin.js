// Administration views: the workers and the activity log.

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
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "Workers")), table("workers", ["Name", "Status", "Dependencies", "Max concurrent jobs", "Version", "Last seen"], body));
  return refreshing(async (alive) => {
    try {
      const workers = await api("GET", "/api/workers");
      if (!alive()) return;
      clear(body);
      if (!workers.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No worker has registered yet.")));
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
            h("td", { class: "num" }, String(w.max_jobs)),
            h("td", {}, w.version),
            h("td", {}, when(w.last_seen)),
          ),
        );
      }
    } catch (exc) {
      notify(exc.message, "error");
    }
  });
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
