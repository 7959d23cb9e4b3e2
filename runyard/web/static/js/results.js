// A job's results in the runs table. A Done job's cell shows a thumbnail of its image
// (GET /api/jobs/{serial}/thumbnail, rendered once on the server and cached) and its first
// number; a double click opens the result: the image in the slice viewer (image.js), a CSV
// output as a sortable table (GET /api/jobs/{serial}/table), else the job panel.

import { api } from "./api.js";
import { append, clear, enc, h } from "./dom.js";
import { isImage, openImageViewer } from "./image.js";

// A number as a cell shows it: integers whole, others to 4 significant digits (with an
// exponent when very large or very small).
export function formatNumber(n) {
  if (Number.isInteger(n)) return n.toLocaleString("en-US");
  const size = Math.abs(n);
  if (size !== 0 && (size >= 1e6 || size < 1e-3)) return n.toExponential(3);
  return Number(n.toPrecision(4)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

// The title lines of a Done job's results: "mean = 2.5", "image: scan", "table: areas".
export function resultLines(job) {
  return [
    ...Object.entries(job.numbers || {}).map(([key, n]) => `${key} = ${formatNumber(n)}`),
    job.image ? `image: ${job.image} (double click: slices)` : "",
    ...(job.tables || []).map((key) => `table: ${key} (double click opens it)`),
  ].filter(Boolean);
}

// What a Done job's cell shows besides its icon: a thumbnail of its image (lazily, drawn
// only in the rows in view), its first number; null when it has neither.
export function resultNodes(job) {
  const numbers = Object.entries(job.numbers || {});
  if (!job.image && !numbers.length) return null;
  const thumb = job.image
    ? h("img", { class: "thumb", loading: "lazy", alt: `${job.image}: middle slice`, src: `/api/jobs/${job.serial}/thumbnail?key=${enc(job.image)}` })
    : null;
  if (thumb) thumb.addEventListener("error", () => thumb.remove(), { once: true });
  const [key, n] = numbers[0] || [];
  return [thumb, numbers.length ? h("span", { class: "number", title: key }, formatNumber(n)) : null];
}

// Opens what a double click on the cell of job ``serial`` shows; ``openJob(serial)`` opens
// the job panel (what a job with no image or table shows).
export async function openResult(serial, { notify, openJob }) {
  let job;
  try {
    job = await api("GET", `/api/jobs/${serial}`);
  } catch (exc) {
    notify(exc.message, "error");
    return;
  }
  const outputs = job.outputs || {};
  const images = Object.fromEntries(Object.entries(outputs).filter(([, v]) => isImage(v)));
  const table = Object.keys(outputs).find((k) => outputs[k] && outputs[k].type === "CSV");
  if (job.state === "Done" && Object.keys(images).length) openImageViewer(Object.keys(images)[0], images, { notify });
  else if (job.state === "Done" && table) openTable(serial, table, { notify });
  else openJob(serial);
}

// The CSV output ``key`` of job ``serial`` as a table in a dialog; a click on a heading
// sorts by that column (again: the other way), numbers by their value.
export async function openTable(serial, key, { notify }) {
  let table;
  try {
    table = await api("GET", `/api/jobs/${serial}/table?key=${enc(key)}`);
  } catch (exc) {
    notify(exc.message, "error");
    return;
  }
  const sort = { column: -1, descending: false };
  const body = h("tbody");
  const headings = table.columns.map((name, i) =>
    h("th", { class: table.numeric[i] ? "num" : "", "aria-sort": "none", dataset: { column: String(i) } }, h("button", { type: "button", class: "link sort" }, name)),
  );
  const dialog = h(
    "dialog",
    { class: "table-dialog" },
    h("div", { class: "job-head" }, h("h2", {}, `${key} of job ${serial}`), h("button", { type: "button", class: "close link", title: "Close", onclick: () => dialog.close() }, "\u00D7")),
    h("p", { class: "muted" }, `${table.rows.length.toLocaleString("en-US")} rows${table.truncated ? " (the first ones only)" : ""}`),
    h("div", { class: "table-box" }, h("table", { class: "csv-table" }, h("thead", {}, h("tr", {}, headings)), body)),
  );

  function fill() {
    const rows = [...table.rows];
    const c = sort.column;
    if (c >= 0) rows.sort((a, b) => isEmpty(a[c]) - isEmpty(b[c]) || compareCells(a[c], b[c]) * (sort.descending ? -1 : 1));
    append(
      clear(body),
      rows.map((row) => h("tr", {}, table.columns.map((_, i) => cellOf(row[i], table.numeric[i])))),
    );
    headings.forEach((th, i) => th.setAttribute("aria-sort", i === sort.column ? (sort.descending ? "descending" : "ascending") : "none"));
  }

  dialog.querySelector("thead").addEventListener("click", (event) => {
    const th = event.target.closest("th");
    if (!th) return;
    const column = Number(th.dataset.column);
    sort.descending = sort.column === column ? !sort.descending : false;
    sort.column = column;
    fill();
  });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  fill();
  dialog.showModal();
}

function cellOf(value, numeric) {
  if (typeof value === "number") return h("td", { class: "num" }, formatNumber(value));
  return h("td", { class: numeric ? "num" : "" }, value ?? "");
}

// Empty cells come last either way.
const isEmpty = (v) => Number(v === undefined || v === null || v === "");

// Numbers before text, numbers by value, text as a person reads it ("a2" before "a10").
function compareCells(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}
