// Notices of what happens in the workflows the user looks at: a workflow finished (no Queued
// or Running job left after having some), a job failed. Shown in the page (bottom right; a
// failure until closed) and, once the user asked for them (the header's "Desktop notifications"),
// as desktop notifications too. Fed by the workflow's live changes (its event stream):
// a view that reads the stream passes each change to ``workflowChanged``.

import { api } from "./api.js";
import { enc, h } from "./dom.js";

const DESKTOP = "runyard.desktop-notifications"; // "on" once the user asked for them
const MAX_SHOWN = 5;
const FINISHED_MS = 10000; // how long a notice of a finished workflow stays
const seen = new Map(); // workflow name -> {active, failed} at its last change
let area = null;
let desktopButton = null;

export function startNotices(header) {
  area = h("div", { class: "notices", role: "status", "aria-live": "polite" });
  document.body.append(area);
  if (!("Notification" in window)) return;
  desktopButton = h("button", { type: "button", class: "desktop-notifications", onclick: toggleDesktop });
  header.querySelector(".user-menu").before(desktopButton);
  showDesktopState();
}

function desktopOn() {
  try {
    return "Notification" in window && Notification.permission === "granted" && localStorage.getItem(DESKTOP) === "on";
  } catch {
    return false;
  }
}

function showDesktopState() {
  if (!desktopButton) return;
  const on = desktopOn();
  desktopButton.textContent = on ? "Desktop notifications: on" : "Desktop notifications";
  desktopButton.setAttribute("aria-pressed", String(on));
  desktopButton.title = Notification.permission === "denied"
    ? "This browser blocks notifications from this site: allow them in its site settings"
    : on ? "Click to stop desktop notifications" : "Also show a desktop notification when a workflow finishes or a job fails";
}

async function toggleDesktop() {
  const want = !desktopOn();
  if (want && Notification.permission !== "granted") await Notification.requestPermission();
  try {
    localStorage.setItem(DESKTOP, want && Notification.permission === "granted" ? "on" : "off");
  } catch {
    // storage refused (a private window): desktop notifications stay off
  }
  showDesktopState();
}

// A notice: ``text``, a link (``href``, ``label``); ``kind``: failed or finished.
export function announce({ text, href, label, kind }) {
  if (!area) return;
  const notice = h("div", { class: `live-notice ${kind}` },
    h("span", { class: "live-notice-text" }, text),
    href ? h("a", { href, onclick: () => notice.remove() }, label) : null,
    h("button", { type: "button", class: "link", title: "Close", "aria-label": "Close", onclick: () => notice.remove() }, "\u00D7"));
  area.append(notice);
  if (kind !== "failed") setTimeout(() => notice.remove(), FINISHED_MS); // a failure stays
  while (area.children.length > MAX_SHOWN) area.firstElementChild.remove();
  if (desktopOn()) {
    const shown = new Notification("Runyard", { body: text, tag: `${kind}:${text}` });
    shown.onclick = () => {
      window.focus();
      if (href) location.hash = href;
    };
  }
}

// One live change of a workflow (the ``changed`` event of /api/workflows/NAME/events).
export function workflowChanged(name, change) {
  const jobs = change.jobs || {};
  const now = { active: (jobs.Queued || 0) + (jobs.Running || 0), failed: jobs.Failed || 0, newest: change.jobs_made || 0 };
  const before = seen.get(name);
  seen.set(name, now);
  if (!before) return;
  if (now.failed > before.failed) announceFailures(name, now.failed - before.failed);
  // Finished: nothing Queued or Running now, after some was (or after new jobs were made:
  // quick jobs may come and go between two readings).
  if (now.active === 0 && (before.active > 0 || now.newest > before.newest)) {
    announce({
      text: `Workflow ${name} finished: ${jobs.Done || 0} Done, ${now.failed} Failed`,
      href: `#/workflows/${enc(name)}`,
      label: "Open",
      kind: "finished",
    });
  }
}

// The ``count`` newest Failed jobs of the workflow, each with a link to it.
async function announceFailures(name, count) {
  let failed = [];
  try {
    const found = await api("GET", `/api/workflows/${enc(name)}/timeline?limit=500`);
    failed = found.jobs.filter((j) => j.state === "Failed").sort((a, b) => (b.ended_at || "").localeCompare(a.ended_at || ""));
  } catch {
    failed = [];
  }
  if (!failed.length) {
    announce({ text: `${count} job${count > 1 ? "s" : ""} of ${name} failed`, href: `#/workflows/${enc(name)}`, label: "Open", kind: "failed" });
    return;
  }
  for (const job of failed.slice(0, Math.min(count, 3))) {
    announce({ text: `Job ${job.serial} (${job.task}, run ${job.run}) of ${name} failed`, href: `#/jobs/${job.serial}`, label: `Open job ${job.serial}`, kind: "failed" });
  }
}

// Read a workflow's live changes (for a view that has no stream of its own): each goes to
// ``workflowChanged`` and to ``onChange``. Answers the function that stops reading.
export function watchEvents(name, onChange) {
  const source = new EventSource(`/api/workflows/${enc(name)}/events`);
  source.addEventListener("changed", (event) => {
    const change = JSON.parse(event.data);
    workflowChanged(name, change);
    onChange(change);
  });
  return () => source.close();
}
