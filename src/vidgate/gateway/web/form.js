// The playground's parameter fields: only what the chosen model takes, each with its label, hint and
// error slot, and never a combination the API refuses (an exact size XOR a resolution and aspect ratio).

import { upload } from "./api.js";
import { ACCEPT, InputError, mb, prepare, preview } from "./media.js";
import { h } from "./ui.js";

let uid = 0;

/** A labelled field with a hint and an error slot the control is described by. */
export function field(label, control, { hint, param, testid } = {}) {
  const id = control.id || `f-${++uid}`;
  control.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  const error = h("p", { class: "field-error", id: `${id}-error`, "data-testid": testid ? `${testid}-error` : null, hidden: true });
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, error.id].filter(Boolean).join(" "));
  const el = h("div", { class: "field", "data-field": param || "" }, h("label", { class: "label", for: id }, label), control, hintEl, error);
  el.control = control;
  el.error = error;
  return el;
}

function select(param, testid, options, selected, { allowDefault = false } = {}) {
  return h(
    "select",
    { class: "input", "data-testid": testid, "data-param": param },
    allowDefault ? h("option", { value: "" }, "Model default") : null,
    options.map((o) => h("option", { value: String(o), selected: String(o) === String(selected ?? "") }, String(o))),
  );
}

const KINDS = ["image", "video", "audio"];
const ROLE_LABELS = {
  first_frame: "First frame",
  last_frame: "Last frame",
  reference: "Reference",
  source: "Source video",
  mask: "Mask",
};

/** The reference inputs a model takes: ``[{kind, role, required, multiple}]``, from its listing. */
export function referenceInputs(model) {
  const caps = model.capabilities;
  const types = model.input_types || [];
  const roles = {
    image: caps.input_reference_roles || [],
    video: caps.video_reference_roles || (types.includes("video") ? ["source"] : []),
    audio: caps.audio_reference_roles || (types.includes("audio") ? ["reference"] : []),
  };
  const required = caps.required_reference_roles || [];
  return KINDS.flatMap((kind) =>
    roles[kind].map((role) => ({ kind, role, required: required.includes(role), multiple: role === "reference" && kind === "image" })),
  );
}

/**
 * The fields for ``model``, filled from ``saved`` (what the form held last), calling ``changed()`` on
 * every edit. ``values()`` is the request's parameters; ``state()`` what to remember.
 */
