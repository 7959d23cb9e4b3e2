// Images side by side: the Image outputs of two or more Done jobs (cells picked in the runs
// table), each cut by the server as a PNG (GET /api/images/slice) at the same slice index,
// through one window and level. The slider, or the mouse wheel over any of them, moves
// through the slices of all of them at once.

import { api } from "./api.js";
import { append, clear, debounce, h } from "./dom.js";
import { imageName, imageQuery, isImage, round, viewerControls, viewerHead } from "./image.js";

const AXIS = { x: 0, y: 1, z: 2 };

// The first Image output of each of the jobs ``serials`` (the Done ones), with its info:
// [{serial, key, value, info, label}].
async function imagesOf(serials) {
  const jobs = await Promise.all(serials.map((serial) => api("GET", `/api/jobs/${serial}`)));
  const found = [];
  for (const job of jobs) {
    const entry = Object.entries(job.outputs || {}).find(([, v]) => isImage(v));
    if (job.state !== "Done" || !entry) continue;
    const [key, value] = entry;
    found.push({ serial: job.serial, key, value, label: `${(job.run && job.run.name) || `job ${job.serial}`}: ${key}` });
  }
  const infos = await Promise.all(found.map((f) => api("GET", `/api/images/info?${new URLSearchParams(imageQuery(f.value))}`)));
  return found.map((f, i) => ({ ...f, info: infos[i] }));
}

// Opens the comparison of the images of the jobs ``serials`` in a dialog.
export async function openCompare(serials, { notify }) {
  let images;
  try {
    images = await imagesOf(serials);
  } catch (exc) {
    notify(exc.message, "error");
    return;
  }
  if (images.length < 2) {
    notify(`Compare needs two or more Done jobs with an image; ${images.length} of the ${serials.length} selected ${images.length === 1 ? "has" : "have"} one`, "error");
    return;
  }
  const first = images[0].info;
  const axis = h("select", { "aria-label": "Axis", class: "axis" }, ["z", "y", "x"].map((a) => h("option", { value: a }, a)));
  const slider = h("input", { type: "range", min: 0, "aria-label": "Slice", class: "slice" });
  const sliceLabel = h("span", { class: "slice-label" });
  const windowInput = h("input", { type: "number", step: "any", "aria-label": "Window", class: "window", value: round(first.window) });
  const levelInput = h("input", { type: "number", step: "any", "aria-label": "Level", class: "level", value: round(first.level) });
  const pictures = images.map((image) => h("img", { class: "slice-image", alt: `${image.label}: slice`, dataset: { serial: String(image.serial) } }));
  const grid = h(
    "div",
    { class: "compare-grid" },
    images.map((image, i) =>
      h("figure", { class: "compare-item" }, h("div", { class: "slice-box" }, pictures[i]), h("figcaption", { title: imageName(image.value) }, image.label, h("span", { class: "muted" }, ` ${image.info.size.join("\u00D7")}`))),
    ),
  );
  const dialog = h("dialog", { class: "image-dialog compare-dialog" });

  // The slices all of them have across the axis (the smallest count).
  const count = () => Math.min(...images.map((image) => image.info.size[AXIS[axis.value]]));

  function setAxis() {
    slider.max = String(count() - 1);
    slider.value = String(Math.floor(count() / 2));
  }

  const draw = debounce(() => {
    sliceLabel.textContent = `${axis.value} = ${slider.value} (0\u2013${count() - 1})`;
    const shown = { axis: axis.value, index: slider.value, window: windowInput.value || round(first.window), level: levelInput.value || round(first.level) };
    images.forEach((image, i) => {
      pictures[i].src = `/api/images/slice?${new URLSearchParams({ ...imageQuery(image.value), ...shown })}`;
    });
  }, 60);

  function step(by) {
    const next = Math.min(Number(slider.max), Math.max(0, Number(slider.value) + by));
    if (String(next) === slider.value) return;
    slider.value = String(next);
    draw();
  }

  grid.addEventListener(
    "wheel",
    (event) => {
      event.preventDefault();
      step(event.deltaY > 0 ? 1 : -1);
    },
    { passive: false },
  );
  axis.addEventListener("change", () => {
    setAxis();
    draw();
  });
  for (const input of [slider, windowInput, levelInput]) input.addEventListener("input", draw);
  for (const picture of pictures) picture.addEventListener("error", () => notify(`A slice of ${picture.alt} could not be drawn`, "error"), { once: true });

  append(
    clear(dialog),
    viewerHead(dialog, `Compare ${images.length} images`),
    viewerControls({ axis, slider, sliceLabel, windowInput, levelInput }),
    grid,
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  setAxis();
  draw();
  dialog.showModal();
}
