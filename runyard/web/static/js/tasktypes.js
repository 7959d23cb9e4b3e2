// The task types: a list of every installed task type (newest version first, the others
// beside it), and the documentation of one (#/task-types/NAME, #/task-types/NAME/VERSION):
// its summary, author, dependencies, how its jobs run (a new or a reused process), remarks,
// interface, and the documentation files its package brought (the description, readme.txt,
// CITATION.cff). The editor opens the same documentation in a dialog.

import { api } from "./api.js";
import { append, clear, enc, h } from "./dom.js";
import { documentFile } from "./document.js";
import { markdown, safeHref } from "./markdown.js";

function docsHref(name, version) {
  return `#/task-types/${enc(name)}${version ? `/${enc(version)}` : ""}`;
}

// Whether a task type's package brought something to read beyond its summary.
function hasDocumentation(doc) {
  return Boolean(doc && (doc.description || doc.readme || doc.citation_cff || doc.remarks));
}

function authorLine(doc, fallback) {
  const author = (doc && doc.author) || {};
  const name = author.name || fallback;
  const website = safeHref(author.website || "");
  const parts = [];
  if (name) parts.push(h("span", { class: "author-name" }, name));
  if (author.email) parts.push(" ", h("a", { class: "author-email", href: `mailto:${author.email}` }, author.email));
  if (website) parts.push(" ", h("a", { class: "author-website", href: website, rel: "noopener noreferrer nofollow", target: "_blank" }, author.website));
  else if (author.website) parts.push(" ", h("span", { class: "author-website" }, author.website));
  return parts.length ? parts : null;
}

function interfaceTable(title, params, inputs) {
  if (!params.length) return h("p", { class: "muted" }, `no ${title.toLowerCase()}`);
  const limits = (p) => ["minimum", "maximum", "multipleOf", "enum", "format", "default"].filter((k) => p[k] !== undefined).map((k) => `${k} ${JSON.stringify(p[k])}`).join(", ");
  return h(
    "table",
    { class: `list interface-table ${title.toLowerCase()}` },
    h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Type"), inputs ? h("th", {}, "Sources") : null, h("th", {}, "Description"))),
    h("tbody", {}, params.map((p) => h(
      "tr",
      { "data-key": p.key },
      h("td", {}, h("code", {}, p.key)),
      h("td", { class: "param-type" }, p.type),
      inputs ? h("td", { class: "muted" }, (p.supported_modes || []).join(", ") || "any") : null,
      h("td", {}, p.description || "", inputs && limits(p) ? h("div", { class: "muted" }, limits(p)) : null),
    ))),
  );
}

function documentSection(title, cls, file) {
  if (!file) return null;
  return h(
    "section",
    { class: `doc-file ${cls}` },
    h("h3", {}, title, h("span", { class: "muted doc-filename" }, ` ${file.filename}`)),
    documentFile(file),
  );
}

// How a worker runs the task type's jobs (its metadata's ``jobs_per_process``).
function processMode(jobsPerProcess) {
  return jobsPerProcess > 1 ? `reused process, up to ${jobsPerProcess} jobs` : "a new process per job";
}