export function paramFields(model, saved, changed) {
  const caps = model.capabilities;
  const v = saved || {};
  const rows = [];
  const read = {};
  const byParam = {};
  const add = (param, row, reader) => {
    rows.push(row);
    byParam[param] = row;
    if (reader) read[param] = reader;
    return row;
  };

  let duration = null;
  if (caps.durations.length) {
    const initial = caps.durations.includes(Number(v.duration)) ? v.duration : caps.durations[0];
    duration = select("duration", "duration", caps.durations, initial);
    add("duration", field("Duration (seconds)", duration, { param: "duration", testid: "duration" }), () => Number(duration.value));
  }

  // Frame: a resolution and aspect ratio, or an exact size; the API refuses both at once.
  const hasPreset = caps.resolutions.length > 0 || caps.aspect_ratios.length > 0;
  const hasSize = Boolean((caps.sizes && caps.sizes.length) || caps.size_range);
  let mode = hasPreset && hasSize ? (v.frame === "size" ? "size" : "preset") : hasSize ? "size" : "preset";
  const presetRows = [];
  const sizeRows = [];
  let resolution = null;
  if (caps.resolutions.length) {
    resolution = select("resolution", "resolution", caps.resolutions, v.resolution, { allowDefault: true });
    presetRows.push(add("resolution", field("Resolution", resolution, { param: "resolution", testid: "resolution" }), () => (mode === "preset" && resolution.value) || undefined));
  }
  if (caps.aspect_ratios.length) {
    const el = select("aspect_ratio", "aspect-ratio", caps.aspect_ratios, v.aspect_ratio, { allowDefault: true });
    presetRows.push(add("aspect_ratio", field("Aspect ratio", el, { param: "aspect_ratio", testid: "aspect-ratio" }), () => (mode === "preset" && el.value) || undefined));
  }
  if (caps.sizes && caps.sizes.length) {
    const el = select("size", "size", caps.sizes, v.size, { allowDefault: !hasPreset });
    sizeRows.push(add("size", field("Size", el, { param: "size", testid: "size" }), () => (mode === "size" && el.value) || undefined));
  } else if (caps.size_range) {
    const r = caps.size_range;
    const el = h("input", { class: "input", placeholder: "e.g. 640x360", value: v.size || "", autocomplete: "off", inputmode: "text", "data-testid": "size", "data-param": "size" });
    const pixels = r.max_pixels ? `, at most ${(r.max_pixels / 1e6).toFixed(2)} MP` : "";
    sizeRows.push(add("size", field("Exact size", el, { param: "size", testid: "size", hint: `Width x height in even pixels, ${r.min_side}–${r.max_side} per side${pixels}.` }), () => (mode === "size" && el.value.trim()) || undefined));
  }
  if (hasPreset && hasSize) {
    const radio = (value, label) =>
      h("label", { class: "check" }, h("input", { type: "radio", name: `frame-${uid}`, value, checked: mode === value, "data-testid": `frame-${value}`, onchange: () => setMode(value) }), label);
    rows.splice(
      duration ? 1 : 0,
      0,
      h("fieldset", { class: "field frame-mode", "data-testid": "frame-mode" }, h("legend", { class: "label" }, "Frame"), h("div", { class: "radios" }, radio("preset", "Resolution and aspect ratio"), radio("size", "Exact size"))),
    );
  }
  const setMode = (next) => {
    mode = next;
    for (const row of presetRows) row.hidden = mode !== "preset";
    for (const row of sizeRows) row.hidden = mode !== "size";
    changed();
  };
  for (const row of presetRows) row.hidden = mode !== "preset";
  for (const row of sizeRows) row.hidden = mode !== "size";

  // Durations a resolution is made at: only those are offered.
  if (duration && resolution && caps.durations_by_resolution) {
    const limit = () => {
      const allowed = caps.durations_by_resolution[resolution.value];
      for (const opt of duration.options) opt.disabled = Boolean(allowed) && !allowed.includes(Number(opt.value));
      if (duration.selectedOptions[0]?.disabled) duration.value = [...duration.options].find((o) => !o.disabled)?.value ?? duration.value;
    };
    resolution.addEventListener("change", limit);
    limit();
  }

  const [lo, hi] = caps.sample_count || [1, 1];
  if (hi > 1) {
    const el = h("input", { class: "input", type: "number", min: lo, max: hi, step: 1, value: v.sample_count || lo, "data-testid": "sample-count", "data-param": "sample_count" });
    add("sample_count", field("Samples", el, { param: "sample_count", testid: "sample-count", hint: `${lo}–${hi} videos from one request` }), () => (Number(el.value) > 1 ? Number(el.value) : undefined));
  }
  if (caps.seed) {
    const el = h("input", { class: "input", type: "number", min: 0, step: 1, placeholder: "random", value: v.seed ?? "", "data-testid": "seed", "data-param": "seed" });
    add("seed", field("Seed", el, { param: "seed", testid: "seed" }), () => (el.value === "" ? undefined : Number(el.value)));
  }
  if (caps.negative_prompt) {
    const el = h("input", { class: "input", placeholder: "what to avoid", value: v.negative_prompt || "", "data-testid": "negative-prompt", "data-param": "negative_prompt" });
    add("negative_prompt", field("Negative prompt", el, { param: "negative_prompt", testid: "negative-prompt" }), () => el.value.trim() || undefined);
  }
  if (caps.audio) {
    const always = Boolean(caps.audio_always);
    const el = h("input", { id: `p-audio-${++uid}`, type: "checkbox", checked: always || Boolean(v.generate_audio), disabled: always, "data-testid": "audio", "data-param": "generate_audio" });
    const row = h("div", { class: "field field-check", "data-field": "generate_audio" }, el, h("label", { for: el.id }, always ? "Audio (always made by this model)" : "Generate audio"));
    add("generate_audio", row, () => (el.checked && !always ? true : undefined));
  }

  // Input references: uploaded when chosen, sent by file id.
  const refs = [];
  let operation = null;
  for (const input of referenceInputs(model)) {
    const ref = referenceField(input, changed, (v.refs || {})[`${input.kind}:${input.role}`]);
    refs.push(ref);
    rows.push(ref.row);
    if (input.kind === "video" && input.role === "source" && caps.operations && caps.operations.length) {
      const ops = caps.operations.filter((o) => o !== "generate");
      if (ops.length) {
        operation = select("operation", "operation", ops, v.operation);
        const row = field("With the source video", operation, { param: "operation", testid: "operation", hint: "extend continues it; edit re-makes it under the prompt" });
        row.hidden = !ref.files.length;
        ref.onFiles = () => (row.hidden = !ref.files.length);
        add("operation", row, () => (ref.files.length ? operation.value : undefined));
      }
    }
  }

  for (const row of rows) row.addEventListener?.("input", changed);
  for (const row of rows) row.addEventListener?.("change", changed);

  const values = () => Object.fromEntries(Object.entries(read).map(([k, f]) => [k, f()]).filter(([, x]) => x !== undefined));
  return {
    elements: rows,
    values,
    /** The request's parameters with every reference by file id, and the field each reference came from. */
    body() {
      const body = values();
      const references = [];
      const origin = [];
      for (const ref of refs) {
        for (const f of ref.files) {
          references.push({ type: ref.input.kind, file_id: f.id, role: ref.input.role });
          origin.push(ref.row);
        }
      }
      if (references.length) body.input_references = references;
      return { body, origin, inputs: refs.flatMap((r) => r.files.map((f) => ({ role: r.input.role, kind: r.input.kind, ...f }))) };
    },
    /** What to remember of this model's fields, as the controls hold them. */
    state() {
      const s = { frame: mode, refs: {} };
      for (const [k, row] of Object.entries(byParam)) {
        const c = row.control || row.querySelector("input, select");
        if (c && c.type !== "file") s[k] = c.type === "checkbox" ? c.checked : c.value;
      }
      for (const ref of refs) s.refs[`${ref.input.kind}:${ref.input.role}`] = ref.files;
      return s;
    },
    fieldFor(param) {
      if (!param) return null;
      const base = param.replace(/\[.*$/, "").replace(/\..*$/, "");
      if (base === "input_references") {
        const i = Number((param.match(/^input_references\[(\d+)\]/) || [])[1]);
        return this.body().origin[i] || refs[0]?.row || null;
      }
      if (base === "duration_seconds") return byParam.duration || null;
      return byParam[base] || null;
    },
    busy: () => refs.some((r) => r.busy),
    missing: () => refs.find((r) => r.input.required && !r.files.length) || null,
  };
}

/** One reference input: checks the chosen files, shrinks images, uploads them and shows what was taken. */
function referenceField(input, changed, saved) {
  const label = `${ROLE_LABELS[input.role] || input.role}${input.kind === "image" || input.role === "source" ? "" : ` ${input.kind}`}`;
  const file = h("input", {
    type: "file",
    class: "input",
    accept: ACCEPT[input.kind].join(","),
    multiple: input.multiple,
    "data-testid": input.role === "first_frame" ? "first-frame" : `ref-${input.kind}-${input.role}`.replace(/_/g, "-"),
    "data-param": "input_references",
  });
  const chosen = h("ul", { class: "chosen", "data-testid": "chosen-files" });
  const row = field(`${label} (${input.required ? "required" : "optional"})`, file, {
    param: "input_references",
    hint: input.kind === "image" ? "PNG, JPEG or WebP; large images are made smaller before upload." : `${input.kind} file, up to 100 MB.`,
  });
  row.append(chosen);
  const ref = { input, row, files: Array.isArray(saved) ? saved : [], busy: false, onFiles: null };
  const render = () => {
    chosen.replaceChildren(
      ...ref.files.map((f, i) =>
        h(
          "li",
          { class: "chosen-file", "data-file-id": f.id },
          f.preview ? h("img", { class: "thumb", src: f.preview, alt: `${label}: ${f.name}` }) : null,
          h("span", { class: "chosen-name" }, `${f.name} · ${mb(f.bytes)}`),
          h("button", { type: "button", class: "btn btn-sm btn-ghost", "aria-label": `Remove ${f.name}`, onclick: () => { ref.files.splice(i, 1); render(); changed(); } }, "Remove"),
        ),
      ),
    );
    ref.onFiles?.();
  };
  file.addEventListener("change", async () => {
    const picked = [...file.files];
    if (!picked.length) return;
    row.error.hidden = true;
    file.removeAttribute("aria-invalid");
    ref.busy = true;
    row.classList.add("uploading");
    chosen.replaceChildren(h("li", { class: "muted", "data-testid": "uploading", role: "status" }, `Uploading ${picked.length} file${picked.length > 1 ? "s" : ""}…`));
    try {
      const taken = [];
      for (const f of picked) {
        const ready = await prepare(f, input.kind);
        const stored = await upload(ready);
        taken.push({ id: stored.id, name: f.name, bytes: stored.bytes, mime_type: stored.mime_type, width: stored.width, height: stored.height, preview: await preview(ready).catch(() => null) });
      }
      ref.files = input.multiple ? [...ref.files, ...taken] : taken.slice(-1);
    } catch (err) {
      row.error.textContent = err instanceof InputError ? err.message : `Upload failed: ${err.message}`;
      row.error.hidden = false;
      file.setAttribute("aria-invalid", "true");
    } finally {
      ref.busy = false;
      row.classList.remove("uploading");
      file.value = "";
      render();
      changed();
    }
  });
  render();
  return ref;
}
