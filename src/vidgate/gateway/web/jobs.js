// The jobs table: filters kept in the URL (status, model, prompt search, page size), keyset pages
// (Next / Previous), thumbnails, cancel and delete, live rows and new jobs appearing as they are made.

import { api, TERMINAL, watchJob } from "./api.js";
import { jobActions } from "./job.js";
import { clear, dateTime, empty, h, progressBar, shortId, statusBadge, thumbnail, usd } from "./ui.js";

const STATUSES = ["queued", "processing", "completed", "failed", "cancelled", "expired"];
const PAGE_SIZES = [5, 10, 20, 50, 100];
const NEW_ROWS_EVERY_MS = 4000;

// The cursors of the pages seen, kept for the tab's life for the filters they were read under.
let pages = { filters: "", cursors: [null] };

export async function jobsPage(view, ctx) {
  const q = ctx.query;
  const state = {
    status: STATUSES.includes(q.get("status")) ? q.get("status") : "",
    model: q.get("model") || "",
    q: q.get("q") || "",
    limit: PAGE_SIZES.includes(Number(q.get("limit"))) ? Number(q.get("limit")) : 20,
    cursors: [null],
  };
  const filterKey = () => JSON.stringify([state.status, state.model, state.q, state.limit]);
  if (pages.filters === filterKey()) state.cursors = pages.cursors;
  const toURL = () => {
    const p = new URLSearchParams();
    for (const k of ["status", "model", "q"]) if (state[k]) p.set(k, state[k]);
    if (state.limit !== 20) p.set("limit", String(state.limit));
    const hash = `#/jobs${p.size ? `?${p}` : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash); // no hashchange: the page stays
    pages = { filters: filterKey(), cursors: state.cursors };
  };
  const { data: models } = await api("/v1/videos/models?include_retired=true");
  if (!ctx.alive) return;
  const modelSelect = h(
    "select",
    { class: "input input-sm", "data-testid": "model-filter", "aria-label": "Model" },
    h("option", { value: "" }, "All models"),
    models.map((m) => h("option", { value: m.id, selected: m.id === state.model }, m.id)),
  );
  const search = h("input", { type: "search", class: "input input-sm", placeholder: "Search prompts", value: state.q, "aria-label": "Search prompts", "data-testid": "search" });
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

  const query = () => {
    const q = new URLSearchParams({ limit: String(state.limit) });
    for (const k of ["status", "model", "q"]) if (state[k]) q.set(k, state[k]);
    return q;
  };
  let loading = 0;
  const load = async () => {
    const ticket = ++loading;
    toURL();
    const q = query();
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
      const filtered = state.status || state.model || state.q;
      clear(body, empty(filtered ? "No jobs match these filters." : "No jobs yet: create one in the playground.", { "data-testid": "jobs-empty" }));
      return;
    }
    const rows = page.data.map(makeRow);
    clear(
      body,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "table jobs" },
          h("thead", {}, h("tr", {}, ["", "Job", "Created", "Model", "Prompt", "Status", "Output", "Cost", h("span", { class: "visually-hidden" }, "Actions")].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows),
        ),
      ),
    );
    for (const row of rows) watchRow(row);
  };
  const makeRow = (v) => jobRow(v, { onDeleted: (id) => removeRow(id) });
  const watchRow = (row) => {
    if (!TERMINAL.has(row.video.status)) {
      watchers.set(row.video.id, watchJob(row.video.id, { update: (v) => row.update(v), deleted: () => removeRow(row.video.id), error: ctx.fail }));
    }
  };
  // New jobs (made elsewhere, or in another tab) appear at the top of the first page, newest first.
  let newTimer = null;
  ctx.cleanup(() => clearTimeout(newTimer));
  const checkNew = async () => {
    const tbody = body.querySelector("tbody");
    if (state.cursors.length === 1 && !document.hidden) {
      try {
        const page = await api(`/v1/videos?${query()}`);
        if (!ctx.alive) return;
        const shown = new Set([...body.querySelectorAll("tr[data-id]")].map((tr) => tr.dataset.id));
        const newest = body.querySelector("tr[data-id]")?.dataset.id || "";
        const fresh = page.data.filter((v) => !shown.has(v.id) && v.id > newest);
        if (fresh.length && !tbody) return reload().then(schedule);
        const rows = fresh.map(makeRow);
        for (const row of rows.reverse()) {
          row.classList.add("fresh");
          tbody.prepend(row);
          watchRow(row);
        }
        const all = [...tbody.querySelectorAll("tr[data-id]")];
        for (const tr of all.slice(state.limit)) tr.remove(); // the page keeps its size; Next finds them
      } catch (err) {
        if (err.status === 401) return ctx.fail(err);
      }
    }
    schedule();
  };
  const schedule = () => {
    clearTimeout(newTimer);
    if (ctx.alive) newTimer = setTimeout(checkNew, NEW_ROWS_EVERY_MS);
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

  const refilter = () => {
    state.cursors = [null];
    reload();
  };
  statusSelect.addEventListener("change", () => {
    state.status = statusSelect.value;
    refilter();
  });
  modelSelect.addEventListener("change", () => {
    state.model = modelSelect.value;
    refilter();
  });
  let searchTimer = null;
  ctx.cleanup(() => clearTimeout(searchTimer));
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      state.q = search.value.trim();
      refilter();
    }, 300);
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
    h("header", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Jobs"), h("p", { class: "muted" }, "Every video job of this key, newest first.")),
    h(
      "div",
      { class: "card" },
      h("div", { class: "toolbar", role: "search" }, search, statusSelect, modelSelect, sizeSelect, refresh, h("span", { class: "spacer" }), pageLabel, prev, next),
      body,
    ),
  );
  await load();
  schedule();
}

function jobRow(video, { onDeleted }) {
  const tr = h("tr", { "data-testid": "job-row", "data-id": video.id });
  const bar = progressBar({ class: "progress progress-sm" });
  const pct = h("span", { class: "pct" });
  const badge = h("span", {});
  const running = h("div", { class: "row-progress" }, bar, pct);
  const thumbCell = h("td", { class: "thumb-cell" }, thumbnail(video.id, video.status, video.prompt));
  const cells = {
    status: h("td", { class: "status-cell" }, badge, running),
    output: h("td", { class: "nowrap" }),
    cost: h("td", { class: "num" }),
    actions: h("td", { class: "actions-cell" }),
  };
  tr.append(
    thumbCell,
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
    if (v.status === "completed" && thumbCell.firstChild?.dataset.status !== "completed") clear(thumbCell, thumbnail(v.id, v.status, v.prompt));
    const a = v.asset;
    cells.output.textContent = a ? `${a.width}×${a.height} · ${a.duration_seconds} s` : [v.size && v.size.replace("x", "×"), v.seconds !== undefined ? `${v.seconds} s` : null].filter(Boolean).join(" · ") || "—";
    const cost = v.usage && v.usage.cost ? v.usage.cost : v.billing ? v.billing.held || v.billing.settled : null;
    cells.cost.textContent = cost === null ? "—" : usd(cost, 4);
    clear(cells.actions, jobActions(v, { onChange: tr.update, onDeleted: () => onDeleted(v.id) }));
  };
  tr.update(video);
  return tr;
}
