// The web UI: log in, then one view per address (#/workflows, #/workflows/NAME,
// #/workflows/NAME/edit, #/workflows/NAME/timeline, #/workflows/NAME/study?task=T, #/jobs/SERIAL, #/task-types, #/task-types/NAME[/VERSION],
// #/userdata, #/workers, #/users, #/tokens, #/activity?actor=&action=&workflow=&before=).
// Parameters after "?" in the address reach the view as ``query`` (URLSearchParams).

import { api, setCsrf } from "./api.js";
import { append, clear, h } from "./dom.js";
import { activityView, workersView } from "./admin.js";
import { openPasswordDialog, tokensView, usersView } from "./accounts.js";
import { editorView } from "./editor.js";
import { userDataView } from "./userdata.js";
import { jobPage } from "./job.js";
import { startNotices } from "./notices.js";
import { runsView } from "./runs.js";
import { studyTableView } from "./studytable.js";
import { isAdmin, me, setSession } from "./session.js";
import { taskTypeView, taskTypesView } from "./tasktypes.js";
import { timelineView } from "./timeline.js";
import { workflowsView } from "./workflows.js";

const main = document.getElementById("main");
const header = document.querySelector("header.top");
const loginSection = document.querySelector("section.login");
const loginForm = document.querySelector("form.login-form");
const loginError = document.querySelector(".login-error");
const noticeBox = document.querySelector(".notice");
const userMenu = header.querySelector(".user-menu");
const userMenuButton = header.querySelector(".user-menu-button");
const userMenuItems = header.querySelector(".user-menu-items");
const LOGIN_MODE = "runyard.login-mode"; // how this browser logged in last: password | token

// [address pattern, navigation entry, view, for admins only]
const ROUTES = [
  [/^#\/workflows\/?$/, "workflows", () => workflowsView],
  [/^#\/workflows\/([^/]+)$/, "workflows", () => runsView],
  [/^#\/workflows\/([^/]+)\/edit$/, "workflows", () => editorView],
  [/^#\/workflows\/([^/]+)\/study$/, "workflows", () => studyTableView],
  [/^#\/workflows\/([^/]+)\/timeline$/, "workflows", () => timelineView],
  [/^#\/task-types\/?$/, "task-types", () => taskTypesView],
  [/^#\/task-types\/([^/]+)$/, "task-types", () => taskTypeView],
  [/^#\/task-types\/([^/]+)\/([^/]+)$/, "task-types", () => taskTypeView],
  [/^#\/userdata$/, "userdata", () => userDataView],
  [/^#\/jobs\/(\d+)$/, "workflows", () => jobPage],
  [/^#\/workers$/, "workers", () => workersView, true],
  [/^#\/users$/, "users", () => usersView, true],
  [/^#\/tokens$/, "", () => tokensView],
  [/^#\/activity$/, "activity", () => activityView],
];

startNotices(header); // notices of finished workflows and failed jobs (notices.js)

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

let shownHash = ""; // the address of the view shown, without its query

function route(sameView = false) {
  const address = location.hash || "#/workflows";
  const at = address.indexOf("?");
  const [hash, search] = at < 0 ? [address, ""] : [address.slice(0, at), address.slice(at + 1)];
  // Back or Forward to another query of the view shown: a view that can show it does so.
  if (sameView && hash === shownHash && dispose && dispose.showAddress) {
    dispose.showAddress(new URLSearchParams(search));
    return;
  }
  shownHash = hash;
  if (dispose) dispose();
  dispose = null;
  closeUserMenu();
  clear(main);
  for (const [pattern, nav, view, adminOnly] of ROUTES) {
    const match = hash.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      link.classList.toggle("active", link.dataset.nav === nav);
    }
    if (adminOnly && !isAdmin()) {
      main.append(h("p", { class: "empty admins-only" }, "Only admins (members of the group admins) may open this page."));
      return;
    }
    const query = new URLSearchParams(search);
    dispose = view()(main, match.slice(1).map(decodeURIComponent), { notify, query }) || null;
    return;
  }
  location.hash = "#/workflows";
}

function loginMode() {
  try {
    return localStorage.getItem(LOGIN_MODE) === "token" ? "token" : "password";
  } catch {
    return "password";
  }
}

// The log in form asks for a user name and password, or (the admin's way) a token.
function setLoginMode(mode) {
  loginForm.dataset.mode = mode;
  for (const el of loginForm.querySelectorAll(".by-password")) el.hidden = mode !== "password";
  for (const el of loginForm.querySelectorAll(".by-token")) el.hidden = mode !== "token";
  const fields = loginForm.elements;
  fields.name.required = fields.password.required = mode === "password";
  fields.token.required = mode === "token";
  try {
    localStorage.setItem(LOGIN_MODE, mode);
  } catch {
    // private windows may refuse storage: the default mode is fine
  }
}

function showLogin() {
  if (dispose) dispose();
  dispose = null;
  clear(main);
  setSession(null);
  header.hidden = true;
  loginSection.hidden = false;
  setLoginMode(loginMode());
  (loginMode() === "token" ? loginForm.elements.token : loginForm.elements.name).focus();
}

function showApp(who) {
  setCsrf(who.csrf);
  setSession(who);
  loginSection.hidden = true;
  header.hidden = false;
  header.querySelector(".who").textContent = who.name;
  header.querySelector(".admin-tag").hidden = !who.admin;
  userMenuButton.title = `Logged in as ${who.name}${who.groups.length ? ` (groups: ${who.groups.join(", ")})` : ""}`;
  // What only admins may use is not offered to others (the server refuses it anyway).
  for (const el of document.querySelectorAll("[data-admin]")) el.hidden = !who.admin;
  route();
}

for (const button of loginForm.querySelectorAll(".switch-mode")) {
  button.addEventListener("click", () => {
    loginError.textContent = "";
    setLoginMode(loginForm.dataset.mode === "token" ? "password" : "token");
    (loginForm.dataset.mode === "token" ? loginForm.elements.token : loginForm.elements.name).focus();
  });
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  loginError.textContent = "";
  const fields = loginForm.elements;
  const json = loginForm.dataset.mode === "token"
    ? { token: fields.token.value.trim() }
    : { name: fields.name.value.trim(), password: fields.password.value };
  try {
    const who = await api("POST", "/ui/login", { json });
    loginForm.reset();
    showApp(who);
  } catch (exc) {
    loginError.textContent = exc.message;
  }
});

// -- the user's menu: My tokens, Change password, Log out -------------------------------------
function closeUserMenu() {
  userMenuItems.hidden = true;
  userMenuButton.setAttribute("aria-expanded", "false");
}

userMenuButton.addEventListener("click", () => {
  const open = userMenuItems.hidden;
  userMenuItems.hidden = !open;
  userMenuButton.setAttribute("aria-expanded", String(open));
});
document.addEventListener("mousedown", (event) => {
  if (!userMenu.contains(event.target)) closeUserMenu();
});
document.addEventListener("keydown", (event) => event.key === "Escape" && closeUserMenu());
userMenuItems.querySelector(".my-tokens").addEventListener("click", closeUserMenu);
userMenuItems.querySelector(".change-password").addEventListener("click", () => {
  closeUserMenu();
  openPasswordDialog(me().name, { notify, own: true });
});

header.querySelector(".logout").addEventListener("click", async () => {
  closeUserMenu();
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
  if (loginSection.hidden) route(true);
});

try {
  showApp(await api("GET", "/ui/session"));
} catch {
  showLogin();
}
started = true;
