// Building the page. Text from users and scripts (run names, logs, errors, outputs) only
// ever becomes text nodes or attribute values: nothing here parses HTML.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "innerHTML" || key === "outerHTML") throw new Error("h(): no HTML strings");
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "hidden" || key === "disabled" || key === "selected" || key === "value") {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export const enc = encodeURIComponent;

// The job states, their order in summaries, and how a cell shows them.
export const STATES = ["Waiting", "Queued", "Running", "Done", "Failed", "Aborted", "Obsolete"];
export const ICONS = {
  Waiting: "\u2016", // pause (U+23F8 is missing from common fonts)
  Queued: "\u25F7", // clock
  Running: "\u25B6", // play
  Done: "\u2713", // check
  Failed: "\u2717", // cross
  Aborted: "\u2298", // circled slash
  Obsolete: "\u2013", // dash
};
export const FINAL = new Set(["Done", "Failed", "Aborted", "Obsolete"]);
// A Running job whose worker has not started its script yet (claimed ahead, waiting for a
// free slot on its worker): the job's ``claimed``.
export const CLAIMED = "Claimed, not started: its worker has not started the script yet (it waits for a free slot)";

export function stateBadge(state) {
  return h(
    "span",
    { class: `state s-${String(state).toLowerCase()}`, title: state },
    h("span", { class: "icon", "aria-hidden": "true" }, ICONS[state] || "?"),
    h("span", { class: "label" }, state),
  );
}

export function countChips(byState) {
  return STATES.filter((s) => byState && byState[s]).map((s) =>
    h("span", { class: `chip s-${s.toLowerCase()}`, title: s }, `${ICONS[s]} ${byState[s]}`),
  );
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "";
  const end = toIso ? new Date(toIso) : new Date();
  const seconds = Math.max(0, (end - new Date(fromIso)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// A modal dialog of ``children`` (its class ``className``), shown now and removed when
// closed; answers the dialog.
export function openDialog(className, ...children) {
  const dialog = h("dialog", { class: `dialog ${className}` }, ...children);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
