// The dashboard's entry point: sign-in, the hash router and the page frame.

import { adminJobsPage } from "./admin-jobs.js";
import { keysPage } from "./admin-keys.js";
import { ledgerPage } from "./admin-ledger.js";
import { ApiError, roleOf, session } from "./api.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { modelsPage } from "./models.js";
import { playgroundPage } from "./playground.js";
import { clear, clearError, h, showError } from "./ui.js";
import { usagePage } from "./usage.js";

// [path, nav entry, page, title, who may open it: "key" (an API key), "admin" (the admin key), or anyone]
const ROUTES = [
  [/^\/signin$/, "signin", signInPage, "Sign in", null],
  [/^\/playground$/, "playground", playgroundPage, "Playground", "key"],
  [/^\/jobs$/, "jobs", jobsPage, "Jobs", "key"],
  [/^\/jobs\/([^/]+)$/, "jobs", jobPage, "Job", "key"],
  [/^\/models$/, "models", modelsPage, "Models", "key"],
  [/^\/usage$/, "usage", usagePage, "Usage", "key"],
  [/^\/admin\/keys$/, "admin-keys", keysPage, "API keys", "admin"],
  [/^\/admin\/ledger$/, "admin-ledger", ledgerPage, "Ledger", "admin"],
  [/^\/admin\/jobs$/, "admin-jobs", adminJobsPage, "Request log", "admin"],
];

let current = null; // the page on screen: { alive, cleanups }
let keepBanner = false;
let navigated = false; // the first page of a load keeps the browser's own focus

const home = () => (session.admin ? "#/admin/keys" : "#/playground");

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || home().slice(1);
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

