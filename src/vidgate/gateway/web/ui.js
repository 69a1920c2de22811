// DOM helpers, formatting and the error banner. Text always goes in as text nodes, never as HTML.

import { session } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "value" || name === "checked" || name === "selected" || name === "disabled") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- the error banner ---------------------------------------------------------------------------

const banner = () => document.getElementById("error-banner");

/** Show an API error as the API worded it (message, then param, code and request id). */
export function showError(err, title = "Error") {
  const el = banner();
  document.getElementById("error-title").textContent = err && err.status ? `${title} (${err.status})` : title;
  document.getElementById("error-message").textContent = (err && err.message) || String(err);
  const meta = [];
  if (err && err.param) meta.push(`param: ${err.param}`);
  if (err && err.code) meta.push(`code: ${err.code}`);
  if (err && err.requestId) meta.push(`request: ${err.requestId}`);
  const metaEl = document.getElementById("error-meta");
  metaEl.textContent = meta.join(" · ");
  metaEl.dataset.param = (err && err.param) || "";
  el.hidden = false;
}

export function clearError() {
  banner().hidden = true;
}

// ---- formatting ---------------------------------------------------------------------------------

const CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz";

/** The millisecond timestamp inside a ``prefix_ULID`` id (ids are time-sortable ULIDs). */
export function idTime(id) {
  const ulid = String(id || "").split("_").pop().toLowerCase();
  if (ulid.length !== 26) return null;
  let ms = 0;
  for (const ch of ulid.slice(0, 10)) {
    const v = CROCKFORD.indexOf(ch);
    if (v < 0) return null;
    ms = ms * 32 + v;
  }
  return ms;
}

export function dateTime(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function timeOfDay(ms, precise = true) {
  const d = new Date(ms);
  const clock = d.toLocaleTimeString("en-GB", { hour12: false });
  return precise ? `${clock}.${String(d.getMilliseconds()).padStart(3, "0")}` : clock;
}

export function usd(value, digits) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  const places = digits ?? (Math.abs(n) > 0 && Math.abs(n) < 1 ? 4 : 2);
  return `$${n.toFixed(places)}`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export const number = (n) => Number(n).toLocaleString("en-US");

export function seconds(v) {
  if (v === null || v === undefined) return "—";
  return `${Number(v).toFixed(Number.isInteger(Number(v)) ? 0 : 2)} s`;
}

export function shortId(id) {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;
}

// ---- small widgets ------------------------------------------------------------------------------

export function statusBadge(status, attrs = {}) {
  return h("span", { class: `badge status-${status}`, "data-status": status, ...attrs }, status);
}

export function progressBar(attrs = {}) {
  const fill = h("div", { class: "progress-fill" });
  const el = h("div", { class: "progress", role: "progressbar", "aria-label": "Progress", "aria-valuemin": 0, "aria-valuemax": 100, ...attrs }, fill);
  el.set = (pct, status) => {
    const v = Math.max(0, Math.min(100, Math.round(pct || 0)));
    fill.style.width = `${v}%`;
    el.setAttribute("aria-valuenow", v);
    el.dataset.status = status || "";
  };
  el.set(0);
  return el;
}

let sections = 0;

export function section(title, ...children) {
  const id = `section-${++sections}`;
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { class: "card-title", id }, title), ...children);
}

// Poster frames fetched with the key (an <img> cannot send it), kept as blob: URLs for the tab's life.
const thumbs = new Map();

function thumbURL(id) {
  if (!thumbs.has(id)) {
    const url = fetch(`/v1/videos/${encodeURIComponent(id)}/content?variant=thumbnail`, {
      headers: { Authorization: `Bearer ${session.key}` },
    }).then((res) => (res.ok ? res.blob().then((b) => URL.createObjectURL(b)) : null), () => null);
    thumbs.set(id, url);
    url.then((u) => u || thumbs.delete(id)); // a job not yet completed may have one later
  }
  return thumbs.get(id);
}

/** A job's poster frame (completed jobs), or a placeholder of the same size. */
export function thumbnail(id, status, label = "") {
  const box = h("span", { class: "thumb-box", "data-testid": "thumbnail", "data-status": status || "" });
  if (status === "completed") {
    thumbURL(id).then((url) => {
      if (url) box.replaceChildren(h("img", { class: "thumb-img", src: url, alt: label ? `Poster frame: ${label}` : "Poster frame" }));
    });
  }
  return box;
}

/** A table; a header may be ``[text, class]`` (``"num"`` right-aligns a column of figures). */
export function table(headers, rows, attrs = {}) {
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": attrs["aria-label"] || "Table" },
    h(
      "table",
      { class: "table", ...attrs },
      h("thead", {}, h("tr", {}, headers.map((t) => (Array.isArray(t) ? h("th", { class: t[1] }, t[0]) : h("th", {}, t))))),
      h("tbody", {}, rows),
    ),
  );
}

export function empty(text, attrs = {}) {
  return h("p", { class: "empty", ...attrs }, text);
}

/** A definition list from [label, value] pairs, skipping undefined values. */
export function details(pairs, attrs = {}) {
  return h(
    "dl",
    { class: "kv", ...attrs },
    pairs.filter(([, v]) => v !== undefined).map(([k, v, testid]) => [
      h("dt", {}, k),
      h("dd", testid ? { "data-testid": testid } : {}, v ?? "—"),
    ]),
  );
}
