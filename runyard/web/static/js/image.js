// Image preview: a slice viewer for Image values. The server cuts each slice from the
// memory-mapped pixels and sends it as a PNG (GET /api/images/slice); the page chooses the
// axis, the slice, the window and level, and a segmentation to lay over it. compare.js shows
// several images side by side with the same parts.

import { api } from "./api.js";
import { append, debounce, h } from "./dom.js";

export function isImage(value) {
  return Boolean(value && typeof value === "object" && value.type === "Image" && (value.file_id || value.virtualpath));
}

// What the viewer's title calls an image: its User Data path, else its file name.
export function imageName(value) {
  if (value.virtualpath) return value.virtualpath.endsWith("/") && value.filename ? value.virtualpath + value.filename : value.virtualpath;
  return value.filename || "image";
}

export function imageQuery(value) {
  if (value.source === "userdata" || value.virtualpath) {
    const path = value.virtualpath.endsWith("/") ? value.virtualpath + value.filename : value.virtualpath;
    return { path };
  }
  return { file_id: value.file_id, raw_file_id: value.raw_file_id };
}

function sameSize(a, b) {
  return Array.isArray(a.size) && Array.isArray(b.size) && a.size.join("x") === b.size.join("x");
}

function looksLikeSegmentation(key, value) {
  return value.data_type === "uint8" || /seg|mask|label/i.test(`${key} ${value.filename || ""}`);
}

// Opens the viewer of ``images[key]`` in a dialog; ``images``: {key: Image value} of a job.
export async function openImageViewer(key, images, { notify }) {
  const value = images[key];
  const query = imageQuery(value);
  let info;
  try {
    info = await api("GET", `/api/images/info?${new URLSearchParams(query)}`);
  } catch (exc) {
    notify(exc.message, "error");
    return;
  }
  const overlays = Object.entries(images).filter(([k, v]) => k !== key && sameSize(v, { size: info.size }));
  const axis = h("select", { "aria-label": "Axis", class: "axis" }, ["z", "y", "x"].map((a) => h("option", { value: a }, a)));
  const slider = h("input", { type: "range", min: 0, "aria-label": "Slice", class: "slice" });
  const sliceLabel = h("span", { class: "slice-label" });
  const windowInput = h("input", { type: "number", step: "any", "aria-label": "Window", class: "window", value: round(info.window) });
  const levelInput = h("input", { type: "number", step: "any", "aria-label": "Level", class: "level", value: round(info.level) });
  const overlaySelect = h(
    "select",
    { "aria-label": "Overlay", class: "overlay-select" },
    h("option", { value: "" }, "no overlay"),
    overlays.map(([k, v]) => h("option", { value: k, selected: looksLikeSegmentation(k, v) && overlays.length === 1 }, k)),
  );
  const picture = h("img", { class: "slice-image", alt: `${key}: slice` });
  const overlay = h("img", { class: "slice-overlay", alt: "", hidden: true });
  const dialog = h("dialog", { class: "image-dialog" });
  const AXIS = { x: 0, y: 1, z: 2 };

  function setAxis() {
    const count = info.size[AXIS[axis.value]];
    slider.max = String(count - 1);
    slider.value = String(Math.floor(count / 2));
  }

  const draw = debounce(() => {
    const params = { ...query, axis: axis.value, index: slider.value };
    sliceLabel.textContent = `${axis.value} = ${slider.value} (0\u2013${info.size[AXIS[axis.value]] - 1})`;
    const grey = new URLSearchParams({ ...params, window: windowInput.value || round(info.window), level: levelInput.value || round(info.level) });
    picture.src = `/api/images/slice?${grey}`;
    const other = overlaySelect.value && images[overlaySelect.value];
    overlay.hidden = !other;
    if (other) overlay.src = `/api/images/slice?${new URLSearchParams({ ...imageQuery(other), axis: axis.value, index: slider.value, overlay: "true" })}`;
  }, 60);

  picture.addEventListener("error", () => notify(`The slice of ${key} could not be drawn`, "error"));
  axis.addEventListener("change", () => {
    setAxis();
    draw();
  });
  for (const input of [slider, windowInput, levelInput, overlaySelect]) input.addEventListener("input", draw);

  append(
    dialog,
    viewerHead(dialog, key === value.filename ? imageName(value) : `${key}: ${imageName(value)}`),
    h("p", { class: "muted" }, `${info.size.join(" \u00D7 ")} ${info.data_type}, spacing ${info.spacing.map(round).join(" \u00D7 ")} ${info.unit}`),
    viewerControls({ axis, slider, sliceLabel, windowInput, levelInput }, overlays.length ? h("label", {}, "Overlay ", overlaySelect) : null),
    h("div", { class: "slice-box" }, picture, overlay),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  setAxis();
  draw();
  dialog.showModal();
}

// The title of a viewer dialog with its close button.
export function viewerHead(dialog, title) {
  return h("div", { class: "job-head" }, h("h2", {}, title), h("button", { type: "button", class: "close link", title: "Close", onclick: () => dialog.close() }, "\u00D7"));
}

// A viewer's toolbar: axis, slice, window and level (and ``more``, if given).
export function viewerControls({ axis, slider, sliceLabel, windowInput, levelInput }, more = null) {
  return h(
    "div",
    { class: "toolbar viewer-controls" },
    h("label", {}, "Axis ", axis),
    h("label", { class: "grow" }, "Slice ", slider, " ", sliceLabel),
    h("label", {}, "Window ", windowInput),
    h("label", {}, "Level ", levelInput),
    more,
  );
}

export function round(n) {
  return Number(Number(n).toPrecision(6));
}

export function imageButton(key, images, notify) {
  return h("button", { type: "button", class: "view-image", onclick: () => openImageViewer(key, images, { notify }) }, "View slices");
}

