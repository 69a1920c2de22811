// The playground: pick a model, set only what it takes, see the exact hold the API would make, submit
// and watch the job live. The form, recent results and each job's inputs are remembered (store.js).

import { api, TERMINAL, watchJob } from "./api.js";
import { paramFields } from "./form.js";
import { jobActions, renderResult } from "./job.js";
import { SNIPPETS } from "./snippets.js";
import { form as savedForm, jobInputs, recent } from "./store.js";
import { clear, clearError, h, progressBar, statusBadge, thumbnail, usd } from "./ui.js";

const isAvailable = (m) => m.providers.some((p) => p.available);
const QUOTE_PROMPT = "a price check"; // the price does not depend on the prompt; an empty one is refused

export async function playgroundPage(view, ctx) {
  const { data: models } = await api("/v1/videos/models");
  if (!ctx.alive) return;
  const available = models.filter(isAvailable);
  const saved = (await fromJob(ctx.query.get("from"), models)) || savedForm.get() || { byModel: {} };
  if (!ctx.alive) return;
  saved.byModel ||= {};
  const wanted = ctx.query.get("model") || saved.model;
  const initial = available.find((m) => m.id === wanted) || available[0] || null;

  const select = h(
    "select",
    { id: "model", class: "input", "data-testid": "model-select", "data-param": "model" },
    optgroup("Available", available, initial),
    optgroup("No provider configured (unavailable)", models.filter((m) => !isAvailable(m)), null, true),
  );
  const prompt = h("textarea", {
    id: "prompt",
    class: "input",
    rows: 3,
    placeholder: "a lighthouse at dusk, waves rolling in",
    "data-testid": "prompt",
    "data-param": "prompt",
    value: saved.prompt || "",
  });
  const params = h("div", { class: "params", "data-testid": "params" });
  const estimate = h("p", { class: "estimate", "data-testid": "estimate", "aria-live": "polite" });
  const lines = h("ul", { class: "quote-lines muted", "data-testid": "quote-lines" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "submit", disabled: !initial }, "Generate");
  const formError = h("div", { class: "form-error", "data-testid": "form-error", role: "alert", tabindex: "-1", hidden: true });
  const output = h("div", { class: "output", "data-testid": "output" }, placeholder());
  const recentStrip = h("div", { class: "recent", "data-testid": "recent" });
  const code = h("pre", { class: "raw code", "data-testid": "code", tabindex: "0", "aria-label": "Code for this request" });
  let codeKind = "curl";
  let fields = null;
  let watcher = null;
  ctx.cleanup(() => watcher?.stop());

  const model = () => models.find((m) => m.id === select.value);
  const remember = () => {
    if (!fields) return;
    saved.model = select.value;
    saved.prompt = prompt.value;
    saved.byModel[select.value] = fields.state();
    savedForm.set({ model: saved.model, prompt: saved.prompt, byModel: saved.byModel });
  };
  const requestBody = () => ({ model: select.value, prompt: prompt.value.trim(), ...fields.body().body });

  // The quote: asked of the API on every change (debounced), so the price is the hold a create makes.
  let quoteTimer = null;
  let quoteTicket = 0;
  const refreshQuote = () => {
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(async () => {
      const ticket = ++quoteTicket;
      const body = requestBody();
      if (!body.prompt) body.prompt = QUOTE_PROMPT;
      estimate.dataset.state = "loading";
      try {
        const q = await api("/v1/videos/quote", { method: "POST", body });
        if (!ctx.alive || ticket !== quoteTicket) return;
        clearFieldErrors("quote");
        estimate.dataset.state = "ok";
        estimate.dataset.amount = String(q.amount);
        clear(estimate, "Holds ", h("strong", {}, usd(q.amount)), ` for ${q.seconds} s at ${q.size}${q.sample_count > 1 ? ` × ${q.sample_count}` : ""}`);
        clear(lines, q.lines.map((l) => h("li", {}, `${l.description}: ${usd(l.unit_price)} × ${l.quantity} = ${usd(l.amount)}`)));
      } catch (err) {
        if (!ctx.alive || ticket !== quoteTicket || err.name === "AbortError") return;
        estimate.dataset.state = "error";
        delete estimate.dataset.amount;
        clear(lines);
        clear(estimate, err.status === 0 ? err.message : `Cannot be created as set: ${err.message}`);
        markField(err, "quote");
      }
    }, 250);
  };
  ctx.cleanup(() => clearTimeout(quoteTimer));
  const changed = () => {
    remember();
    refreshQuote();
    renderCode();
  };

  const renderParams = () => {
    const m = model();
    if (!m) return clear(params, h("p", { class: "muted" }, "No model has a configured provider on this gateway."));
    fields = paramFields(m, saved.byModel[m.id], changed);
    clear(params, fields.elements);
    changed();
  };
  select.addEventListener("change", renderParams);
  prompt.addEventListener("input", () => {
    remember();
    renderCode();
  });

  /** An error at its field (when the API named one) and next to Generate. */
  function markField(err, source) {
    const row = fields?.fieldFor(err.param) || (err.param === "prompt" ? promptRow : err.param === "model" ? modelRow : null);
    if (row) markRow(row, err.message, source);
    return row;
  }
  function markRow(row, message, source) {
    if (!row.error) return;
    row.error.textContent = message;
    row.error.hidden = false;
    row.error.dataset.source = source;
    row.control?.setAttribute("aria-invalid", "true");
    row.control?.classList.add("invalid");
  }
  function clearFieldErrors(source) {
    for (const el of form.querySelectorAll(".field-error")) {
      if (source && el.dataset.source !== source) continue;
      el.hidden = true;
      const control = el.closest(".field")?.control;
      control?.removeAttribute("aria-invalid");
      control?.classList.remove("invalid");
    }
  }
  function showFormError(err, row) {
    const meta = [err.param && `param: ${err.param}`, err.code && `code: ${err.code}`, err.requestId && `request: ${err.requestId}`].filter(Boolean).join(" · ");
    clear(
      formError,
      h("strong", {}, err.status === 0 ? "Network error" : err.status ? `The API refused this request (${err.status})` : "Check the form"),
      h("span", { "data-testid": "form-error-message" }, err.message),
      meta ? h("span", { class: "banner-meta" }, meta) : null,
    );
    formError.hidden = false;
    const target = row?.control || formError;
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "center" });
  }

  const modelRow = fieldRow("Model", select);
  const promptRow = fieldRow("Prompt", prompt);
  const form = h(
    "form",
    {
      class: "card form",
      "data-testid": "playground-form",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        clearError();
        clearFieldErrors();
        formError.hidden = true;
        const problem = !prompt.value.trim()
          ? ["Write a prompt first.", promptRow]
          : fields?.busy()
            ? ["Wait for the upload to finish.", fields.missing()?.row || null]
            : fields?.missing()
              ? [`${fields.missing().row.querySelector("label").textContent.replace(/ \(required\)$/, "")} is required by this model.`, fields.missing().row]
              : null;
        if (problem) {
          const [message, row] = problem;
          if (row) markRow(row, message, "submit");
          showFormError({ message }, row);
          return;
        }
        submit.disabled = true;
        submit.textContent = "Submitting…";
        try {
          const { body, inputs } = { ...fields.body(), body: requestBody() };
          const video = await api("/v1/videos", { method: "POST", body });
          if (!ctx.alive) return;
          jobInputs.set(video.id, { body, inputs: inputs.map(({ preview, ...f }) => ({ ...f, preview: preview || null })) });
          recent.add(video);
          renderRecent();
          watcher?.stop();
          watcher = follow(output, video, ctx, () => renderRecent());
        } catch (err) {
          if (!ctx.alive) return;
          showFormError(err, markField(err, "submit"));
        } finally {
          submit.disabled = false;
          submit.textContent = "Generate";
        }
      },
    },
    h("h2", { class: "card-title" }, "New video"),
    modelRow,
    promptRow,
    params,
    h("div", { class: "form-foot" }, h("div", { class: "quote" }, estimate, lines), submit),
    formError,
  );

  const codeTabs = h(
    "div",
    { class: "tabs", role: "tablist", "aria-label": "Language" },
    SNIPPETS.map(([kind, label]) =>
      h("button", { type: "button", role: "tab", class: "btn btn-sm", "data-kind": kind, "data-testid": `code-${kind}`, "aria-selected": String(kind === codeKind), onclick: () => { codeKind = kind; renderCode(); } }, label),
    ),
  );
  const copy = h("button", { type: "button", class: "btn btn-sm", "data-testid": "copy-code" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      copy.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(code); // no clipboard here (plain http): select it to copy by hand
      copy.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (copy.textContent = "Copy"), 2000);
  });
  function renderCode() {
    if (!fields) return;
    const make = SNIPPETS.find(([kind]) => kind === codeKind)[2];
    code.textContent = make(location.origin, requestBody());
    for (const tab of codeTabs.children) tab.setAttribute("aria-selected", String(tab.dataset.kind === codeKind));
  }

  function renderRecent() {
    const items = recent.list();
    clear(
      recentStrip,
      items.length
        ? h(
            "ul",
            { class: "recent-list" },
            items.map((r) =>
              h(
                "li",
                { class: "recent-item", "data-testid": "recent-item", "data-id": r.id },
                h("a", { href: `#/jobs/${r.id}`, class: "recent-link" }, thumbnail(r.id, r.status, r.prompt), h("span", { class: "recent-prompt" }, r.prompt || r.id)),
                h("a", { href: `#/playground?from=${encodeURIComponent(r.id)}`, class: "btn btn-sm btn-ghost", "data-testid": "use-settings" }, "Use these settings"),
              ),
            ),
          )
        : h("p", { class: "muted" }, "Videos you make here are listed here."),
    );
  }

  clear(
    view,
    h("header", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Playground"), h("p", { class: "muted" }, "Generate a video and watch it render.")),
    h("div", { class: "grid-2" }, form, h("section", { class: "card", "aria-labelledby": "output-title" }, h("h2", { class: "card-title", id: "output-title" }, "Output"), output)),
    h("section", { class: "card", "aria-labelledby": "recent-title" }, h("h2", { class: "card-title", id: "recent-title" }, "Recent"), recentStrip),
    h("details", { class: "card code-card" }, h("summary", {}, "Code for this request"), h("div", { class: "toolbar" }, codeTabs, h("span", { class: "spacer" }), copy), code),
  );
  renderParams();
  renderRecent();
  if (ctx.query.get("from") && !ctx.query.get("model")) savedForm.set({ model: saved.model, prompt: saved.prompt, byModel: saved.byModel });
}

