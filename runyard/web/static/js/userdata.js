// User Data: the browser of the mapped folders (listed through a short-lived User Data token
// that the page asks for as the admin), the mappings (admins add and remove them), and a
// picker that answers a User Data file or folder value.

import { api } from "./api.js";
import { confirmAction } from "./confirm.js";
import { append, clear, enc, h, when } from "./dom.js";
import { openImageViewer } from "./image.js";
import { isAdmin } from "./session.js";

let cached = null; // {token, roots, until}

async function listToken() {
  if (cached && cached.until > Date.now()) return cached;
  const roots = (await api("GET", "/api/userdata/mappings")).map((m) => m.root);
  if (!roots.length) return { token: "", roots };
  const answer = await api("POST", "/api/userdata/tokens", { json: { scopes: roots.map((r) => ["list", r]) } });
  const until = Math.min(new Date(answer.expires_at).getTime() - 30000, Date.now() + 5 * 60000);
  cached = { token: answer.token, roots, until };
  return cached;
}

export async function listFolder(path) {
  const { token } = await listToken();
  return api("GET", `/api/userdata/list?path=${enc(path)}`, { headers: { Authorization: `Bearer ${token}` } });
}

// Files the slice viewer reads (Scanco AIM and ISQ, with or without a version suffix; OMNI).
const IMAGE_FILE = /\.(aim|isq|omni)(;\d+)?$/i;

function size(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MiB` : bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`;
}

// A folder browser drawn into ``box``; ``onPick({kind: "file"|"folder", path, name})``.
// ``start``: the folder shown first (else the roots); ``onFolder(path)``: told of each folder
// shown (null: the roots).
export function browser(box, { notify, onPick, pickFolders = false, pickFiles = true, start = null, onFolder = () => {} }) {
  const crumbs = h("div", { class: "ud-path" });
  const list = h("table", { class: "list ud-list" });
  append(clear(box), crumbs, list);

  async function showRoots() {
    let roots = [];
    try {
      roots = (await listToken()).roots;
    } catch (exc) {
      notify(exc.message, "error");
    }
    onFolder(null);
    append(clear(crumbs), h("strong", {}, "User Data"));
    append(
      clear(list),
      h("tbody", {}, roots.length
        ? roots.map((root) => h("tr", { class: "ud-folder", "data-path": root }, h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(root); } }, root)), h("td", {}, pickFolders ? pickButton("folder", root, root) : "")))
        : h("tr", {}, h("td", { class: "empty" }, "No User Data folder is mapped yet."))),
    );
  }

  function viewButton(path, name) {
    const value = { type: "Image", source: "userdata", virtualpath: path, filename: name };
    return h("button", { type: "button", class: "view-image", onclick: () => openImageViewer(name, { [name]: value }, { notify }) }, "View slices");
  }

  function pickButton(kind, path, name) {
    return h("button", { type: "button", class: "pick", onclick: () => onPick({ kind, path, name }) }, "Choose");
  }

  async function open(path) {
    let listing;
    try {
      listing = await listFolder(path);
    } catch (exc) {
      notify(exc.message, "error");
      return;
    }
    onFolder(path);
    const parts = path.split("/").filter(Boolean);
    append(
      clear(crumbs),
      h("a", { href: "#", onclick: (e) => { e.preventDefault(); showRoots(); } }, "User Data"),
      parts.map((part, i) => {
        const to = `/${parts.slice(0, i + 1).join("/")}/`;
        return [" / ", h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(to); } }, part)];
      }),
    );
    const rows = [
      ...listing.folders.map((f) =>
        h("tr", { class: "ud-folder", "data-path": path + f.virtual_name },
          h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); open(path + f.virtual_name); } }, `${f.name}/`)),
          h("td", {}),
          h("td", {}, pickFolders ? pickButton("folder", path + f.virtual_name, f.name) : "")),
      ),
      ...listing.files.map((f) =>
        h("tr", { class: "ud-file", "data-path": path + f.name },
          h("td", {}, f.name),
          h("td", { class: "num" }, size(f.size), " \u00B7 ", when(f.mtime)),
          h("td", {}, pickFiles ? pickButton("file", path + f.name, f.name) : IMAGE_FILE.test(f.name) ? viewButton(path + f.name, f.name) : "")),
      ),
    ];
    append(clear(list), h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { class: "empty" }, "This folder is empty."))));
  }

  if (start) open(start);
  else showRoots();
  return { open };
}

