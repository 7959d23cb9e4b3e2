// The web UI: log in, then one view per address (#/workflows, #/workflows/NAME,
// #/workflows/NAME/edit, #/jobs/SERIAL, #/task-types, #/task-types/NAME[/VERSION],
// #/userdata, #/workers, #/activity).

import { api, setCsrf } from "./api.js";
import { append, clear, h } from "./dom.js";
import { activityView, workersView } from "./admin.js";
import { editorView } from "./editor.js";
import { userDataView } from "./userdata.js";
import { jobPage } from "./job.js";
import { runsView } from "./runs.js";
import { taskTypeView, taskTypesView } from "./tasktypes.js";
import { workflowsView } from "./workflows.js";

const main = document.getElementById("main");
const header = document.querySelector("header.top");
const loginSection = document.querySelector("section.login");
const loginForm = document.querySelector("form.login-form");
const loginError = document.querySelector(".login-error");
const noticeBox = document.querySelector(".notice");

const ROUTES = [
  [/^#\/workflows\/?$/, "workflows", () => workflowsView],
  [/^#\/workflows\/([^/]+)$/, "workflows", () => runsView],
  [/^#\/workflows\/([^/]+)\/edit$/, "workflows", () => editorView],
  [/^#\/task-types\/?$/, "task-types", () => taskTypesView],
  [/^#\/task-types\/([^/]+)$/, "task-types", () => taskTypeView],
  [/^#\/task-types\/([^/]+)\/([^/]+)$/, "task-types", () => taskTypeView],
  [/^#\/userdata$/, "userdata", () => userDataView],
  [/^#\/jobs\/(\d+)$/, "workflows", () => jobPage],
  [/^#\/workers$/, "workers", () => workersView],
  [/^#\/activity$/, "activity", () => activityView],
];

let dispose = null;
let started = false;
let noticeTimer = 0;

// A message for the user at the top of the page: errors stay until closed.
export function notify(message, kind = "info", action = null) {
  clearTimeout(noticeTimer);
  append(clear(noticeBox), 
    h("span", { class: "notice-text" }, message),
    action ? h("button", { type: "button", class: "notice-action", onclick: () => { noticeBox.hidden = true; action.run(); } }, action.label) : null,
    h("button", { type: "button", class: "link", onclick: () => (noticeBox.hidden = true) }, "\u00D7"),
  );
  noticeBox.className = `notice ${kind}`;
  noticeBox.hidden = false;
  if (kind !== "error") noticeTimer = setTimeout(() => (noticeBox.hidden = true), action ? 10000 : 4000);
}

function route() {
  if (dispose) dispose();
  dispose = null;
  clear(main);
  const hash = location.hash || "#/workflows";
  for (const [pattern, nav, view] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === nav);
    }
    dispose = view()(main, match.slice(1).map(decodeURIComponent), { notify }) || null;
    return;
  }
  location.hash = "#/workflows";
}

function showLogin() {
  if (dispose) dispose();
  dispose = null;
  clear(main);
  header.hidden = true;
  loginSection.hidden = false;
  loginForm.elements.token.focus();
}

function showApp(who) {
  setCsrf(who.csrf);
  loginSection.hidden = true;
  header.hidden = false;
  header.querySelector(".who").textContent = `${who.name} (${who.kind})`;
  route();
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  loginError.textContent = "";
  try {
    const who = await api("POST", "/ui/login", { json: { token: loginForm.elements.token.value } });
    loginForm.reset();
    showApp(who);
  } catch (exc) {
    loginError.textContent = exc.message;
  }
});

header.querySelector(".logout").addEventListener("click", async () => {
  try {
    await api("POST", "/ui/logout");
  } catch (exc) {
    notify(exc.message, "error");
  }
  setCsrf("");
  showLogin();
});

window.addEventListener("runyard:unauthorized", () => {
  if (started && loginSection.hidden) {
    showLogin();
    loginError.textContent = "The session has ended: log in again.";
  }
});
window.addEventListener("hashchange", () => {
  if (loginSection.hidden) route();
});

try {
  showApp(await api("GET", "/ui/session"));
} catch {
  showLogin();
}
started = true;
