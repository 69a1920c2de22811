// One job: live status, the played output, a lifecycle timeline, attempts, webhooks, billing.

import { api, signedLink, TERMINAL, watchJob } from "./api.js";
import { jobInputs } from "./store.js";
import {
  bytes,
  clear,
  dateTime,
  details,
  empty,
  h,
  idTime,
  number,
  progressBar,
  seconds,
  section,
  showError,
  statusBadge,
  table,
  timeOfDay,
  usd,
} from "./ui.js";

/** Cancel (while running) or delete (once terminal), reporting the API's answer through ``onChange``. */
export function jobActions(video, { onChange, onDeleted } = {}) {
  const id = encodeURIComponent(video.id);
  if (!TERMINAL.has(video.status)) {
    return h(
      "button",
      {
        type: "button",
        class: "btn btn-sm",
        "data-testid": "cancel",
        onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          try {
            onChange?.(await api(`/v1/videos/${id}/cancel`, { method: "POST" }));
          } catch (err) {
            showError(err, "Could not cancel");
            button.disabled = false;
          }
        },
      },
      "Cancel",
    );
  }
  let armed = null;
  return h(
    "button",
    {
      type: "button",
      class: "btn btn-sm btn-danger-ghost",
      "data-testid": "delete",
      title: "Delete the job and its stored video",
      onclick: async (event) => {
        const button = event.currentTarget;
        if (!armed) {
          // A second click within a few seconds confirms; no modal dialog to get in the way.
          button.textContent = "Confirm delete";
          button.classList.add("armed");
          armed = setTimeout(() => {
            armed = null;
            button.textContent = "Delete";
            button.classList.remove("armed");
          }, 4000);
          return;
        }
        clearTimeout(armed);
        button.disabled = true;
        try {
          await api(`/v1/videos/${id}`, { method: "DELETE" });
          onDeleted?.();
        } catch (err) {
          showError(err, "Could not delete");
          button.disabled = false;
        }
      },
    },
    "Delete",
  );
}

/** The player, the asset's details and a download button for a completed job. */
export async function renderResult(container, video, ctx) {
  const outputs = video.outputs && video.outputs.length ? video.outputs : [{ index: 0, asset: video.asset }];
  const player = h("video", {
    class: "player",
    controls: true,
    autoplay: true,
    muted: true,
    loop: true,
    playsinline: true,
    preload: "auto",
    "data-testid": "player",
  });
  player.muted = true;
  const info = h("div", {});
  const show = async (output) => {
    const url = await signedLink(video.id, "inline", output.index);
    if (!ctx.alive) return;
    player.src = url;
    const a = output.asset || {};
    clear(
      info,
      details(
        [
          ["Size", a.width ? `${a.width} × ${a.height}` : "—", "asset-size"],
          ["Duration", seconds(a.duration_seconds), "asset-duration"],
          ["Bytes", a.bytes !== undefined ? `${bytes(a.bytes)} (${number(a.bytes)} bytes)` : "—", "asset-bytes"],
          ["Type", a.mime_type],
          ["SHA-256", h("code", { class: "hash" }, a.sha256 || "—"), "asset-sha256"],
        ],
        { "data-testid": "asset-details" },
      ),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-primary",
          "data-testid": "download",
          onclick: async () => {
            try {
              const href = await signedLink(video.id, "attachment", output.index);
              h("a", { href, download: `${video.id}-${output.index}.mp4` }).click();
            } catch (err) {
              showError(err, "Could not create a download link");
            }
          },
        },
        "Download MP4",
      ),
    );
  };
  const select = (o) => {
    for (const tab of tabs?.children || []) tab.setAttribute("aria-selected", String(tab.dataset.index === String(o.index)));
    return show(o);
  };
  const tabs = outputs.length > 1
    ? h(
        "div",
        { class: "tabs", role: "tablist", "aria-label": "Outputs" },
        outputs.map((o) =>
          h("button", { type: "button", role: "tab", class: "btn btn-sm", "data-index": o.index, "data-testid": "output-tab", "aria-selected": String(o.index === outputs[0].index), onclick: () => select(o).catch(ctx.fail) }, `Output ${o.index + 1}`),
        ),
      )
    : null;
  clear(container, tabs, player, info);
  await select(outputs[0]);
}