// The documentation of task type version ``tt`` (as GET /api/task-types/NAME gives it).
export function documentationPanel(tt) {
  const doc = tt.documentation || {};
  const facts = [
    ["Name", h("code", {}, tt.name)],
    ["Version", tt.version],
    ["Kind", tt.interface.kind],
    ["Author", authorLine(doc, tt.author) || "\u2014"],
    ["Needs", tt.dependencies.length ? tt.dependencies.map((d) => `${d.name} ${d.version}`).join(", ") : "\u2014"],
  ];
  // Interactive task types run nothing on a worker.
  if (tt.interface.kind !== "interactive") facts.push(["Runs", h("span", { class: "process-mode" }, processMode(tt.jobs_per_process))]);
  return h(
    "article",
    { class: "task-type-docs", "data-task-type": tt.name, "data-version": tt.version },
    h("p", { class: "doc-summary" }, tt.summary || h("span", { class: "muted" }, "no summary")),
    h("dl", { class: "facts task-type-facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    doc.remarks ? h("section", { class: "doc-remarks" }, h("h3", {}, "Remarks"), markdown(doc.remarks)) : null,
    documentSection("Description", "doc-description", doc.description),
    h("section", { class: "doc-interface" }, h("h3", {}, "Inputs"), interfaceTable("Inputs", tt.interface.inputs, true), h("h3", {}, "Outputs"), interfaceTable("Outputs", tt.interface.outputs, false)),
    documentSection("Read me", "doc-readme", doc.readme),
    documentSection("Citation", "doc-citation", doc.citation_cff),
    hasDocumentation(doc) ? null : h("p", { class: "muted no-docs" }, "The package brought no documentation files."),
  );
}

// The installed versions of ``name``, newest first, each with its documentation.
async function versionsOf(name) {
  return api("GET", `/api/task-types/${enc(name)}`);
}

// #/task-types: every task type, its newest version first.
export function taskTypesView(main, _params, { notify }) {
  let alive = true;
  const filter = h("input", { type: "search", class: "task-type-filter", placeholder: "Filter by name or summary", "aria-label": "Filter task types" });
  const body = h("tbody");
  const count = h("span", { class: "count" });
  main.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Task types"), count, h("span", { class: "grow" }), filter),
    h("table", { class: "list task-types" },
      h("thead", {}, h("tr", {}, h("th", {}, "Task type"), h("th", {}, "Versions"), h("th", {}, "Kind"), h("th", {}, "Summary"), h("th", {}, "Author"), h("th", {}, ""))),
      body),
  );
  let all = [];

  function draw() {
    const words = filter.value.trim().toLowerCase();
    const byName = new Map();
    for (const tt of all) {
      if (!byName.has(tt.name)) byName.set(tt.name, []);
      byName.get(tt.name).push(tt);
    }
    const rows = [...byName.values()].filter(([tt]) => !words || `${tt.name} ${tt.display_name} ${tt.summary}`.toLowerCase().includes(words));
    count.textContent = `${rows.length} of ${byName.size}`;
    append(
      clear(body),
      rows.length ? null : h("tr", {}, h("td", { colspan: 6, class: "empty" }, all.length ? "No task type matches." : "No task type is installed: import a package.")),
      rows.map((versions) => {
        const [tt] = versions;
        return h(
          "tr",
          { "data-task-type": tt.name },
          h("td", {}, h("a", { href: docsHref(tt.name), class: "task-type-name" }, tt.display_name || tt.name), tt.display_name ? h("div", { class: "muted" }, h("code", {}, tt.name)) : null),
          h("td", { class: "versions" }, versions.map((v, i) => [i ? ", " : "", h("a", { href: docsHref(v.name, v.version) }, v.version)])),
          h("td", {}, tt.interface.kind),
          h("td", {}, tt.summary || ""),
          h("td", {}, tt.author || ""),
          h("td", {}, h("a", { href: docsHref(tt.name), class: "button docs-link" }, "Documentation")),
        );
      }),
    );
  }

  filter.addEventListener("input", draw);
  (async () => {
    try {
      all = await api("GET", "/api/task-types");
    } catch (exc) {
      notify(exc.message, "error");
      return;
    }
    if (alive) draw();
  })();
  return () => {
    alive = false;
  };
}

// #/task-types/NAME[/VERSION]: the documentation of one version (the newest if none).
export function taskTypeView(main, [name, version], { notify }) {
  let alive = true;
  const title = h("h1", {}, name);
  const picker = h("span", { class: "version-picker" });
  const box = h("div", { class: "task-type-page" });
  main.append(h("div", { class: "toolbar" }, h("a", { href: "#/task-types", class: "back" }, "\u2190 Task types"), title, picker), box);
  (async () => {
    let versions;
    try {
      versions = await versionsOf(name);
    } catch (exc) {
      notify(exc.message, "error");
      return;
    }
    if (!alive) return;
    const tt = versions.find((v) => v.version === version) || versions[0];
    if (!tt) {
      append(clear(box), h("p", { class: "empty" }, `Task type ${name}${version ? ` ${version}` : ""} is not installed.`));
      return;
    }
    if (version && tt.version !== version) notify(`Task type ${name} ${version} is not installed: showing ${tt.version}`, "error");
    title.textContent = tt.display_name ? `${tt.display_name} (${tt.name})` : tt.name;
    const select = h("select", { class: "version-select", "aria-label": "Version" }, versions.map((v) => h("option", { value: v.version, selected: v.version === tt.version }, v.version)));
    select.addEventListener("change", () => (location.hash = docsHref(name, select.value)));
    append(clear(picker), versions.length > 1 ? h("label", {}, "Version ", select) : h("span", { class: "muted" }, tt.version));
    append(clear(box), documentationPanel(tt));
  })();
  return () => {
    alive = false;
  };
}

// The documentation of task type ``name`` ``version`` in a dialog (from the editor).
export async function openDocumentation(name, version, { notify }) {
  let tt;
  try {
    const versions = await versionsOf(name);
    tt = versions.find((v) => v.version === version) || versions[0];
  } catch (exc) {
    notify(exc.message, "error");
    return;
  }
  if (!tt) {
    notify(`Task type ${name} is not installed`, "error");
    return;
  }
  const dialog = h("dialog", { class: "docs-dialog", "aria-label": `Documentation of ${tt.name}` });
  append(
    dialog,
    h("div", { class: "job-head" },
      h("h2", {}, `${tt.display_name || tt.name} ${tt.version}`),
      h("a", { href: docsHref(tt.name, tt.version), class: "docs-page-link", onclick: () => dialog.close() }, "Open as page"),
      h("button", { type: "button", class: "close link", title: "Close", onclick: () => dialog.close() }, "\u00D7")),
    documentationPanel(tt),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