function fieldRow(label, control) {
  const error = h("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
  control.setAttribute("aria-describedby", error.id);
  const row = h("div", { class: "field" }, h("label", { class: "label", for: control.id }, label), control, error);
  row.control = control;
  row.error = error;
  return row;
}

function optgroup(label, models, selected, disabled = false) {
  if (!models.length) return null;
  return h(
    "optgroup",
    { label },
    models.map((m) => h("option", { value: m.id, selected: m === selected, disabled }, `${m.name} — ${m.id}`)),
  );
}

function placeholder() {
  return h("div", { class: "empty-output" }, h("p", { class: "muted" }, "Your video will appear here."));
}

/** The form state of job ``id``: the body it was made with here, or what its answer shows. */
async function fromJob(id, models) {
  if (!id) return null;
  const kept = jobInputs.get(id);
  let body = kept?.body;
  let inputs = kept?.inputs || [];
  if (!body) {
    const req = await api(`/v1/videos/${encodeURIComponent(id)}/request`); // what the job was made with
    body = { ...req, size: req.resolution ? undefined : req.size };
    inputs = await storedUploads(req.input_references);
  }
  const m = models.find((x) => x.id === body.model);
  const refs = {};
  for (const input of inputs) (refs[`${input.kind}:${input.role}`] ||= []).push(input);
  const state = {
    duration: body.duration ?? body.duration_seconds,
    frame: body.size && !(m && !m.capabilities.size_range && !(m.capabilities.sizes || []).includes(body.size)) ? "size" : "preset",
    resolution: body.resolution,
    aspect_ratio: body.aspect_ratio,
    size: body.size,
    seed: body.seed,
    sample_count: body.sample_count,
    negative_prompt: body.negative_prompt,
    generate_audio: Boolean(body.generate_audio),
    operation: body.operation,
    refs,
  };
  const base = savedForm.get() || { byModel: {} };
  return { model: body.model, prompt: body.prompt, byModel: { ...(base.byModel || {}), [body.model]: state } };
}

/** A stored request's uploads as the form's chosen files (an upload since deleted is left out). */
async function storedUploads(references) {
  const uploads = references.filter((r) => r.file_id);
  const files = await Promise.all(uploads.map((r) => api(`/v1/files/${encodeURIComponent(r.file_id)}`).catch(() => null)));
  return uploads.flatMap((r, i) => {
    const f = files[i];
    return f ? [{ role: r.role, kind: r.kind, id: f.id, name: f.filename || f.id, bytes: f.bytes, mime_type: f.mime_type, width: f.width, height: f.height, preview: null }] : [];
  });
}

/** Show one job's live status in ``output`` until it ends, then play it. */
function follow(output, video, ctx, onEnd) {
  const badge = h("span", {});
  const bar = progressBar({ "data-testid": "job-progress", "aria-label": "Job progress" });
  const pct = h("span", { class: "pct", "data-testid": "job-progress-text" });
  const mode = h("span", { class: "live-mode", "data-testid": "live-mode" });
  const actions = h("div", { class: "actions" });
  const result = h("div", { class: "result" });
  const error = h("div", {});
  clear(
    output,
    h("div", { class: "job-head" }, badge, h("a", { href: `#/jobs/${video.id}`, class: "mono", "data-testid": "job-link" }, video.id), mode),
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
    if (TERMINAL.has(v.status)) {
      recent.update(v);
      onEnd();
    }
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
