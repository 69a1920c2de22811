// The dashboard's entry point: sign-in, the hash router and the page frame.

import { api, ApiError, session } from "./api.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { modelsPage } from "./models.js";
import { playgroundPage } from "./playground.js";
import { clear, clearError, h, showError } from "./ui.js";
import { usagePage } from "./usage.js";

const ROUTES = [
  [/^\/signin$/, "signin", signInPage],
  [/^\/playground$/, "playground", playgroundPage],
  [/^\/jobs$/, "jobs", jobsPage],
  [/^\/jobs\/([^/]+)$/, "jobs", jobPage],
  [/^\/models$/, "models", modelsPage],
  [/^\/usage$/, "usage", usagePage],
];

let current = null; // the page on screen: { alive, cleanups }
let keepBanner = false;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/playground";
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
  const key = session.key || "";
  document.querySelector('[data-testid="key-hint"]').textContent = key ? `${key.slice(0, 7)}…${key.slice(-4)}` : "";
}

async function route() {
  const { path, query } = parseHash();
  if (!signedIn() && path !== "/signin") return go("#/signin", { keepError: keepBanner });
  if (signedIn() && path === "/signin") return go("#/playground");
  if (current) {
    current.alive = false;
    for (const fn of current.cleanups) fn();
  }
  if (!keepBanner) clearError();
  keepBanner = false;
  frame();

  const match = ROUTES.map(([re, name, page]) => [path.match(re), name, page]).find(([m]) => m);
  const [m, name, page] = match || [null, "notfound", notFoundPage];
  for (const link of document.querySelectorAll(".nav a")) {
    link.classList.toggle("active", link.dataset.route === name);
  }
  const ctx = { alive: true, cleanups: [], params: m ? m.slice(1).map(decodeURIComponent) : [], query };
  ctx.cleanup = (fn) => ctx.cleanups.push(fn);
  ctx.fail = (err) => failed(ctx, err);
  current = ctx;
  const view = document.getElementById("view");
  view.dataset.page = name;
  clear(view, h("p", { class: "muted loading" }, "Loading…"));
  try {
    await page(view, ctx);
  } catch (err) {
    if (ctx.alive) failed(ctx, err, view, () => route());
  }
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
          await api("/v1/usage?days=1", { key });
          session.set(key);
          go("#/playground");
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
    h("p", { class: "muted" }, "Use an API key of this gateway (", h("code", {}, "vidgate keys create"), ")."),
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
