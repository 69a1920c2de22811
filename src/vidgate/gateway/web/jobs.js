// The jobs table: status filter, keyset pages (Next / Previous), cancel and delete, live rows.

import { api, TERMINAL, watchJob } from "./api.js";
import { jobActions } from "./job.js";
import { clear, dateTime, empty, h, progressBar, shortId, statusBadge, usd } from "./ui.js";

const STATUSES = ["queued", "processing", "completed", "failed", "cancelled", "expired"];
const PAGE_SIZES = [5, 10, 20, 50, 100];

// Kept for the tab's life, so coming back from a job page shows the same filter and page.
const state = { status: "", limit: 20, cursors: [null] };

export async function jobsPage(view, ctx) {
  const statusSelect = h(
    "select",
    { class: "input input-sm", "data-testid": "status-filter", "aria-label": "Status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)),
  );
  const sizeSelect = h(
    "select",
    { class: "input input-sm", "data-testid": "page-size", "aria-label": "Rows per page" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === state.limit }, `${n} per page`)),
  );
  const prev = h("button", { type: "button", class: "btn btn-sm", "data-testid": "prev-page" }, "← Previous");
  const next = h("button", { type: "button", class: "btn btn-sm", "data-testid": "next-page" }, "Next →");
  const pageLabel = h("span", { class: "muted", "data-testid": "page-number" });
  const refresh = h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-testid": "refresh" }, "Refresh");
  const body = h("div", { "data-testid": "jobs-table" });
  const watchers = new Map();
  const stopAll = () => {
    for (const w of watchers.values()) w.stop();
    watchers.clear();
  };
  ctx.cleanup(stopAll);

  let loading = 0;
  const load = async () => {
    const ticket = ++loading;
    const q = new URLSearchParams({ limit: String(state.limit) });
    if (state.status) q.set("status", state.status);
    const after = state.cursors[state.cursors.length - 1];
    if (after) q.set("after", after);
    body.setAttribute("aria-busy", "true");
    let page;
    try {
      page = await api(`/v1/videos?${q}`);
    } finally {
      body.removeAttribute("aria-busy");
    }
    if (!ctx.alive || ticket !== loading) return;
    stopAll();
    pageLabel.textContent = `Page ${state.cursors.length}`;
    prev.disabled = state.cursors.length <= 1;
    next.disabled = !page.has_more;
    next.dataset.after = page.last_id || "";
    body.dataset.firstId = page.first_id || "";
    if (!page.data.length) {
      clear(body, empty(state.status ? `No ${state.status} jobs.` : "No jobs yet: create one in the playground.", { "data-testid": "jobs-empty" }));
      return;
    }
    const rows = page.data.map((v) => jobRow(v, { onDeleted: (id) => removeRow(id) }));
    clear(
      body,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table jobs" },
          h("thead", {}, h("tr", {}, ["Job", "Created", "Model", "Prompt", "Status", "Output", "Cost", ""].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows),
        ),
      ),
    );
    for (const row of rows) {
      if (!TERMINAL.has(row.video.status)) {
        watchers.set(row.video.id, watchJob(row.video.id, { update: (v) => row.update(v), deleted: () => removeRow(row.video.id), error: ctx.fail }));
      }
    }
  };
  const reload = () => load().catch(ctx.fail);
  const removeRow = (id) => {
    watchers.get(id)?.stop();
    watchers.delete(id);
    const tr = body.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    tr?.remove();
    if (!body.querySelector("tr[data-id]")) {
      if (state.cursors.length > 1) state.cursors.pop();
      reload();
    }
  };

  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    state.cursors = [null];
    reload();
  });
  sizeSelect.addEventListener("change", () => {
    state.limit = Number(sizeSelect.value);
    state.cursors = [null];
    reload();
  });
  next.addEventListener("click", () => {
    if (!next.dataset.after) return;
    state.cursors.push(next.dataset.after);
    reload();
  });
  prev.addEventListener("click", () => {
    if (state.cursors.length > 1) state.cursors.pop();
    reload();
  });
  refresh.addEventListener("click", reload);

  clear(
    view,
    h("header", { class: "page-head" }, h("h1", {}, "Jobs"), h("p", { class: "muted" }, "Every video job of this key, newest first.")),
    h(
      "div",
      { class: "card" },
      h("div", { class: "toolbar" }, statusSelect, sizeSelect, refresh, h("span", { class: "spacer" }), pageLabel, prev, next),
      body,
    ),
  );
  await load();
}

function jobRow(video, { onDeleted }) {
  const tr = h("tr", { "data-testid": "job-row", "data-id": video.id });
  const bar = progressBar({ class: "progress progress-sm" });
  const pct = h("span", { class: "pct" });
  const badge = h("span", {});
  const running = h("div", { class: "row-progress" }, bar, pct);
  const cells = {
    status: h("td", { class: "status-cell" }, badge, running),
    output: h("td", { class: "nowrap" }),
    cost: h("td", { class: "num" }),
    actions: h("td", { class: "actions-cell" }),
  };
  tr.append(
    h("td", { class: "nowrap" }, h("a", { href: `#/jobs/${video.id}`, class: "mono", "data-testid": "job-link", title: video.id }, shortId(video.id))),
    h("td", { class: "nowrap", title: dateTime(video.created_at) }, dateTime(video.created_at).slice(5)),
    h("td", { class: "nowrap" }, video.model),
    h("td", { class: "prompt-cell", title: video.prompt || "" }, video.prompt || "—"),
    cells.status,
    cells.output,
    cells.cost,
    cells.actions,
  );
  tr.video = video;
  tr.update = (v) => {
    tr.video = v;
    tr.dataset.status = v.status;
    clear(badge, statusBadge(v.status, { "data-testid": "job-status" }));
    const done = v.status === "completed" ? 100 : v.progress ?? 0;
    bar.set(done, v.status);
    pct.textContent = `${done}%`;
    running.hidden = TERMINAL.has(v.status); // the bar is for jobs still under way
    const a = v.asset;
    cells.output.textContent = a ? `${a.width}×${a.height} · ${a.duration_seconds} s` : [v.size && v.size.replace("x", "×"), v.seconds !== undefined ? `${v.seconds} s` : null].filter(Boolean).join(" · ") || "—";
    const cost = v.usage && v.usage.cost ? v.usage.cost : v.billing ? v.billing.held || v.billing.settled : null;
    cells.cost.textContent = cost === null ? "—" : usd(cost, 4);
    clear(cells.actions, jobActions(v, { onChange: tr.update, onDeleted: () => onDeleted(v.id) }));
  };
  tr.update(video);
  return tr;
}
