// What the admin pages share: the keys by id, keyset paging with Next / Previous, filters kept in the
// URL, and a filtered listing that loads its pages into a table.

import { api } from "./api.js";
import { clear, h } from "./ui.js";

export const PAGE_SIZES = [10, 25, 50, 100];

/** Every key with its account (``GET /v1/admin/accounts``), newest first, and a lookup by id. */
export async function keyDirectory() {
  const { data } = await api("/v1/admin/accounts");
  return { list: data, byId: new Map(data.map((k) => [k.id, k])) };
}

/** A key as a person reads it: its name and the start of its secret. */
export function keyLabel(account, id) {
  return account ? `${account.name} (${account.prefix}…)` : id;
}

/** A ``<select>`` of every key (and "All keys"), for filters. */
export function keySelect(keys, selected, attrs = {}) {
  return h(
    "select",
    { class: "input input-sm", "aria-label": "Key", ...attrs },
    h("option", { value: "" }, "All keys"),
    keys.list.map((k) => h("option", { value: k.id, selected: k.id === selected }, `${keyLabel(k)}${k.revoked_at ? " · revoked" : ""}`)),
  );
}

/** Read filters from the page's query, each checked by ``accept`` (else its default). */
export function readFilters(query, defaults, accept = {}) {
  const out = {};
  for (const [name, fallback] of Object.entries(defaults)) {
    const raw = query.get(name);
    const ok = raw !== null && (accept[name] ? accept[name](raw) : true);
    out[name] = ok ? (typeof fallback === "number" ? Number(raw) : raw) : fallback;
  }
  return out;
}

/** Keep ``filters`` in the URL (those at their default left out), without a navigation. */
export function writeFilters(route, filters, defaults) {
  const p = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) if (value !== "" && value !== defaults[name]) p.set(name, String(value));
  const hash = `#${route}${p.size ? `?${p}` : ""}`;
  if (location.hash !== hash) history.replaceState(null, "", hash); // no hashchange: the page stays
}

/** Next / Previous over a keyset listing: the cursors of the pages seen, newest page first. */
export function pager(reload) {
  const cursors = [null];
  const label = h("span", { class: "muted", "data-testid": "page-number" });
  const prev = h("button", { type: "button", class: "btn btn-sm", "data-testid": "prev-page" }, "← Previous");
  const next = h("button", { type: "button", class: "btn btn-sm", "data-testid": "next-page" }, "Next →");
  next.addEventListener("click", () => {
    if (!next.dataset.after) return;
    cursors.push(next.dataset.after);
    reload();
  });
  prev.addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    reload();
  });
  return {
    controls: [label, prev, next],
    after: () => cursors[cursors.length - 1],
    reset() {
      cursors.length = 1;
    },
    show(page) {
      label.textContent = `Page ${cursors.length}`;
      prev.disabled = cursors.length <= 1;
      next.disabled = !page.has_more;
      next.dataset.after = page.last_id || "";
    },
  };
}

/** A labelled size-of-page ``<select>``. */
export function sizeSelect(selected) {
  return h(
    "select",
    { class: "input input-sm", "data-testid": "page-size", "aria-label": "Rows per page" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === selected }, `${n} per page`)),
  );
}

/**
 * A filtered keyset listing of ``endpoint`` shown in ``body``: ``state`` holds the page size and the
 * ``filters`` (sent when set, kept in the URL under ``route``); ``rows(data)`` draws a page and
 * ``none(filtered)`` an empty one. ``load`` fetches the current page (a newer load wins),
 * ``refilter`` starts again from the first; ``controls`` are the pager's.
 */
export function pagedListing({ ctx, route, endpoint, state, defaults, filters, body, rows, none }) {
  let loading = 0;
  const load = async () => {
    const ticket = ++loading;
    writeFilters(route, state, defaults);
    const q = new URLSearchParams({ limit: String(state.limit) });
    for (const name of filters) if (state[name]) q.set(name, state[name]);
    if (pages.after()) q.set("after", pages.after());
    body.setAttribute("aria-busy", "true");
    let page;
    try {
      page = await api(`${endpoint}?${q}`);
    } finally {
      body.removeAttribute("aria-busy");
    }
    if (!ctx.alive || ticket !== loading) return;
    pages.show(page);
    clear(body, page.data.length ? rows(page.data) : none(filters.some((name) => state[name])));
  };
  const reload = () => load().catch(ctx.fail);
  const pages = pager(reload);
  const refilter = () => {
    pages.reset();
    reload();
  };
  return { load, refilter, controls: pages.controls };
}

/** On each change of ``select``, set ``state[name]`` to its (``parse``d) value and start from the first page. */
export function follow(select, state, name, refilter, parse = (value) => value) {
  select.addEventListener("change", () => {
    state[name] = parse(select.value);
    refilter();
  });
}