// A dialog to pick a User Data file or folder: answers the pick, or null when cancelled.
export function pickUserData({ notify, folders = false, files = true, title = "Choose from User Data" }) {
  return new Promise((resolve) => {
    const box = h("div", { class: "ud-browser" });
    const dialog = h("dialog", { class: "ud-dialog" });
    const done = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    append(dialog, h("h2", {}, title), box, h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => done(null) }, "Cancel")));
    document.body.append(dialog);
    browser(box, { notify, onPick: done, pickFolders: folders, pickFiles: files });
    dialog.showModal();
  });
}

// The value of a pick for an output or input of ``type`` (ForeignFile, Folder, Image).
export function userDataValue(type, pick) {
  if (type === "Folder" || pick.kind === "folder") return { type: "Folder", source: "userdata", virtualpath: pick.path };
  return { type, source: "userdata", virtualpath: pick.path, filename: pick.name };
}

// The folder browsed is in the address: #/userdata?path=/Scans/2026/ (replaced, not pushed).
export function userDataView(main, _params, { notify, query = new URLSearchParams() }) {
  let alive = true;
  let start = query.get("path");
  const onFolder = (path) => {
    if (alive) history.replaceState(null, "", path ? `#/userdata?path=${enc(path)}` : "#/userdata");
  };
  const browse = () => {
    browser(box, { notify, onPick: () => {}, pickFiles: false, start, onFolder });
    start = null;
  };
  const mappings = h("tbody");
  const root = h("input", { name: "root", placeholder: "/Scans/", "aria-label": "Virtual root" });
  const folder = h("input", { name: "folder", placeholder: "/data/scans", "aria-label": "Server folder", size: 40 });
  const box = h("div", { class: "ud-browser panel" });
  async function loadMappings() {
    try {
      const found = await api("GET", "/api/userdata/mappings");
      append(
        clear(mappings),
        found.length
          ? found.map((m) =>
              h("tr", { "data-root": m.root }, h("td", {}, m.root), h("td", {}, h("code", {}, m.folder)), h("td", {}, when(m.created_at)),
                h("td", {}, h("button", { type: "button", class: "danger remove-mapping", onclick: () => remove(m.root) }, "Remove"))),
            )
          : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No mapping yet.")),
      );
    } catch (exc) {
      notify(exc.message, "error");
    }
    cached = null;
    browse();
  }
  async function remove(path) {
    const sure = await confirmAction({
      question: `Remove the mapping of ${path}?`,
      consequence: `Jobs and users can no longer reach the files under ${path} (the files stay where they are on the server).`,
      action: "Remove mapping",
    });
    if (!sure) return;
    try {
      await api("DELETE", `/api/userdata/mappings?root=${enc(path)}`);
      notify(`Mapping ${path} removed`);
    } catch (exc) {
      notify(exc.message, "error");
    }
    loadMappings();
  }
  const form = h(
    "form",
    { class: "toolbar add-mapping" },
    root,
    " \u2192 ",
    folder,
    h("button", { type: "submit", class: "primary" }, "Map folder"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PUT", "/api/userdata/mappings", { json: { root: root.value.trim(), folder: folder.value.trim() } });
      notify(`Mapped ${root.value.trim()}`);
      form.reset();
    } catch (exc) {
      notify(exc.message, "error");
    }
    loadMappings();
  });
  main.append(h("div", { class: "toolbar" }, h("h1", {}, "User Data")), box);
  // Only admins map folders (and see the server's folders); others browse what they may use.
  if (!isAdmin()) {
    cached = null;
    browse();
    return () => (alive = false);
  }
  main.append(
    h("h3", {}, "Mappings (admins)"),
    h("table", { class: "list mappings" }, h("thead", {}, h("tr", {}, ["Virtual root", "Server folder", "Since", ""].map((t) => h("th", {}, t)))), mappings),
    form,
  );
  loadMappings();
  return () => (alive = false);
}
