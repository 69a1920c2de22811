// The playground: pick a model, set only the parameters it supports, submit and watch the job live.

import { api, TERMINAL, watchJob } from "./api.js";
import { jobActions, renderResult } from "./job.js";
import { clear, clearError, h, progressBar, showError, statusBadge, usd } from "./ui.js";

export async function playgroundPage(view, ctx) {
  const { data: models } = await api("/v1/videos/models");
  if (!ctx.alive) return;
  const available = models.filter((m) => m.providers.some((p) => p.available));
  const wanted = ctx.query.get("model");
  const initial = models.find((m) => m.id === wanted) || available[0] || models[0];

  const select = h(
    "select",
    { id: "model", class: "input", "data-testid": "model-select" },
    optgroup("Available", available, initial),
    optgroup("No provider configured", models.filter((m) => !available.includes(m)), initial),
  );
  const prompt = h("textarea", {
    id: "prompt",
    class: "input",
    rows: 3,
    placeholder: "a lighthouse at dusk, waves rolling in",
    "data-testid": "prompt",
  });
  const params = h("div", { class: "params", "data-testid": "params" });
  const estimate = h("p", { class: "estimate muted", "data-testid": "estimate" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "submit" }, "Generate");
  const output = h("div", { class: "output", "data-testid": "output" }, placeholder());
  let fields = {};
  let watcher = null;
  ctx.cleanup(() => watcher?.stop());

  const model = () => models.find((m) => m.id === select.value);
  const refreshEstimate = () => {
    estimate.textContent = priceEstimate(model(), fields.values());
  };
  const renderParams = () => {
    fields = paramFields(model(), refreshEstimate);
    clear(params, fields.elements);
    refreshEstimate();
  };
  select.addEventListener("change", renderParams);
  renderParams();

  const form = h(
    "form",
    {
      class: "card form",
      "data-testid": "playground-form",
      onsubmit: async (event) => {
        event.preventDefault();
        clearError();
        for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
        submit.disabled = true;
        submit.textContent = "Submitting…";
        try {
          const body = { model: select.value, prompt: prompt.value.trim(), ...(await fields.body()) };
          const video = await api("/v1/videos", { method: "POST", body });
          if (!ctx.alive) return;
          watcher?.stop();
          watcher = follow(output, video, ctx);
        } catch (err) {
          showError(err, "The API rejected this request");
          const bad = err.param && form.querySelector(`[data-param="${CSS.escape(err.param)}"]`);
          if (bad) bad.classList.add("invalid");
        } finally {
          submit.disabled = false;
          submit.textContent = "Generate";
        }
      },
    },
    h("h2", { class: "card-title" }, "New video"),
    field("Model", select),
    field("Prompt", prompt),
    params,
    h("div", { class: "form-foot" }, estimate, submit),
  );

  clear(
    view,
    h("header", { class: "page-head" }, h("h1", {}, "Playground"), h("p", { class: "muted" }, "Generate a video and watch it render.")),
    h("div", { class: "grid-2" }, form, h("section", { class: "card" }, h("h2", { class: "card-title" }, "Output"), output)),
  );
}

function optgroup(label, models, selected) {
  if (!models.length) return null;
  return h(
    "optgroup",
    { label },
    models.map((m) => h("option", { value: m.id, selected: m === selected }, `${m.name} — ${m.id}`)),
  );
}

function placeholder() {
  return h("div", { class: "empty-output" }, h("p", { class: "muted" }, "Your video will appear here."));
}

function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { class: "label", for: id }, label), control, hint ? h("p", { class: "hint" }, hint) : null);
}

function choice(name, testid, options, { allowDefault = true, selected } = {}) {
  return h(
    "select",
    { id: `p-${name}`, class: "input", "data-testid": testid, "data-param": name },
    allowDefault ? h("option", { value: "" }, "Model default") : null,
    options.map((o) => h("option", { value: o, selected: o === selected }, o)),
  );
}

