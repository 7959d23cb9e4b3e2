// Who is logged in, and what they may do to a workflow. The server decides (a refused call
// answers 403 or 404); the page only disables or hides what it would refuse, saying which
// level it needs.
//
// Levels on a workflow, lowest first: view (see it), operate (runs, jobs and forms), edit
// (tasks, start and stop), own (the owner and admins: also sharing it).

import { api } from "./api.js";
import { enc } from "./dom.js";

export const LEVELS = ["view", "operate", "edit", "own"];
const LEVEL_MS = 5000; // how long a workflow's level is kept before asking again

let who = null; // {kind, name, admin, groups}
const levels = new Map(); // workflow name -> {level, at}

export function setSession(session) {
  who = session;
  levels.clear();
}

export const me = () => who;
export const isAdmin = () => Boolean(who && who.admin);

export function allows(level, need) {
  return LEVELS.indexOf(level) >= LEVELS.indexOf(need) && LEVELS.includes(level);
}

// The tooltip of a control the caller's level does not allow.
export function needsText(need, level) {
  const what = need === "own" ? "its owner or an admin" : `${need} access to this workflow`;
  return `Needs ${what}; you have ${level || "no"} access (ask its owner or an admin to share it with you)`;
}

// Disables ``el`` (a button, input, select) unless ``level`` allows ``need``; answers ``el``.
export function gate(el, need, level) {
  if (!el || level === undefined || allows(level, need)) return el;
  el.disabled = true;
  el.classList.add("not-allowed");
  el.dataset.needs = need;
  el.title = needsText(need, level);
  return el;
}

// Disables every control inside ``box`` unless ``level`` allows ``need``.
export function gateAll(box, need, level) {
  if (level === undefined || allows(level, need)) return box;
  for (const el of box.querySelectorAll("button, input, select, textarea")) {
    if (!el.closest("[data-always]")) gate(el, need, level);
  }
  return box;
}

// What the workflows list said about a workflow's level (saves asking again).
export function rememberLevel(name, level) {
  levels.set(name, { level, at: Date.now() });
}

// The caller's level on workflow ``name`` (GET /api/workflows/{name}/shares), kept briefly.
export async function levelOf(name) {
  const known = levels.get(name);
  if (known && Date.now() - known.at < LEVEL_MS) return known.level;
  const answer = await api("GET", `/api/workflows/${enc(name)}/shares`);
  rememberLevel(name, answer.your_level);
  return answer.your_level;
}
