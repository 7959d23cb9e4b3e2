// The study table (#/workflows/NAME/study?task=T): a task's scalar outputs for every live run
// whose job of it is Done (GET /api/workflows/NAME/study-table), as one table to sort (a
// column's heading), filter (text, or comparisons such as "bv_tv > 0.2 and unit = mm"),
// export as CSV (the rows that pass the filter), chart (a histogram of a numeric column, a
// scatter of two: plot.js) and download a file column's files as one zip.

import { api } from "./api.js";
import { append, clear, enc, h } from "./dom.js";
import { downloadZip, saveBlob } from "./downloads.js";
import { histogram, scatter } from "./plot.js";

const SHOWN_ROWS = 500; // rows drawn; the filter, the sort, the export and the charts use all
const NUMERIC = new Set(["Int", "Float"]);
const COMPARISON = /^\s*([^<>=!]+?)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*$/;

// A predicate on rows ({run, values}) for the filter ``text``: conditions joined by "and",
// each a comparison of a column (by its key, or "run") with a value, or else a text found
// (any case) in the run's name or one of its values. Throws an Error naming a bad value.
export function parseFilter(text, columns) {
  const tests = text
    .split(/\s+and\s+|\s*&&\s*/i)
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => condition(part, columns));
  return (row) => tests.every((test) => test(row));
}

function condition(part, columns) {
  const match = part.match(COMPARISON);
  const index = match ? columns.findIndex((c) => c.key === match[1]) : -2;
  if (!match || (index < 0 && match[1] !== "run")) {
    const needle = part.toLowerCase();
    return (row) => String(row.run).toLowerCase().includes(needle) || row.values.some((v) => v !== null && String(v).toLowerCase().includes(needle));
  }
  const [, key, op, raw] = match;
  const numeric = index >= 0 && NUMERIC.has(columns[index].type);
  const wanted = numeric ? Number(raw) : raw.replace(/^"(.*)"$/, "$1");
  if (numeric && (raw === "" || !Number.isFinite(wanted))) throw new Error(`${key} ${op} ${raw}: ${key} holds numbers; compare it with a number`);
  const value = (row) => (index < 0 ? row.run : row.values[index]);
  return (row) => {
    const v = value(row);
    if (v === null || v === undefined) return op === "!=";
    return compare(numeric ? v : String(v), wanted, op);
  };
}

function compare(a, b, op) {
  switch (op) {
    case "<": return a < b;
    case "<=": return a <= b;
    case ">": return a > b;
    case ">=": return a >= b;
    case "!=": return a !== b;
    default: return a === b;
  }
}

// Sorts rows by column ``index`` (-1: the run's name); empty cells last either way.
export function sortRows(rows, index, descending) {
  const value = (row) => (index < 0 ? row.run : row.values[index]);
  const sign = descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    if (typeof x === "number" && typeof y === "number") return sign * (x - y);
    return sign * String(x).localeCompare(String(y), undefined, { numeric: true });
  });
}

// RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled.
export function toCsv(columns, rows) {
  const field = (v) => {
    const text = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const lines = [["run_id", "run", ...columns.map((c) => c.key)], ...rows.map((r) => [r.run_id, r.run, ...r.values])];
  return lines.map((line) => line.map(field).join(",")).join("\r\n") + "\r\n";
}

export function studyTableView(main, [name], { notify, query }) {
  let table = null; // the server's answer
  let rows = []; // those that pass the filter, sorted
  let sortIndex = null; // null: run sort order; -1: run name; else a column
  let descending = false;
  let removeCharts = [];
  let alive = true;

  const taskSelect = h("select", { class: "study-task", "aria-label": "Task" });
  taskSelect.addEventListener("change", () => {
    location.hash = `#/workflows/${enc(name)}/study?task=${enc(taskSelect.value)}`;
  });
  const filterInput = h("input", { type: "search", class: "study-filter", placeholder: "Filter: text, or bv_tv > 0.2 and unit = mm", "aria-label": "Filter rows", size: 36 });
  const filterError = h("span", { class: "study-filter-error error-text", role: "alert" });
  const count = h("span", { class: "study-count muted" });
  const exportButton = h("button", { type: "button", class: "export-csv", onclick: () => exportCsv() }, "Export CSV");
  const zips = h("span", { class: "file-columns" });
  const histSelect = h("select", { class: "hist-column", "aria-label": "Histogram of" });
  const xSelect = h("select", { class: "scatter-x", "aria-label": "Scatter: x" });
  const ySelect = h("select", { class: "scatter-y", "aria-label": "Scatter: y" });
  for (const el of [histSelect, xSelect, ySelect]) el.addEventListener("change", () => drawCharts());
  const histBox = h("div", { class: "chart histogram-chart" });
  const scatterBox = h("div", { class: "chart scatter-chart" });
  const charts = h("section", { class: "study-charts", hidden: true },
    h("div", { class: "chart-box" }, h("label", {}, "Histogram of ", histSelect), histBox),
    h("div", { class: "chart-box" }, h("label", {}, "Scatter: ", ySelect, " against ", xSelect), scatterBox));
  const head = h("thead");
  const body = h("tbody");
  const more = h("p", { class: "muted study-more", hidden: true });
  const emptyNote = h("p", { class: "empty study-empty", hidden: true });

  main.append(
    h("div", { class: "toolbar" },
      h("a", { href: `#/workflows/${enc(name)}`, class: "back" }, "\u2190 Runs"),
      h("h1", {}, "Study table ", h("span", { class: "muted" }, name)),
      h("label", {}, "Task ", taskSelect)),
    h("div", { class: "toolbar filters" }, filterInput, filterError, h("span", { class: "grow" }), count, exportButton, zips),
    charts,
    h("div", { class: "study-scroll" }, h("table", { class: "list study-table" }, head, body)),
    more,
    emptyNote,
  );

  let filterTimer = 0;
  filterInput.addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => update(), 150);
  });

  function numericColumns() {
    return table.columns.map((c, i) => ({ ...c, index: i })).filter((c) => NUMERIC.has(c.type));
  }

  function fill(select, columns, chosen) {
    append(clear(select), columns.map((c) => h("option", { value: String(c.index), selected: c.index === chosen }, c.key)));
  }

  function show() {
    const task = table.task;
    append(clear(taskSelect), table.tasks.map((t) => h("option", { value: t, selected: t === task }, t)));
    if (!task) {
      emptyNote.hidden = false;
      emptyNote.textContent = "No task of this workflow has numbers, strings or booleans among its outputs.";
      return;
    }
    append(clear(zips), table.file_columns.map((c) =>
      h("button", { type: "button", class: "column-zip", dataset: { key: c.key }, title: `Download the files of output ${c.key} of every run as one zip`, onclick: () => downloadZip(name, { task, key: c.key }, `${name}-${task}-${c.key}.zip`, { notify }) }, `\u2B73 ${c.key} (zip)`)));
    const numeric = numericColumns();
    fill(histSelect, numeric, numeric.length ? numeric[0].index : null);
    fill(xSelect, numeric, numeric.length ? numeric[0].index : null);
    fill(ySelect, numeric, numeric.length > 1 ? numeric[1].index : numeric.length ? numeric[0].index : null);
    charts.hidden = !numeric.length;
    update();
  }

  function update() {
    let keep;
    try {
      keep = parseFilter(filterInput.value, table.columns);
      filterError.textContent = "";
      filterInput.removeAttribute("aria-invalid");
    } catch (exc) {
      filterError.textContent = exc.message;
      filterInput.setAttribute("aria-invalid", "true");
      return;
    }
    const passing = table.rows.filter(keep);
    rows = sortIndex === null ? passing : sortRows(passing, sortIndex, descending);
    count.textContent = `${rows.length} of ${table.rows.length} runs`;
    drawHead();
    drawRows();
    drawCharts();
  }

  function drawHead() {
    const heading = (label, index, type) => {
      const sorted = sortIndex === index;
      return h("th", { "aria-sort": sorted ? (descending ? "descending" : "ascending") : "none", class: NUMERIC.has(type) ? "num" : "" },
        h("button", { type: "button", class: "link sort", dataset: { column: String(index) }, title: `Sort by ${label}`, onclick: () => sortBy(index) },
          label, h("span", { class: "sort-mark", "aria-hidden": "true" }, sorted ? (descending ? " \u25BE" : " \u25B4") : "")),
        type ? h("span", { class: "column-type muted" }, ` ${type}`) : null);
    };
    append(clear(head), h("tr", {}, heading("run", -1, null), table.columns.map((c, i) => heading(c.key, i, c.type))));
  }

  function drawRows() {
    const shown = rows.slice(0, SHOWN_ROWS);
    append(clear(body), shown.map((row) =>
      h("tr", { dataset: { run: String(row.run_id) } },
        h("td", { class: "run-name" }, h("a", { href: `#/jobs/${row.serial}` }, row.run)),
        row.values.map((v, i) => h("td", { class: NUMERIC.has(table.columns[i].type) ? "num" : "" }, v === null ? "" : String(v))))));
    more.hidden = rows.length <= SHOWN_ROWS;
    more.textContent = `The first ${SHOWN_ROWS} of ${rows.length} rows are shown; the filter, the charts and Export CSV use them all.`;
    emptyNote.hidden = rows.length > 0;
    emptyNote.textContent = table.rows.length ? "No run passes the filter." : `No run has a Done job of ${table.task} yet.`;
  }

  function sortBy(index) {
    descending = sortIndex === index ? !descending : false;
    sortIndex = index;
    update();
  }

  function column(index) {
    const xs = [];
    for (const row of rows) if (typeof row.values[index] === "number") xs.push(row.values[index]);
    return xs;
  }

  function drawCharts() {
    for (const remove of removeCharts) remove();
    removeCharts = [];
    clear(histBox);
    clear(scatterBox);
    if (charts.hidden || !histSelect.value) return;
    const hist = Number(histSelect.value);
    const values = column(hist);
    if (values.length) removeCharts.push(histogram(histBox, values, table.columns[hist].key));
    else histBox.append(h("p", { class: "muted" }, "No values to draw."));
    const [x, y] = [Number(xSelect.value), Number(ySelect.value)];
    const pairs = rows.filter((r) => typeof r.values[x] === "number" && typeof r.values[y] === "number");
    if (pairs.length) {
      removeCharts.push(scatter(scatterBox, pairs.map((r) => r.values[x]), pairs.map((r) => r.values[y]), table.columns[x].key, table.columns[y].key));
    } else scatterBox.append(h("p", { class: "muted" }, "No pairs of values to draw."));
  }

  function exportCsv() {
    const blob = new Blob([toCsv(table.columns, rows)], { type: "text/csv;charset=utf-8" });
    saveBlob(blob, `${name}-${table.task}.csv`);
  }

  const task = query.get("task");
  api("GET", `/api/workflows/${enc(name)}/study-table${task ? `?task=${enc(task)}` : ""}`)
    .then((answer) => {
      if (!alive) return;
      table = answer;
      show();
    })
    .catch((exc) => {
      notify(exc.message, "error");
      emptyNote.hidden = false;
      emptyNote.textContent = exc.message;
    });

  return () => {
    alive = false;
    clearTimeout(filterTimer);
    for (const remove of removeCharts) remove();
  };
}
