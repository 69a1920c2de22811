// The request log: recent jobs of every key with status, model, provider and cost, newest first, in
// keyset pages; key, status, model and provider filters and the page size kept in the URL.

import { follow, keyDirectory, keyLabel, keySelect, PAGE_SIZES, pagedListing, readFilters, sizeSelect } from "./admin.js";
import { clear, dateTime, empty, h, shortId, statusBadge, table, usd } from "./ui.js";

const STATUSES = ["queued", "processing", "completed", "failed", "cancelled", "expired"];
const DEFAULTS = { key_id: "", status: "", model: "", provider: "", limit: 25 };

export async function adminJobsPage(view, ctx) {
  const keys = await keyDirectory();
  if (!ctx.alive) return;
  const state = readFilters(ctx.query, DEFAULTS, {
    key_id: (v) => keys.byId.has(v),
    status: (v) => STATUSES.includes(v),
    limit: (v) => PAGE_SIZES.includes(Number(v)),
  });
  const body = h("div", { "data-testid": "log-table" });
  const keyFilter = keySelect(keys, state.key_id, { "data-testid": "log-key" });
  const statusFilter = h(
    "select",
    { class: "input input-sm", "data-testid": "log-status", "aria-label": "Status" },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)),
  );
  const text = (name, label) =>
    h("input", { type: "search", class: "input input-sm", placeholder: label, "aria-label": label, value: state[name], "data-testid": `log-${name}`, spellcheck: "false" });
  const modelFilter = text("model", "Model id");
  const providerFilter = text("provider", "Provider");
  const size = sizeSelect(state.limit);
  const listing = pagedListing({
    ctx,
    route: "/admin/jobs",
    endpoint: "/v1/admin/jobs",
    state,
    defaults: DEFAULTS,
    filters: ["key_id", "status", "model", "provider"],
    body,
    none: (filtered) => empty(filtered ? "No jobs match these filters." : "No jobs yet.", { "data-testid": "log-empty" }),
    rows: (data) =>
      table(
        ["Job", "Created", "Key", "Model", "Provider", "Status", ["Cost", "num"], "Error"],
        data.map((j) =>
          h(
            "tr",
            { "data-testid": "log-row", "data-id": j.id, "data-key": j.key_id, "data-status": j.status },
            h("td", { class: "nowrap" }, h("code", { title: j.id }, shortId(j.id))),
            h("td", { class: "nowrap" }, dateTime(j.created_at)),
            h("td", { class: "nowrap" }, keyLabel(keys.byId.get(j.key_id), j.key_id)),
            h("td", { class: "nowrap" }, h("code", {}, j.model)),
            h("td", { class: "nowrap" }, j.provider ? `${j.provider}${j.is_byok ? " (own key)" : ""}` : "—"),
            h("td", {}, statusBadge(j.status, { "data-testid": "log-status-badge" })),
            h("td", { class: "num", "data-testid": "log-cost", title: `billing ${j.billing_state}` }, usd(j.cost, 4)),
            h("td", { class: "wrap" }, j.error_code ? h("span", { title: j.error_message || "" }, h("code", {}, j.error_code), ": ", j.error_message || "") : "—"),
          ),
        ),
        { "aria-label": "Jobs of every key" },
      ),
  });
  const { refilter } = listing;
  follow(keyFilter, state, "key_id", refilter);
  follow(statusFilter, state, "status", refilter);
  for (const [input, name] of [[modelFilter, "model"], [providerFilter, "provider"]]) {
    let timer = null;
    ctx.cleanup(() => clearTimeout(timer));
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        state[name] = input.value.trim();
        refilter();
      }, 300);
    });
  }
  follow(size, state, "limit", refilter, Number);
  clear(
    view,
    h("header", { class: "page-head" }, h("h1", {}, "Request log"), h("p", { class: "muted" }, "Every key's jobs, newest first: the cost is the charge once settled, the hold while running.")),
    h(
      "div",
      { class: "card" },
      h("div", { class: "toolbar", role: "search" }, keyFilter, statusFilter, modelFilter, providerFilter, size, h("span", { class: "spacer" }), ...listing.controls),
      body,
    ),
  );
  await listing.load();
}

/** The request log filtered to one key. */
export const jobsOf = (keyId) => `#/admin/jobs?${new URLSearchParams({ key_id: keyId })}`;