// ---- the job page ---------------------------------------------------------------------------------

const EVENT_LABELS = {
  "video.created": "Created",
  "video.status_changed": "Status changed",
  "video.progress": "Progress",
  "video.completed": "Completed",
  "video.failed": "Failed",
  "video.cancelled": "Cancelled",
  "video.expired": "Expired",
};

export async function jobPage(view, ctx) {
  const [id] = ctx.params;
  const first = await api(`/v1/videos/${encodeURIComponent(id)}`);
  if (!ctx.alive) return;

  const events = []; // what the websocket (or polling) reported, in order of arrival
  let video = first;
  let shown = false;
  let webhooksFinal = false;
  let watcher = null;
  ctx.cleanup(() => watcher?.stop());

  const badge = h("span", {});
  const actions = h("div", { class: "actions" });
  const mode = h("span", { class: "live-mode", "data-testid": "live-mode" });
  const bar = progressBar({ "data-testid": "job-progress" });
  const pct = h("span", { class: "pct", "data-testid": "job-progress-text" });
  const summary = h("div", {});
  const errorBox = h("div", {});
  const result = h("div", { class: "result" });
  const resultCard = section("Output", result);
  resultCard.hidden = true;
  const timeline = h("ol", { class: "timeline", "data-testid": "timeline" });
  const attempts = h("div", { "data-testid": "attempts" });
  const billing = h("div", { "data-testid": "billing" });
  const webhooks = h("div", { "data-testid": "webhooks" }, h("p", { class: "muted" }, "Loading…"));
  const raw = h("pre", { class: "raw", tabindex: "0", "aria-label": "The job as JSON" });

  // Deliveries settle after the job does: re-read them while any is pending (at most a minute).
  let webhookTimer = null;
  let webhookReads = 0;
  ctx.cleanup(() => clearTimeout(webhookTimer));
  const loadWebhooks = async () => {
    clearTimeout(webhookTimer);
    try {
      const { data } = await api(`/v1/videos/${encodeURIComponent(id)}/webhook_deliveries`);
      if (!ctx.alive) return;
      renderWebhooks(webhooks, data, id, loadWebhooks);
      if (TERMINAL.has(video.status) && data.some((d) => d.status === "pending") && ++webhookReads < 30) {
        webhookTimer = setTimeout(loadWebhooks, 2000);
      }
    } catch (err) {
      ctx.fail(err);
    }
  };

  const render = async (v, msg) => {
    video = v;
    if (msg && msg.type !== "poll") {
      events.push({ at: idTime(msg.id) || Date.now(), kind: msg.type, event: msg.event, status: v.status, progress: v.progress });
    } else if (msg) {
      events.push({ at: Date.now(), kind: "poll", status: v.status, progress: v.progress });
    }
    clear(badge, statusBadge(v.status, { "data-testid": "job-status" }));
    clear(actions, jobActions(v, { onChange: (nv) => render(nv), onDeleted: () => (location.hash = "#/jobs") }));
    bar.set(v.status === "completed" ? 100 : v.progress, v.status);
    pct.textContent = `${v.status === "completed" ? 100 : v.progress ?? 0}%${v.progress_source ? ` · ${v.progress_source}` : ""}`;
    clear(summary, renderSummary(v));
    clear(errorBox, v.error ? h("div", { class: "job-error", "data-testid": "job-error" }, h("strong", {}, v.error.code), ": ", v.error.message) : null);
    clear(timeline, renderTimeline(v, events));
    clear(attempts, renderAttempts(v));
    clear(billing, renderBilling(v));
    raw.textContent = JSON.stringify(v, null, 2);
    if (TERMINAL.has(v.status) && !webhooksFinal) {
      webhooksFinal = true; // deliveries of the terminal event exist once it is committed
      loadWebhooks();
    }
    if (v.status === "completed" && !shown) {
      shown = true;
      resultCard.hidden = false;
      try {
        await renderResult(result, v, ctx);
      } catch (err) {
        ctx.fail(err);
      }
    }
  };

  clear(
    view,
    h(
      "header",
      { class: "page-head" },
      h("a", { href: "#/jobs", class: "back" }, "← Jobs"),
      h(
        "div",
        { class: "title-row" },
        h("h1", { class: "mono", "data-testid": "job-id", tabindex: "-1" }, id),
        badge,
        mode,
        actions,
        h("a", { class: "btn btn-sm", href: `#/playground?from=${encodeURIComponent(id)}`, "data-testid": "use-settings" }, "Use these settings"),
      ),
      h("p", { class: "muted prompt-line" }, first.prompt || ""),
    ),
    h("div", { class: "progress-row" }, bar, pct),
    errorBox,
    h(
      "div",
      { class: "stack" },
      h(
        "div",
        { class: "grid-2" },
        h("div", { class: "stack" }, resultCard, section("Details", summary), section("Inputs", renderInputs(id, ctx))),
        h("div", { class: "stack" }, section("Timeline", timeline), section("Billing and usage", billing)),
      ),
      section("Provider attempts", attempts),
      section("Webhook deliveries", webhooks),
      h("details", { class: "card raw-card" }, h("summary", {}, "Raw JSON"), raw),
    ),
  );
  await render(first);
  if (!TERMINAL.has(first.status)) {
    loadWebhooks();
    watcher = watchJob(id, {
      update: (v, msg) => ctx.alive && render(v, msg),
      deleted: () => (location.hash = "#/jobs"),
      mode: (m) => {
        mode.textContent = { live: "● live", poll: "polling", ended: "" }[m];
        mode.dataset.mode = m;
      },
      error: (err) => ctx.fail(err),
    });
  }
}

