// Forms generated from a task type's interface: one field per parameter, the input that fits
// its type and constraints (numbers with minimum/maximum/multipleOf, a list for enum, date and
// time pickers for format, a checkbox for Bool, a User Data picker for files, folders and
// images, JSON for the rest), and the server's message for each field shown beside it.

import { append, clear, h } from "./dom.js";
import { pickUserData, userDataValue } from "./userdata.js";

const FORMAT_INPUTS = { date: "date", "date-time": "datetime-local", time: "time", email: "email", uri: "url" };
const PICKED = new Set(["ForeignFile", "Folder", "Image"]);

function describe(param) {
  const bits = [param.type];
  if (param.minimum !== undefined) bits.push(`\u2265 ${param.minimum}`);
  if (param.maximum !== undefined) bits.push(`\u2264 ${param.maximum}`);
  if (param.multipleOf !== undefined) bits.push(`multiple of ${param.multipleOf}`);
  if (param.format) bits.push(param.format);
  return bits.join(", ");
}

function field(param, value, notify, onPick) {
  const id = `f-${Math.random().toString(36).slice(2)}`;
  const type = param.type;
  let control;
  let read;
  if (Array.isArray(param.enum)) {
    control = h("select", { id }, h("option", { value: "" }, "\u2014 choose \u2014"), param.enum.map((v, i) => h("option", { value: String(i), selected: v === value }, String(v))));
    read = () => (control.value === "" ? undefined : param.enum[Number(control.value)]);
  } else if (type === "Int" || type === "Float") {
    const step = param.multipleOf !== undefined ? param.multipleOf : type === "Int" ? 1 : "any";
    control = h("input", { id, type: "number", step, min: param.minimum, max: param.maximum, value: value ?? "" });
    read = () => {
      if (control.value.trim() === "") return control.validity.badInput ? control.value : undefined;
      const n = Number(control.value);
      return Number.isNaN(n) ? control.value : n;
    };
  } else if (type === "Bool") {
    control = h("input", { id, type: "checkbox" });
    control.checked = Boolean(value);
    read = () => control.checked;
  } else if (type === "String") {
    const kind = FORMAT_INPUTS[param.format] || "text";
    control = h("input", { id, type: kind, value: value ?? "" });
    read = () => {
      if (control.value === "") return undefined;
      if (kind === "datetime-local") return control.value.length === 16 ? `${control.value}:00` : control.value;
      return control.value;
    };
  } else if (PICKED.has(type)) {
    let picked = value && typeof value === "object" ? value : null;
    const shown = h("input", { id, readonly: true, class: "picked", value: picked ? picked.virtualpath + (picked.filename && picked.virtualpath.endsWith("/") ? picked.filename : "") : "", placeholder: "nothing chosen" });
    const choose = h("button", {
      type: "button",
      class: "browse",
      onclick: async () => {
        const pick = await pickUserData({ notify, folders: type === "Folder", files: type !== "Folder", title: `Choose a ${type === "Folder" ? "folder" : "file"} for ${param.key}` });
        if (!pick) return;
        picked = userDataValue(type, pick);
        shown.value = pick.path;
        if (onPick) onPick(param.key, picked, pick);
      },
    }, "Browse User Data\u2026");
    control = h("span", { class: "picker" }, shown, choose);
    read = () => picked || undefined;
  } else {
    control = h("textarea", { id, rows: 3, spellcheck: "false" }, value === undefined || value === null ? "" : JSON.stringify(value));
    read = () => {
      if (!control.value.trim()) return undefined;
      try {
        return JSON.parse(control.value);
      } catch {
        throw new Error(`${param.key}: not valid JSON`);
      }
    };
  }
  const error = h("span", { class: "field-error", role: "alert" });
  const row = h(
    "div",
    { class: "field", "data-field": param.key },
    h("label", { for: id }, param.key, h("span", { class: "hint" }, ` ${describe(param)}`)),
    control,
    param.description ? h("span", { class: "muted description" }, param.description) : null,
    error,
  );
  return { row, read, error };
}

// A form of ``params``: {element, values() -> {key: value} (left-out keys are empty),
// missing() -> {key: message} of the keys left empty, showErrors({key: message}, message)}.
// ``onPick(key, value, pick)`` hears of each file, folder or image chosen in User Data.
export function parameterForm(params, { values = {}, notify, onPick } = {}) {
  const fields = new Map(params.map((p) => [p.key, field(p, values[p.key], notify, onPick)]));
  const general = h("p", { class: "form-error", role: "alert" });
  const element = h("div", { class: "parameter-form" }, [...fields.values()].map((f) => f.row), general);
  return {
    element,
    values() {
      const out = {};
      for (const [key, f] of fields) {
        const value = f.read();
        if (value !== undefined) out[key] = value;
      }
      return out;
    },
    missing() {
      const given = this.values();
      return Object.fromEntries(params.filter((p) => given[p.key] === undefined).map((p) => [p.key, "a value is required"]));
    },
    showErrors(errors = {}, message = "") {
      for (const [key, f] of fields) {
        f.error.textContent = errors[key] || "";
        f.row.classList.toggle("invalid", Boolean(errors[key]));
      }
      const other = Object.entries(errors).filter(([key]) => !fields.has(key));
      append(clear(general), message && !Object.keys(errors).length ? message : "", other.map(([k, m]) => `${k}: ${m}. `));
    },
  };
}
