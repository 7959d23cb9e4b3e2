// Downloads made in the page: a file the page built (a CSV of the study table) and jobs'
// output files as one zip: a job's (GET /api/jobs/SERIAL/outputs.zip, a plain link), a
// column's or a selection's (POST /api/workflows/NAME/outputs.zip, fetched then saved).

import { api } from "./api.js";
import { enc, h } from "./dom.js";

// Save ``blob`` as ``filename`` (the browser's download).
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// Whether an output value points at files of the file store (a file, an image, lists of them).
export function hasFiles(value) {
  if (Array.isArray(value)) return value.some(hasFiles);
  return Boolean(value && typeof value === "object" && value.source === "filestore" && typeof value.file_id === "string");
}

// The link that downloads a job's output files as one zip; null when it has none.
export function outputsZipLink(serial, outputs) {
  if (!Object.values(outputs || {}).some(hasFiles)) return null;
  return h("p", { class: "outputs-zip" },
    h("a", { href: `/api/jobs/${enc(serial)}/outputs.zip`, class: "button download-outputs", download: `job-${serial}-outputs.zip` }, "Download outputs (zip)"));
}

// Download the output files of a column ({task, key}) or of jobs ({serials}) of workflow
// ``name`` as one zip; a refusal (nothing to download, not yours to read) is told.
export async function downloadZip(name, selection, filename, { notify }) {
  try {
    const blob = await api("POST", `/api/workflows/${enc(name)}/outputs.zip`, { json: selection, blob: true });
    saveBlob(blob, filename);
  } catch (exc) {
    notify(exc.message, "error");
  }
}
