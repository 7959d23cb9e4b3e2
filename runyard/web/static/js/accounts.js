// Accounts: the users and groups (admins: add a user, disable or enable it, set its
// password; add and delete groups, add and remove members), your personal tokens (create one
// with a label, shown once with a copy button; revoke), and changing a password.

import { api } from "./api.js";
import { confirmed } from "./confirm.js";
import { append, clear, enc, h, openDialog, when } from "./dom.js";
import { isAdmin } from "./session.js";

const ADMINS = "admins"; // the group whose members are admins (it cannot be deleted)

function table(className, headings, body) {
  return h("table", { class: `list ${className}` }, h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))), body);
}

// Runs ``call``; tells the user what happened (``done``: the message, or a function of the
// answer) or why the server refused; then ``after``.
async function attempt(call, done, { notify, after }) {
  try {
    const answer = await call();
    if (done) notify(typeof done === "function" ? done(answer) : done);
  } catch (exc) {
    notify(exc.message, "error");
  }
  if (after) after();
}

// -- users and groups (admins) ------------------------------------------------------------------

export function usersView(main, _params, { notify }) {
  const users = h("tbody");
  const groups = h("tbody");
  let known = []; // the users, for the member lists
  let alive = true;

  const userName = h("input", { name: "name", required: true, "aria-label": "New user's name", placeholder: "name", autocomplete: "off", spellcheck: "false" });
  const userPassword = h("input", { name: "password", type: "password", required: true, minlength: "8", "aria-label": "New user's password", placeholder: "password (8 characters or more)", autocomplete: "new-password" });
  const userAdmin = h("input", { name: "admin", type: "checkbox" });
  const addUser = h("form", { class: "toolbar add-user" }, userName, userPassword, h("label", { class: "check" }, userAdmin, " Admin"), h("button", { type: "submit", class: "primary" }, "Add user"));
  addUser.addEventListener("submit", (event) => {
    event.preventDefault();
    const json = { name: userName.value.trim(), password: userPassword.value, admin: userAdmin.checked };
    attempt(() => api("POST", "/api/users", { json }), (u) => `Added user ${u.name}${u.admin ? " (admin)" : ""}`, {
      notify,
      after: () => {
        addUser.reset();
        load();
      },
    });
  });

  const groupName = h("input", { name: "name", required: true, "aria-label": "New group's name", placeholder: "name", autocomplete: "off", spellcheck: "false" });
  const addGroup = h("form", { class: "toolbar add-group" }, groupName, h("button", { type: "submit", class: "primary" }, "Add group"));
  addGroup.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = groupName.value.trim();
    attempt(() => api("POST", "/api/groups", { json: { name } }), `Added group ${name}`, {
      notify,
      after: () => {
        addGroup.reset();
        load();
      },
    });
  });

  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Users")),
    table("users", ["Name", "Groups", "Status", "Since", ""], users),
    addUser,
    h("div", { class: "toolbar subsection" }, h("h2", {}, "Groups")),
    table("groups", ["Name", "Members", ""], groups),
    addGroup,
  );

  const reload = { notify, after: () => load() };

  function userRow(u) {
    const flip = u.disabled ? "Enable" : "Disable";
    return h(
      "tr",
      { "data-user": u.name, class: u.disabled ? "disabled-user" : "" },
      h("td", {}, h("span", { class: "user-name" }, u.name), u.admin ? h("span", { class: "tag admin" }, "admin") : null),
      h("td", { class: "user-groups" }, u.groups.length ? u.groups.map((g) => h("span", { class: "tag" }, g)) : h("span", { class: "muted" }, "none")),
      h("td", { class: "user-status" }, u.disabled ? "disabled" : u.has_password ? "active" : "active (tokens only)"),
      h("td", { class: "nowrap" }, when(u.created_at)),
      h(
        "td",
        { class: "actions" },
        h("div", {},
          h("button", {
            type: "button",
            class: u.disabled ? "enable-user" : "disable-user danger",
            title: u.disabled ? "Allow this user to log in and use its tokens again" : "Its sessions and tokens stop working; its workflows stay",
            onclick: () => (u.disabled ? enable(u) : disable(u)),
          }, flip),
          h("button", { type: "button", class: "set-password", onclick: () => openPasswordDialog(u.name, { notify }) }, "Set password\u2026"),
        ),
      ),
    );
  }

  const setDisabled = (u, disabled) => api("PATCH", `/api/users/${enc(u.name)}`, { json: { disabled } });
  const enable = (u) => attempt(() => setDisabled(u, false), `Enabled user ${u.name}`, reload);
  function disable(u) {
    confirmed({
      question: `Disable user ${u.name}?`,
      consequence: `${u.name}'s sessions and tokens stop working at once and ${u.name} cannot log in; its workflows stay. Enable lets it in again.`,
      action: "Disable user",
    }, () => attempt(() => setDisabled(u, true), `Disabled user ${u.name}`, reload));
  }

  // Removing a member can be undone (the notice offers to add them back).
  async function removeMember(g, m) {
    const member = `/api/groups/${enc(g.name)}/members/${enc(m)}`;
    try {
      await api("DELETE", member);
      const undo = () => attempt(() => api("PUT", member), `Added ${m} to ${g.name} again`, reload);
      notify(`Removed ${m} from ${g.name}`, "info", { label: "Undo", run: undo });
    } catch (exc) {
      notify(exc.message, "error");
    }
    load();
  }

  function groupRow(g) {
    const others = known.filter((u) => !g.members.includes(u.name));
    const pick = h("select", { class: "member-choice", "aria-label": `User to add to ${g.name}` }, others.map((u) => h("option", { value: u.name }, u.name)));
    return h(
      "tr",
      { "data-group": g.name },
      h("td", {}, h("span", { class: "group-name" }, g.name)),
      h(
        "td",
        { class: "members" },
        g.members.map((m) =>
          h("span", { class: "tag member", "data-member": m }, m,
            h("button", {
              type: "button",
              class: "link remove-member",
              title: `Remove ${m} from ${g.name}`,
              "aria-label": `Remove ${m} from ${g.name}`,
              onclick: () => removeMember(g, m),
            }, "\u00D7"))),
        others.length
          ? h("span", { class: "add-member" }, pick, h("button", {
              type: "button",
              class: "small add-member-button",
              onclick: () => attempt(() => api("PUT", `/api/groups/${enc(g.name)}/members/${enc(pick.value)}`), `Added ${pick.value} to ${g.name}`, reload),
            }, "Add member"))
          : null,
      ),
      h("td", {}, g.name === ADMINS
        ? h("span", { class: "muted", title: "Its members are the admins; it cannot be deleted" }, "admins")
        : h("button", {
            type: "button",
            class: "danger delete-group",
            onclick: () => confirmed({
              question: `Delete group ${g.name}?`,
              consequence: `Workflows shared with ${g.name} are no longer shared with its members. This cannot be undone.`,
              action: "Delete group",
            }, () => attempt(() => api("DELETE", `/api/groups/${enc(g.name)}`), `Deleted group ${g.name}`, reload)),
          }, "Delete")),
    );
  }

  async function load() {
    try {
      const [userList, groupList] = await Promise.all([api("GET", "/api/users"), api("GET", "/api/groups")]);
      if (!alive) return;
      known = userList;
      append(clear(users), userList.map(userRow));
      append(clear(groups), groupList.length ? groupList.map(groupRow) : h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No group yet.")));
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    }
  }

  load();
  return () => {
    alive = false;
  };
}

