// The one confirmation every destructive button asks for: a modal dialog of the UI's own
// (not window.confirm) that names what will happen. Keyboard: it opens on Cancel (Tab
// reaches the action, Enter presses the focused button), Escape cancels.

import { h, openDialog } from "./dom.js";

// Asks ``question`` (the title, e.g. "Abort job 12?") with ``consequence`` (what will happen)
// and the action's button ``action`` (e.g. "Abort job"); answers a promise of true when the
// user confirms, false when they cancel.
export function confirmAction({ question, consequence = "", action, danger = true }) {
  return new Promise((resolve) => {
    let answer = false;
    const cancel = h("button", { type: "button", class: "confirm-cancel", onclick: () => dialog.close() }, "Cancel");
    const confirm = h("button", {
      type: "button",
      class: `confirm-action ${danger ? "danger-filled" : "primary"}`,
      onclick: () => {
        answer = true;
        dialog.close();
      },
    }, action);
    const dialog = openDialog(
      "confirm-dialog",
      h("h2", { class: "confirm-question" }, question),
      consequence ? h("p", { class: "confirm-consequence" }, consequence) : null,
      h("div", { class: "buttons" }, cancel, confirm),
    );
    dialog.setAttribute("role", "alertdialog");
    dialog.setAttribute("aria-label", question);
    dialog.addEventListener("close", () => resolve(answer));
    cancel.focus();
  });
}

// ``run`` once the user has confirmed (see confirmAction); answers what ``run`` answers, or
// null when cancelled.
export async function confirmed(options, run) {
  return (await confirmAction(options)) ? run() : null;
}