function renderSummary(v) {
  return details([
    ["Model", v.model],
    ["Provider", v.provider || "—"],
    ["Prompt", v.prompt || "—"],
    ["Duration", v.seconds !== undefined ? seconds(v.seconds) : undefined],
    ["Size", v.size],
    ["Audio", v.audio === undefined ? undefined : v.audio ? "yes" : "no"],
    ["Created", dateTime(v.created_at)],
    ["Started", dateTime(v.started_at)],
    ["Finished", dateTime(v.completed_at)],
    ["Progress source", v.progress_source],
    ["Next poll hint", v.poll_after_seconds !== undefined ? `${v.poll_after_seconds} s` : undefined],
    ["Request id", v.request_id ? h("code", {}, v.request_id) : undefined],
  ]);
}

/** Milestones from the job's own times, merged with every update seen live, oldest first. */
function renderTimeline(v, events) {
  // created comes from the id (ms); started/finished are whole seconds, so they sort no earlier than
  // what precedes them and show without milliseconds.
  const created = idTime(v.id) || v.created_at * 1000;
  const seen = new Set(events.map((e) => e.event));
  const items = [{ at: created, label: "Created", detail: `queued on ${v.model}`, cls: "milestone", precise: true }];
  const started = v.started_at ? Math.max(v.started_at * 1000, created) : null;
  // A milestone the websocket also reported (to the millisecond) is shown once, as the event.
  if (started && !seen.has("video.status_changed")) {
    items.push({ at: started, shown: v.started_at * 1000, label: "Started", detail: v.provider ? `on ${v.provider}` : "", cls: "milestone", precise: false });
  }
  if (v.completed_at && !seen.has(`video.${v.status}`)) {
    const at = Math.max(v.completed_at * 1000 + 999, started || created);
    items.push({ at, shown: v.completed_at * 1000, label: cap(v.status), detail: "finished", cls: `milestone end status-${v.status}`, precise: false });
  }
  let lastProgress = null;
  for (const e of events) {
    const label = e.kind === "job.snapshot" ? "Snapshot" : e.kind === "poll" ? "Polled" : EVENT_LABELS[e.event] || e.event || "Update";
    const progress = e.progress !== null && e.progress !== undefined ? ` · ${e.progress}%` : "";
    const terminal = TERMINAL.has(e.status) && e.event === `video.${e.status}`;
    const cls = terminal ? `event milestone end status-${e.status}` : e.event === "video.status_changed" ? "event milestone" : "event";
    const item = { at: e.at, label, detail: `${e.status}${progress}`, cls, tag: e.event || e.kind, precise: true };
    // Progress ticks come often: one line that moves, not one line per percent.
    if ((e.event === "video.progress" || e.kind === "poll") && lastProgress && lastProgress.tag === item.tag) {
      Object.assign(lastProgress, item, { count: (lastProgress.count || 1) + 1 });
      continue;
    }
    items.push(item);
    lastProgress = e.event === "video.progress" || e.kind === "poll" ? item : null;
  }
  items.sort((a, b) => a.at - b.at);
  return items.map((it) =>
    h(
      "li",
      { class: `tl-item ${it.cls}`, "data-testid": "timeline-item", "data-label": it.label },
      h("span", { class: "tl-dot", "aria-hidden": "true" }),
      h("span", { class: "tl-time" }, timeOfDay(it.shown ?? it.at, it.precise)),
      h("span", { class: "tl-label" }, it.label, it.count ? h("span", { class: "muted" }, ` ×${it.count}`) : null),
      h("span", { class: "tl-detail muted" }, it.detail, it.tag ? h("code", { class: "tl-tag" }, it.tag) : null),
    ),
  );
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

function renderAttempts(v) {
  const list = (v.attempts && v.attempts.length ? v.attempts : v.error?.attempts) || [];
  if (!list.length) return empty("No provider has been tried yet.");
  return table(
    ["Provider", "Outcome", "At", "Status", "Message"],
    list.map((a) =>
      h(
        "tr",
        { "data-testid": "attempt-row" },
        h("td", {}, a.provider),
        h("td", {}, h("span", { class: `badge outcome-${a.outcome}` }, a.outcome)),
        h("td", { class: "nowrap" }, dateTime(a.at)),
        h("td", {}, a.status_code ?? "—"),
        h("td", { class: "wrap" }, a.message || "—"),
      ),
    ),
  );
}

/** The inputs and settings this job was made with: as remembered when it was created in this browser's
 * playground (with file names and previews), otherwise as the API stored them. */
function renderInputs(id, ctx) {
  const kept = jobInputs.get(id);
  if (kept) return renderKept(kept);
  const box = h("div", { "data-testid": "inputs-stored" }, h("p", { class: "muted" }, "Loading…"));
  api(`/v1/videos/${encodeURIComponent(id)}/request`)
    .then((req) => ctx.alive && clear(box, renderStored(req)))
    .catch((err) => ctx.alive && clear(box, empty(`The inputs could not be read: ${err.message}`, { "data-testid": "inputs-unknown" })));
  return box;
}

function settingsList(b) {
  return details(
    [
      ["Resolution", b.resolution],
      ["Aspect ratio", b.aspect_ratio],
      ["Exact size", b.size],
      ["Duration", b.duration === undefined ? undefined : seconds(b.duration)],
      ["Seed", b.seed],
      ["Samples", b.sample_count],
      ["Negative prompt", b.negative_prompt],
      ["Audio", b.generate_audio === undefined ? undefined : b.generate_audio ? "yes" : "no"],
      ["Operation", b.operation],
      ["Output access", b.output_access],
      ["Providers", b.provider?.only?.join(", ") || b.provider?.order?.join(" → ")],
      ["Provider params", b.provider_params_keys?.length ? b.provider_params_keys.join(", ") : undefined],
    ].filter(([, v]) => v !== undefined && v !== null),
    { "data-testid": "input-params" },
  );
}

function renderKept(kept) {
  const files = kept.inputs.length
    ? h(
        "ul",
        { class: "inputs-list", "data-testid": "inputs" },
        kept.inputs.map((f) =>
          h(
            "li",
            { "data-testid": "input-file", "data-file-id": f.id, "data-role": f.role },
            f.preview ? h("img", { class: "thumb", src: f.preview, alt: `${f.role.replace(/_/g, " ")}: ${f.name}` }) : null,
            h("span", {}, h("strong", {}, f.role.replace(/_/g, " ")), ` ${f.kind} · ${f.name} · ${f.width ? `${f.width} × ${f.height} · ` : ""}${bytes(f.bytes)} · `, h("code", {}, f.id)),
          ),
        ),
      )
    : empty("No input files.");
  return h("div", { class: "stack" }, settingsList(kept.body), files);
}

/** The stored request: uploads by id, earlier videos and outputs by id (linked to the job that made them),
 * URLs, inline media by type and size. */
function renderStored(req) {
  const jobLink = (jobId) => h("a", { href: `#/jobs/${encodeURIComponent(jobId)}`, class: "mono", "data-testid": "input-job" }, jobId);
  const source = (r) => {
    if (r.file_id) return ["upload ", h("code", {}, r.file_id)];
    if (r.job_id && r.asset_id !== r.job_id) return ["output ", h("code", {}, r.asset_id), " of video ", jobLink(r.job_id)];
    if (r.job_id) return ["video ", jobLink(r.job_id)];
    if (r.asset_id) return ["output ", h("code", {}, r.asset_id)];
    if (r.data) return [`inline ${r.data.mime_type} · ${bytes(r.data.bytes)}`];
    return [h("a", { href: r.url, target: "_blank", rel: "noopener noreferrer", class: "wrap" }, r.url)];
  };
  const refs = req.input_references;
  const list = refs.length
    ? h(
        "ul",
        { class: "inputs-list", "data-testid": "inputs" },
        refs.map((r) =>
          h(
            "li",
            { "data-testid": "input-file", "data-file-id": r.file_id || r.asset_id || "", "data-role": r.role },
            h("span", {}, h("strong", {}, r.role.replace(/_/g, " ")), ` ${r.kind} · `, ...source(r)),
          ),
        ),
      )
    : empty("No input files.");
  return h("div", { class: "stack" }, h("p", { class: "wrap", "data-testid": "input-prompt" }, req.prompt), settingsList(req), list);
}

function renderWebhooks(container, deliveries, jobId, reload) {
  if (!deliveries.length) {
    clear(container, empty("No webhook deliveries: this job was created without a webhook."));
    return;
  }
  const urls = [...new Set(deliveries.map((d) => d.url))];
  clear(
    container,
    h("p", { class: "muted hook-url", "data-testid": "webhook-url" }, "Sent to ", urls.map((u, i) => [i ? ", " : "", h("code", {}, u)])),
    table(
      ["Event", "Status", "Attempts", "Last answer", "Delivered", ""],
      deliveries.map((d) =>
        h(
          "tr",
          { "data-testid": "webhook-row", "data-url": d.url },
          h("td", {}, h("code", {}, d.event_type || d.event_id)),
          h("td", {}, h("span", { class: `badge delivery-${d.status}` }, d.status)),
          h("td", { "data-testid": "webhook-attempts" }, d.attempts),
          h("td", { class: "wrap" }, d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error || "—"),
          h("td", { class: "nowrap", title: dateTime(d.delivered_at) }, d.delivered_at ? timeOfDay(d.delivered_at * 1000, false) : "—"),
          // A delivery waiting out its backoff after a failed attempt may be sent now, too.
          h("td", { class: "actions-cell" }, d.status === "pending" && !d.attempts ? null : redeliver(jobId, d, reload)),
        ),
      ),
    ),
  );
}

/** Queue a delivery again, due now (a failed one above all); the table re-reads until it settles. */
function redeliver(jobId, delivery, reload) {
  return h(
    "button",
    {
      type: "button",
      class: "btn btn-sm",
      "data-testid": "redeliver",
      "aria-label": `Redeliver ${delivery.event_type || delivery.event_id}`,
      onclick: async (event) => {
        const button = event.currentTarget;
        button.disabled = true;
        try {
          await api(`/v1/videos/${encodeURIComponent(jobId)}/webhook_deliveries/${encodeURIComponent(delivery.id)}/redeliver`, { method: "POST" });
          reload();
        } catch (err) {
          showError(err, "Could not redeliver");
          button.disabled = false;
        }
      },
    },
    "Redeliver",
  );
}

function renderBilling(v) {
  const b = v.billing;
  const u = v.usage;
  if (!b && !u) return empty("No billing recorded.");
  return details([
    ["State", b ? h("span", { class: `badge billing-${b.state}` }, b.state) : undefined],
    ["Held", b ? usd(b.held) : undefined],
    ["Settled", b ? usd(b.settled) : undefined],
    ["Reservation", b && b.reservation_id ? h("code", {}, b.reservation_id) : undefined],
    ["Cost", u ? usd(u.cost) : undefined, "usage-cost"],
    ["Video seconds billed", u ? seconds(u.output_video_seconds) : undefined],
    ["Own provider key", u ? (u.is_byok ? "yes" : "no") : undefined],
  ]);
}