/** The inputs for what this model supports, and how to turn them into a request body. */
function paramFields(model, changed) {
  const caps = model.capabilities;
  const rows = [];
  const read = {};
  const inputs = {};

  if (caps.durations.length) {
    const el = choice("duration", "duration", caps.durations.map(String), { allowDefault: false, selected: String(caps.durations[0]) });
    inputs.duration = el;
    read.duration = () => Number(el.value);
    rows.push(field("Duration (seconds)", el));
  }
  if (caps.resolutions.length) {
    const el = choice("resolution", "resolution", caps.resolutions);
    inputs.resolution = el;
    read.resolution = () => el.value || undefined;
    rows.push(field("Resolution", el));
  }
  if (caps.aspect_ratios.length) {
    const el = choice("aspect_ratio", "aspect-ratio", caps.aspect_ratios);
    read.aspect_ratio = () => el.value || undefined;
    rows.push(field("Aspect ratio", el));
  }
  if (caps.sizes && caps.sizes.length) {
    const el = choice("size", "size", caps.sizes);
    read.size = () => el.value || undefined;
    rows.push(field("Size", el));
  } else if (caps.size_range) {
    const r = caps.size_range;
    const el = h("input", { id: "p-size", class: "input", placeholder: "e.g. 640x360", "data-testid": "size", "data-param": "size" });
    read.size = () => el.value.trim() || undefined;
    rows.push(field("Exact size (optional)", el, `Width x height, ${r.min_side}–${r.max_side} px per side; overrides resolution.`));
  }
  if (caps.seed) {
    const el = h("input", { id: "p-seed", class: "input", type: "number", min: 0, step: 1, placeholder: "random", "data-testid": "seed", "data-param": "seed" });
    read.seed = () => (el.value === "" ? undefined : Number(el.value));
    rows.push(field("Seed", el));
  }
  if (caps.negative_prompt) {
    const el = h("input", { id: "p-negative", class: "input", placeholder: "what to avoid", "data-testid": "negative-prompt", "data-param": "negative_prompt" });
    read.negative_prompt = () => el.value.trim() || undefined;
    rows.push(field("Negative prompt", el));
  }
  if (caps.audio) {
    const el = h("input", { id: "p-audio", type: "checkbox", "data-testid": "audio", "data-param": "generate_audio" });
    inputs.audio = el;
    read.generate_audio = () => (el.checked ? true : undefined);
    rows.push(h("div", { class: "field field-check" }, el, h("label", { for: "p-audio" }, "Generate audio")));
  }
  let frame = null;
  if (caps.input_reference_roles.includes("first_frame")) {
    const required = caps.required_reference_roles.includes("first_frame");
    const el = h("input", { id: "p-first-frame", type: "file", accept: "image/png,image/jpeg,image/webp", class: "input", "data-testid": "first-frame", "data-param": "input_references" });
    const preview = h("img", { class: "thumb", alt: "", hidden: true });
    el.addEventListener("change", () => {
      const file = el.files[0];
      preview.hidden = !file;
      if (file) preview.src = URL.createObjectURL(file);
    });
    frame = { el, required };
    rows.push(field(required ? "First frame (required)" : "First frame (optional)", h("div", { class: "file-row" }, el, preview)));
  }
  for (const el of Object.values(inputs)) el.addEventListener("change", changed);

  const values = () => Object.fromEntries(Object.entries(read).map(([k, f]) => [k, f()]).filter(([, v]) => v !== undefined));
  return {
    elements: rows,
    values,
    async body() {
      const body = values();
      const file = frame && frame.el.files[0];
      if (file) {
        const url = await dataUrl(file);
        body.input_references = [{ type: "image_url", image_url: { url }, role: "first_frame" }];
      }
      return body;
    },
  };
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** A rough price from the catalogue's card (per second, a resolution tier, audio, per request). */
function priceEstimate(model, values) {
  const p = model.pricing;
  if (!p) return "";
  const secs = values.duration || model.capabilities.durations[0] || 0;
  let perSecond = p.per_second;
  let audio = 0;
  for (const tier of p.tiers || []) {
    if (tier.resolution && tier.resolution === values.resolution) perSecond = tier.per_second;
    if (tier.audio && values.generate_audio) audio = tier.add_per_second || 0;
  }
  const total = (perSecond + audio) * secs + (p.per_request || 0);
  return `Estimated cost ${usd(total)} (${usd(perSecond + audio)}/s × ${secs} s)`;
}

/** Show one job's live status in ``output`` until it ends, then play it. */
function follow(output, video, ctx) {
  const badge = h("span", {});
  const bar = progressBar({ "data-testid": "job-progress" });
  const pct = h("span", { class: "pct", "data-testid": "job-progress-text" });
  const mode = h("span", { class: "live-mode", "data-testid": "live-mode" });
  const actions = h("div", { class: "actions" });
  const result = h("div", { class: "result" });
  const error = h("div", {});
  clear(
    output,
    h(
      "div",
      { class: "job-head" },
      badge,
      h("a", { href: `#/jobs/${video.id}`, class: "mono", "data-testid": "job-link" }, video.id),
      mode,
    ),
    h("div", { class: "progress-row" }, bar, pct),
    actions,
    error,
    result,
  );
  let shown = false;
  const update = async (v) => {
    clear(badge, statusBadge(v.status, { "data-testid": "job-status" }));
    bar.set(v.status === "completed" ? 100 : v.progress, v.status);
    pct.textContent = `${v.status === "completed" ? 100 : v.progress ?? 0}%${v.progress_source ? ` · ${v.progress_source}` : ""}`;
    clear(actions, TERMINAL.has(v.status) ? null : jobActions(v, { onChange: update }));
    clear(error, v.error ? h("p", { class: "job-error", "data-testid": "job-error" }, `${v.error.code}: ${v.error.message}`) : null);
    if (v.status === "completed" && !shown) {
      shown = true;
      try {
        await renderResult(result, v, ctx);
      } catch (err) {
        ctx.fail(err);
      }
    }
  };
  update(video);
  return watchJob(video.id, {
    update,
    mode: (m) => {
      mode.textContent = { live: "● live", poll: "polling", ended: "" }[m];
      mode.dataset.mode = m;
    },
    error: (err) => ctx.fail(err),
  });
}
