// Sharing a workflow (its owner and admins): with whom it is shared and at which level
// (view, operate, edit); add a user or a group, change a level, stop sharing.

import { api } from "./api.js";
import { confirmed } from "./confirm.js";
import { append, clear, enc, h, openDialog } from "./dom.js";
import { rememberLevel } from "./session.js";

export const SHARE_LEVELS = [
  ["view", "view: see it, its runs, jobs, logs and files"],
  ["operate", "operate: also start runs, answer forms, restart and abort jobs"],
  ["edit", "edit: also change its tasks, start and stop it"],
];

function levelSelect(label, value) {
  return h("select", { class: "share-level", "aria-label": label }, SHARE_LEVELS.map(([level, text]) => h("option", { value: level, selected: level === value, title: text }, level)));
}

// The share dialog of workflow ``name``; ``onChange`` after every change.
export function openShareDialog(name, { notify, onChange = () => {} }) {
  const owner = h("p", { class: "share-owner muted" });
  const rows = h("tbody");
  const error = h("p", { class: "form-error", role: "alert" });
  const kind = h("select", { class: "share-kind", "aria-label": "Share with" }, h("option", { value: "user" }, "user"), h("option", { value: "group" }, "group"));
  const grantee = h("input", { class: "share-grantee", required: true, "aria-label": "User or group name", placeholder: "name", list: "share-names", autocomplete: "off", spellcheck: "false" });
  const names = h("datalist", { id: "share-names" });
  const level = levelSelect("Level", "view");
  const add = h("form", { class: "toolbar add-share" }, kind, grantee, level, h("button", { type: "submit", class: "primary" }, "Share"), names);
  let choices = { user: [], group: [] };

  // Shares workflow ``name`` with ``who`` at level ``value`` (null: stops sharing); tells the
  // user ``done``.
  async function put(who, value, done) {
    error.textContent = "";
    try {
      const answer = await api("PUT", `/api/workflows/${enc(name)}/shares`, { json: { ...who, level: value } });
      draw(answer);
      notify(done);
      onChange();
      return true;
    } catch (exc) {
      error.textContent = exc.message;
      return false;
    }
  }

  function draw(answer) {
    rememberLevel(name, answer.your_level);
    owner.textContent = answer.owner ? `Owner: ${answer.owner}. Admins may do everything.` : "No owner: only admins may use it unless it is shared.";
    append(
      clear(rows),
      answer.shares.length
        ? answer.shares.map((share) => {
            const who = share.user !== undefined ? { user: share.user } : { group: share.group };
            const [whoKind, whoName] = Object.entries(who)[0];
            const select = levelSelect(`Level of ${whoKind} ${whoName}`, share.level);
            select.addEventListener("change", () => put(who, select.value, `${whoKind} ${whoName} may now ${select.value} ${name}`));
            return h(
              "tr",
              { class: "share", dataset: { kind: whoKind, name: whoName } },
              h("td", { class: "muted" }, whoKind),
              h("td", { class: "share-name" }, whoName),
              h("td", {}, select),
              h("td", {}, h("button", { type: "button", class: "danger remove-share", "aria-label": `Stop sharing with ${whoKind} ${whoName}`, onclick: () => unshare(who, share.level) }, "Remove")),
            );
          })
        : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "Not shared with anyone.")),
    );
  }

  // Stopping a share asks first (the notice, under this dialog, could not offer Undo).
  function unshare(who, was) {
    const [whoKind, whoName] = Object.entries(who)[0];
    confirmed({
      question: `Stop sharing ${name} with ${whoKind} ${whoName}?`,
      consequence: `${whoKind === "group" ? `The members of ${whoName} lose` : `${whoName} loses`} ${was} access to ${name} (unless another share gives it), at once.`,
      action: "Stop sharing",
    }, () => put(who, null, `${name} is no longer shared with ${whoKind} ${whoName}`));
  }

  function offer() {
    append(clear(names), choices[kind.value].map((n) => h("option", { value: n })));
  }
  kind.addEventListener("change", offer);

  add.addEventListener("submit", async (event) => {
    event.preventDefault();
    const who = { [kind.value]: grantee.value.trim() };
    if (await put(who, level.value, `${name} is shared with ${kind.value} ${grantee.value.trim()} to ${level.value}`)) {
      grantee.value = "";
    }
  });

  const dialog = openDialog(
    "share-dialog",
    h("div", { class: "job-head" }, h("h2", {}, "Share ", h("span", { class: "share-workflow" }, name)), h("button", { type: "button", class: "close link", title: "Close", onclick: () => dialog.close() }, "\u00D7")),
    owner,
    h("table", { class: "list shares" }, h("thead", {}, h("tr", {}, ["", "Shared with", "Level", ""].map((t) => h("th", {}, t)))), rows),
    h("h3", {}, "Share with"),
    add,
    h("p", { class: "muted levels-help" }, SHARE_LEVELS.map(([, text]) => [text, h("br")])),
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Close")),
  );
  grantee.focus();

  (async () => {
    try {
      const [answer, users, groups] = await Promise.all([
        api("GET", `/api/workflows/${enc(name)}/shares`),
        api("GET", "/api/users").catch(() => []),
        api("GET", "/api/groups").catch(() => []),
      ]);
      draw(answer);
      choices = { user: users.map((u) => u.name), group: groups.map((g) => g.name) };
      offer();
    } catch (exc) {
      error.textContent = exc.message;
    }
  })();
  return dialog;
}