export function go(hash, { keepError = false } = {}) {
  keepBanner = keepError;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signedIn() {
  return Boolean(session.key);
}

function frame() {
  const shell = document.getElementById("shell");
  shell.dataset.signedIn = String(signedIn());
  shell.dataset.role = session.admin ? "admin" : "key";
  const key = session.key || "";
  const hint = session.admin ? "admin key" : key ? `${key.slice(0, 7)}…${key.slice(-4)}` : "";
  document.querySelector('[data-testid="key-hint"]').textContent = hint;
  // Each kind of key sees the pages it can use: an API key its videos, the admin key the keys.
  for (const link of document.querySelectorAll(".nav a[data-for]")) link.hidden = link.dataset.for !== (session.admin ? "admin" : "key");
  document.querySelector(".brand").setAttribute("href", home());
}

async function route() {
  const { path, query } = parseHash();
  if (!signedIn() && path !== "/signin") return go("#/signin", { keepError: keepBanner });
  if (signedIn() && path === "/signin") return go(home());
  if (current) {
    current.alive = false;
    for (const fn of current.cleanups) fn();
  }
  if (!keepBanner) clearError();
  keepBanner = false;
  frame();

  const match = ROUTES.map(([re, ...rest]) => [path.match(re), ...rest]).find(([m]) => m);
  let [m, name, page, title, who] = match || [null, "notfound", notFoundPage, "Not found", null];
  if (who && who !== (session.admin ? "admin" : "key")) [page, title] = [forbiddenPage(who), "Forbidden"];
  for (const link of document.querySelectorAll(".nav a")) {
    link.classList.toggle("active", link.dataset.route === name);
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const params = m ? m.slice(1).map(decodeURIComponent) : [];
  document.title = `${params[0] ? `${params[0]} · ` : ""}${title} · vidgate`;
  const ctx = { alive: true, cleanups: [], params, query };
  ctx.cleanup = (fn) => ctx.cleanups.push(fn);
  ctx.fail = (err) => failed(ctx, err);
  current = ctx;
  const view = document.getElementById("view");
  view.dataset.page = name;
  clear(view, h("p", { class: "muted loading" }, "Loading…"));
  try {
    await page(view, ctx);
  } catch (err) {
    // The API has the last word: an admin page it refuses for this key is the same 403 page.
    if (ctx.alive && who === "admin" && err instanceof ApiError && err.status === 403) forbiddenPage(who)(view);
    else if (ctx.alive) failed(ctx, err, view, () => route());
  }
  if (ctx.alive && navigated && name !== "signin") focusHeading(view);
  navigated = true;
}

/** After a navigation, focus goes to the new page's heading, as a screen reader expects. */
function focusHeading(view) {
  if (view.contains(document.activeElement) && document.activeElement !== view) return; // the page put it somewhere
  const heading = view.querySelector("h1") || view;
  if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
  heading.focus({ preventScroll: true });
}

/** Show an error from the API; a rejected key sends the tab back to sign-in with the message kept. */
function failed(ctx, err, view, retry) {
  if (!ctx.alive) return;
  console.error(err);
  showError(err, err instanceof ApiError ? "The API answered with an error" : "Something went wrong");
  if (err instanceof ApiError && err.status === 401 && signedIn()) {
    session.clear();
    go("#/signin", { keepError: true });
    return;
  }
  if (view && retry) {
    clear(
      view,
      h(
        "div",
        { class: "card failed", "data-testid": "page-failed" },
        h("h2", { class: "card-title" }, "This page could not be loaded"),
        h("p", { class: "muted" }, "The error is shown above."),
        h("button", { type: "button", class: "btn", onclick: retry }, "Try again"),
      ),
    );
  }
}

function signInPage(view) {
  const input = h("input", {
    type: "password",
    id: "api-key",
    name: "api-key",
    class: "input",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "vg_…",
    required: true,
    "data-testid": "api-key",
  });
  const button = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "sign-in" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin-card card",
      "data-testid": "signin-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        button.disabled = true;
        button.textContent = "Checking…";
        try {
          session.set(key, await roleOf(key));
          go(home());
        } catch (err) {
          showError(err, "Sign-in failed");
          input.select();
        } finally {
          button.disabled = false;
          button.textContent = "Sign in";
        }
      },
    },
    h("div", { class: "brand brand-lg" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "▶"), " vidgate"),
    h("h1", { class: "signin-title" }, "Sign in to the dashboard"),
    h("p", { class: "muted" }, "Use an API key of this gateway (", h("code", {}, "vidgate keys create"), "), or its admin key to manage keys."),
    h("label", { for: "api-key", class: "label" }, "API key"),
    input,
    button,
    h(
      "p",
      { class: "fine-print" },
      "The key is kept in this tab's session storage only and is sent to this gateway alone. Closing the tab or signing out forgets it.",
    ),
  );
  clear(view, h("div", { class: "signin" }, form));
  input.focus();
}

/** A page the signed-in key may not open: said plainly, with the way to what it can open. */
function forbiddenPage(who) {
  return (view) =>
    clear(
      view,
      h(
        "div",
        { class: "card forbidden", "data-testid": "forbidden" },
        h("h1", {}, "403: not for this key"),
        who === "admin"
          ? h("p", {}, "This page is for the gateway's admin key (VIDGATE_ADMIN_KEY). The key this tab is signed in with is an API key: it sees its own jobs and usage, not other keys'.")
          : h("p", {}, "This page is for an API key. The admin key manages keys and reads the ledger and request log; sign in with an API key to make and watch videos."),
        h("a", { href: home() }, session.admin ? "Go to the API keys" : "Go to the playground"),
      ),
    );
}

function notFoundPage(view) {
  clear(
    view,
    h(
      "div",
      { class: "card" },
      h("h2", { class: "card-title" }, "No such page"),
      h("a", { href: "#/playground" }, "Go to the playground"),
    ),
  );
}

function start() {
  document.getElementById("sign-out").addEventListener("click", () => {
    session.clear();
    go("#/signin");
  });
  document.getElementById("error-close").addEventListener("click", clearError);
  // The hash is the router's: the skip link moves focus itself rather than changing it.
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const view = document.getElementById("view");
    (view.querySelector("h1") || view).focus();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("error", (event) => showError(event.error || event.message, "Something went wrong"));
  window.addEventListener("unhandledrejection", (event) => {
    const err = event.reason;
    if (current && err instanceof ApiError) failed(current, err);
    else showError(err, "Something went wrong");
  });
  route();
}

start();
