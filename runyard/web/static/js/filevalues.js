// File values shown as what they hold: a CSV as a table of its first rows, a Bitmap (a PNG,
// JPEG, GIF or WebP picture) as the picture. Other files (Mesh, Contours, HTMLDocument,
// ForeignFile) stay downloadable links: an HTML document is never shown in the page.

import { enc, h } from "./dom.js";

export const PREVIEW_BYTES = 64 * 1024; // of a CSV file, read for its preview
export const PREVIEW_ROWS = 20;
const PICTURE = /\.(png|jpe?g|gif|webp)$/i;

function fileUrl(value) {
  return `/api/files/${enc(value.file_id)}`;
}

function isStored(value) {
  return Boolean(value && typeof value === "object" && typeof value.file_id === "string");
}

export function isCsv(value) {
  return isStored(value) && (value.type === "CSV" || (value.type === "ForeignFile" && /\.csv$/i.test(value.filename || "")));
}

export function isBitmap(value) {
  return isStored(value) && value.type === "Bitmap" && PICTURE.test(value.filename || "");
}

// The rows of CSV ``text`` (RFC 4180: quoted fields may hold the delimiter, quotes and line
// breaks); the delimiter is the one of , ; and tab found most often in the first line.
export function parseCsv(text) {
  const first = text.split("\n", 1)[0];
  const delimiter = [",", ";", "\t"].reduce((best, d) => (first.split(d).length > first.split(best).length ? d : best), ",");
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === delimiter) {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function table(rows, more) {
  const [head, ...body] = rows;
  const width = Math.max(...rows.map((r) => r.length));
  const shown = body.slice(0, PREVIEW_ROWS);
  const cut = more || body.length > shown.length;
  return [
    h("div", { class: "csv-scroll" },
      h("table", { class: "csv-preview" },
        h("thead", {}, h("tr", {}, Array.from({ length: width }, (_, n) => h("th", {}, head[n] ?? "")))),
        h("tbody", {}, shown.map((r) => h("tr", {}, Array.from({ length: width }, (_, n) => h("td", {}, r[n] ?? ""))))))),
    h("p", { class: "muted csv-note" }, cut ? `the first ${shown.length} rows` : `${shown.length} row${shown.length === 1 ? "" : "s"}`),
  ];
}

// The first rows of stored CSV file ``value`` ({rows, more}); stored files never change, so
// each is read once (a job's panel is drawn again every second while the job runs).
const previews = new Map();

function readRows(value) {
  if (!previews.has(value.file_id)) {
    if (previews.size >= 50) previews.delete(previews.keys().next().value);
    const reading = (async () => {
      const response = await fetch(fileUrl(value), { credentials: "same-origin", headers: { Range: `bytes=0-${PREVIEW_BYTES - 1}` } });
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const more = response.status === 206 && bytes.length >= PREVIEW_BYTES;
      const slice = more ? bytes.slice(0, bytes.lastIndexOf(10) + 1) : bytes; // whole lines only
      const text = new TextDecoder().decode(slice).replace(/^\uFEFF/, "");
      return { rows: parseCsv(text).filter((r) => r.some((c) => c !== "")), more };
    })();
    reading.catch(() => previews.delete(value.file_id));
    previews.set(value.file_id, reading);
  }
  return previews.get(value.file_id);
}

// A CSV value: its download link, then a table of its first rows.
export function csvValue(value, link) {
  const note = h("p", { class: "muted csv-note" }, "reading the table\u2026");
  const box = h("div", { class: "csv-value" }, link, note);
  readRows(value).then(
    ({ rows, more }) => note.replaceWith(...(rows.length ? table(rows, more) : [h("p", { class: "muted csv-note" }, "an empty table")])),
    (exc) => (note.textContent = `The table cannot be shown (${exc.message}); download it.`),
  );
  return box;
}

// A Bitmap value: its download link and the picture.
export function bitmapValue(value, link) {
  const picture = h("img", { class: "bitmap-preview", src: fileUrl(value), alt: value.filename || "picture", loading: "lazy" });
  return h("div", { class: "bitmap-value" }, link, picture);
}