// -- passwords ---------------------------------------------------------------------------------

// Set user ``name``'s password: an admin for anyone; a user its own, with its current one.
export function openPasswordDialog(name, { notify, own = false }) {
  const askCurrent = own && !isAdmin();
  const current = h("input", { type: "password", name: "current", required: true, autocomplete: "current-password" });
  const password = h("input", { type: "password", name: "password", required: true, minlength: "8", autocomplete: "new-password" });
  const again = h("input", { type: "password", name: "again", required: true, autocomplete: "new-password" });
  const error = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    { class: "password-form stacked" },
    h("h2", {}, own ? "Change your password" : `Set the password of ${name}`),
    askCurrent ? h("label", {}, "Current password", current) : null,
    h("label", {}, "New password", password),
    h("label", {}, "New password again", again),
    h("p", { class: "muted" }, own ? "Your other sessions stay logged in; your tokens keep working." : "Tell the user; their tokens keep working."),
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), h("button", { type: "submit", class: "primary" }, "Set password")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (password.value !== again.value) {
      error.textContent = "The two new passwords differ: type the same twice.";
      return;
    }
    try {
      await api("PUT", `/api/users/${enc(name)}/password`, { json: askCurrent ? { password: password.value, current: current.value } : { password: password.value } });
      dialog.close();
      notify(own ? "Your password is changed" : `The password of ${name} is set`);
    } catch (exc) {
      error.textContent = exc.message;
    }
  });
  const dialog = openDialog("password-dialog", form);
  (askCurrent ? current : password).focus();
  return dialog;
}

