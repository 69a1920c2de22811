// The ledger of every key (or one): top-ups, holds, releases and charges, newest first, in keyset
// pages; the key and kind filters and the page size kept in the URL.

import { follow, keyDirectory, keyLabel, keySelect, PAGE_SIZES, pagedListing, readFilters, sizeSelect } from "./admin.js";
import { clear, dateTime, empty, h, shortId, table, usd } from "./ui.js";

const KINDS = ["topup", "hold", "release", "charge", "adjust"];
const DEFAULTS = { key_id: "", kind: "", limit: 25 };

export async function ledgerPage(view, ctx) {
  const keys = await keyDirectory();
  if (!ctx.alive) return;
  const state = readFilters(ctx.query, DEFAULTS, {
    key_id: (v) => keys.byId.has(v),
    kind: (v) => KINDS.includes(v),
    limit: (v) => PAGE_SIZES.includes(Number(v)),
  });
  const body = h("div", { "data-testid": "ledger-table" });
  const keyFilter = keySelect(keys, state.key_id, { "data-testid": "ledger-key" });
  const kindFilter = h(
    "select",
    { class: "input input-sm", "data-testid": "ledger-kind", "aria-label": "Kind" },
    h("option", { value: "" }, "All kinds"),
    KINDS.map((k) => h("option", { value: k, selected: k === state.kind }, k)),
  );
  const size = sizeSelect(state.limit);
  const listing = pagedListing({
    ctx,
    route: "/admin/ledger",
    endpoint: "/v1/admin/ledger",
    state,
    defaults: DEFAULTS,
    filters: ["key_id", "kind"],
    body,
    none: (filtered) => empty(filtered ? "No entries match these filters." : "No ledger entries yet.", { "data-testid": "ledger-empty" }),
    rows: (data) =>
      table(
        ["When", "Key", "Kind", ["Amount", "num"], "Job", "Model", "Memo"],
        data.map((e) =>
          h(
            "tr",
            { "data-testid": "ledger-row", "data-id": e.id, "data-kind": e.kind, "data-key": e.key_id },
            h("td", { class: "nowrap" }, dateTime(e.created_at)),
            h("td", { class: "nowrap" }, keyLabel(keys.byId.get(e.key_id), e.key_id)),
            h("td", {}, h("span", { class: `badge ledger-${e.kind}` }, e.kind)),
            h("td", { class: "num", "data-testid": "ledger-amount" }, usd(e.amount, 4)),
            h("td", { class: "nowrap" }, e.job_id ? h("code", { title: e.job_id }, shortId(e.job_id)) : "—"),
            h("td", { class: "nowrap" }, e.model ? h("code", {}, e.model) : "—"),
            h("td", { class: "wrap" }, e.memo || "—"),
          ),
        ),
        { "aria-label": "Ledger entries" },
      ),
  });
  follow(keyFilter, state, "key_id", listing.refilter);
  follow(kindFilter, state, "kind", listing.refilter);
  follow(size, state, "limit", listing.refilter, Number);
  clear(
    view,
    h("header", { class: "page-head" }, h("h1", {}, "Ledger"), h("p", { class: "muted" }, "Every movement of every key's funds, newest first. Amounts in USD; a negative amount takes from the balance or the hold.")),
    h("div", { class: "card" }, h("div", { class: "toolbar", role: "search" }, keyFilter, kindFilter, size, h("span", { class: "spacer" }), ...listing.controls), body),
  );
  await listing.load();
}

/** The ledger page filtered to one key. */
export const ledgerOf = (keyId) => `#/admin/ledger?${new URLSearchParams({ key_id: keyId })}`;