// -- personal tokens ---------------------------------------------------------------------------

export function tokensView(main, _params, { notify }) {
  const list = h("tbody");
  const fresh = h("div", { class: "new-token", hidden: true });
  const label = h("input", { name: "label", "aria-label": "Token label", placeholder: "what it is for (e.g. laptop CLI)", maxlength: "200", size: 36 });
  const form = h("form", { class: "toolbar create-token" }, label, h("button", { type: "submit", class: "primary" }, "Create token"));
  let alive = true;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("POST", "/api/tokens", { json: { label: label.value.trim() } });
      form.reset();
      showOnce(answer);
    } catch (exc) {
      notify(exc.message, "error");
    }
    load();
  });

  // The new token, shown this once (the server keeps only its hash).
  function showOnce(answer) {
    const value = h("input", { class: "token-value", readonly: true, value: answer.token, "aria-label": "New token", size: 52, spellcheck: "false" });
    const copy = h("button", { type: "button", class: "copy-token primary" }, "Copy");
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(value.value);
      } catch {
        value.select();
        document.execCommand("copy");
      }
      copy.textContent = "Copied";
    });
    append(
      clear(fresh),
      h("p", {}, h("strong", {}, `Your new token${answer.label ? ` "${answer.label}"` : ""}`), ": copy it now, it is not shown again. Use it as ", h("code", {}, "Authorization: Bearer \u2026"), " or with ", h("code", {}, "runyard --token"), "."),
      h("div", { class: "toolbar" }, value, copy, h("button", { type: "button", class: "link", title: "Hide the token", onclick: () => (fresh.hidden = true) }, "\u00D7")),
    );
    fresh.hidden = false;
    value.select();
  }

  function revoke(t) {
    confirmed({
      question: `Revoke the token ${t.label || t.id}?`,
      consequence: "Whatever uses it (scripts, the command line) stops working at once. This cannot be undone.",
      action: "Revoke token",
    }, () => attempt(() => api("DELETE", `/api/tokens/${t.id}`), `Revoked token ${t.label || t.id}`, { notify, after: load }));
  }

  async function load() {
    try {
      const tokens = await api("GET", "/api/tokens");
      if (!alive) return;
      append(
        clear(list),
        tokens.length
          ? tokens.map((t) =>
              h("tr", { "data-token": String(t.id) },
                h("td", { class: "token-label" }, t.label || h("span", { class: "muted" }, "no label")),
                h("td", { class: "nowrap" }, when(t.created_at)),
                h("td", { class: "nowrap token-used" }, t.last_used_at ? when(t.last_used_at) : h("span", { class: "muted" }, "never")),
                h("td", {}, h("button", { type: "button", class: "danger revoke-token", onclick: () => revoke(t) }, "Revoke"))))
          : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "You have no personal token.")),
      );
    } catch (exc) {
      if (alive) notify(exc.message, "error");
    }
  }

  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "My tokens")),
    h("p", { class: "muted intro" }, "A personal token lets scripts and the command line act as you (", h("code", {}, "runyard login"), " makes one too). It is shown once, when it is made; revoke the ones you no longer use."),
    form,
    fresh,
    table("tokens", ["Label", "Created", "Last used", ""], list),
  );
  load();
  return () => {
    alive = false;
  };
}
