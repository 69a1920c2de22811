// API keys: every key with its funds, limits and live jobs; create one (its secret shown once, with a
// copy button); manage one: top up, edit its limits, revoke (after a confirming second click).

import { jobsOf } from "./admin-jobs.js";
import { ledgerOf } from "./admin-ledger.js";
import { keyDirectory } from "./admin.js";
import { api } from "./api.js";
import { clear, dateTime, details, empty, h, number, showError, table, usd } from "./ui.js";

// [field, label, unit, step]: blank means no limit (the API's null).
const LIMITS = [
  ["daily_limit", "Daily spend limit", "USD", "any"],
  ["monthly_limit", "Monthly spend limit", "USD", "any"],
  ["rate_per_second", "Requests per second", "per second", "1"],
  ["rate_burst", "Request burst", "requests", "1"],
  ["max_concurrent_jobs", "Jobs at once", "jobs", "1"],
];

export async function keysPage(view, ctx) {
  const list = h("div", { "data-testid": "keys-table" });
  const editor = h("div", {});
  const secret = h("div", {});
  let keys = await keyDirectory();
  if (!ctx.alive) return;
  let managed = null; // the id of the key in the editor

  const reload = async () => {
    keys = await keyDirectory();
    if (!ctx.alive) return;
    render();
  };
  const render = () => {
    clear(
      list,
      keys.list.length
        ? table(
            ["Name", "Key", "Created", "Status", ["Balance", "num"], ["Held", "num"], ["Available", "num"], ["Live jobs", "num"], "Limits", h("span", { class: "visually-hidden" }, "Actions")],
            keys.list.map((k) => keyRow(k, () => manage(k.id))),
            { "aria-label": "API keys" },
          )
        : empty("No API keys yet: create the first one above.", { "data-testid": "keys-empty" }),
    );
    const current = managed && keys.byId.get(managed);
    clear(editor, current ? keyEditor(current, { reload, close: () => manage(null) }) : null);
  };
  const manage = (id) => {
    managed = id;
    render();
    editor.querySelector("h2")?.focus();
  };

  const name = h("input", { class: "input", id: "key-name", name: "name", required: true, maxlength: 200, autocomplete: "off", "data-testid": "new-key-name" });
  const balance = h("input", { class: "input", id: "key-balance", name: "balance", type: "number", min: "0", step: "any", inputmode: "decimal", "data-testid": "new-key-balance" });
  const create = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "create-key" }, "Create key");
  const form = h(
    "form",
    {
      class: "inline-form",
      "data-testid": "create-key-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { name: name.value.trim() };
        if (balance.value !== "") body.balance = Number(balance.value);
        create.disabled = true;
        try {
          const made = await api("/v1/admin/keys", { method: "POST", body });
          if (!ctx.alive) return;
          form.reset();
          clear(secret, secretCard(made, () => clear(secret)));
          secret.querySelector("input").focus();
          await reload();
        } catch (err) {
          showError(err, "Could not create the key");
        } finally {
          create.disabled = false;
        }
      },
    },
    field("key-name", "Name", name),
    field("key-balance", "Opening balance (USD)", balance, "Blank: the gateway's default"),
    create,
  );

  clear(
    view,
    h("header", { class: "page-head" }, h("h1", {}, "API keys"), h("p", { class: "muted" }, "Every key of this gateway with its funds and limits. Secrets are stored hashed: a key's secret is shown once, when it is made.")),
    h("section", { class: "card", "aria-labelledby": "create-key-title" }, h("h2", { class: "card-title", id: "create-key-title" }, "Create a key"), form),
    secret,
    editor,
    h("section", { class: "card", "aria-labelledby": "keys-title" }, h("h2", { class: "card-title", id: "keys-title" }, "Keys"), list),
  );
  render();
}

function field(id, label, input, hint) {
  return h("div", { class: "field" }, h("label", { class: "label", for: id }, label), input, hint ? h("p", { class: "hint" }, hint) : null);
}

function limitsSummary(limits) {
  const parts = [];
  if (limits.daily_limit !== null) parts.push(`${usd(limits.daily_limit, 2)}/day`);
  if (limits.monthly_limit !== null) parts.push(`${usd(limits.monthly_limit, 2)}/month`);
  if (limits.rate_per_second !== null) parts.push(`${limits.rate_per_second}/s`);
  if (limits.max_concurrent_jobs !== null) parts.push(`${limits.max_concurrent_jobs} at once`);
  return parts.join(" · ") || "defaults";
}

function keyRow(k, onManage) {
  return h(
    "tr",
    { "data-testid": "key-row", "data-id": k.id, "data-revoked": k.revoked_at ? "true" : "false" },
    h("td", { class: "key-name" }, k.name),
    h("td", { class: "nowrap" }, h("code", { title: k.id }, `${k.prefix}…`)),
    h("td", { class: "nowrap" }, dateTime(k.created_at)),
    h("td", {}, k.revoked_at ? h("span", { class: "badge key-revoked" }, "revoked") : h("span", { class: "badge key-active" }, "active")),
    h("td", { class: "num", "data-testid": "key-balance" }, usd(k.balance, 4)),
    h("td", { class: "num" }, usd(k.held, 4)),
    h("td", { class: "num", "data-testid": "key-available" }, usd(k.available, 4)),
    h("td", { class: "num" }, number(k.live_jobs)),
    h("td", { "data-testid": "key-limits" }, limitsSummary(k.limits)),
    h("td", { class: "actions-cell" }, h("button", { type: "button", class: "btn btn-sm", "data-testid": "manage-key", "aria-label": `Manage ${k.name}`, onclick: onManage }, "Manage")),
  );
}

/** The new key's secret, once: a read-only field to select and a Copy button. */
function secretCard(made, done) {
  const input = h("input", { class: "input mono", id: "new-secret", readonly: true, value: made.key, "data-testid": "new-key-secret", spellcheck: "false" });
  const status = h("span", { class: "muted", role: "status", "data-testid": "copy-status" });
  const copy = async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(made.key);
      status.textContent = "Copied to the clipboard.";
    } catch {
      // No clipboard permission (an insecure origin, a refused prompt): the selection can be copied.
      status.textContent = document.execCommand("copy") ? "Copied to the clipboard." : "Selected: copy it with Ctrl+C or ⌘C.";
    }
  };
  return h(
    "section",
    { class: "card secret-card", "aria-labelledby": "secret-title", "data-testid": "new-key" },
    h("h2", { class: "card-title", id: "secret-title" }, `Key “${made.name}” created: copy its secret now`),
    h("p", { class: "muted" }, "This is the only time it is shown. The gateway keeps a hash of it, never the secret."),
    h("label", { class: "label", for: "new-secret" }, "Secret"),
    h("div", { class: "secret-row" }, input, h("button", { type: "button", class: "btn", "data-testid": "copy-key", onclick: copy }, "Copy")),
    status,
    h("div", {}, h("button", { type: "button", class: "btn btn-ghost", "data-testid": "secret-done", onclick: done }, "Done: hide it")),
  );
}

/** One key's funds, a top-up form, its limits to edit, and revoke. */
function keyEditor(k, { reload, close }) {
  const act = async (button, title, call) => {
    button.disabled = true;
    try {
      await call();
      await reload();
    } catch (err) {
      showError(err, title);
    } finally {
      button.disabled = false;
    }
  };
  const id = encodeURIComponent(k.id);

  const amount = h("input", { class: "input", id: "topup-amount", type: "number", step: "any", required: true, inputmode: "decimal", "data-testid": "topup-amount" });
  const memo = h("input", { class: "input", id: "topup-memo", maxlength: 200, "data-testid": "topup-memo" });
  const topupButton = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "topup-submit" }, "Add funds");
  const topup = h(
    "form",
    {
      class: "inline-form",
      "data-testid": "topup-form",
      onsubmit: (event) => {
        event.preventDefault();
        const body = { amount: Number(amount.value) };
        if (memo.value.trim()) body.memo = memo.value.trim();
        act(topupButton, "Could not top up", () => api(`/v1/admin/keys/${id}/topup`, { method: "POST", body }));
      },
    },
    field("topup-amount", "Amount (USD)", amount, "A negative amount takes funds away"),
    field("topup-memo", "Memo", memo),
    topupButton,
  );

  const inputs = LIMITS.map(([name, , unit, step]) =>
    h("input", { class: "input", id: `limit-${name}`, name, type: "number", min: "0", step, inputmode: step === "1" ? "numeric" : "decimal", value: k.limits[name] ?? "", placeholder: "no limit", "data-testid": `limit-${name}`, "aria-describedby": `limit-${name}-unit` }),
  );
  const saveButton = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "limits-submit" }, "Save limits");
  const limits = h(
    "form",
    {
      class: "limits-form",
      "data-testid": "limits-form",
      onsubmit: (event) => {
        event.preventDefault();
        const body = Object.fromEntries(inputs.map((input) => [input.name, input.value === "" ? null : Number(input.value)]));
        act(saveButton, "Could not save the limits", () => api(`/v1/admin/keys/${id}/limits`, { method: "PATCH", body }));
      },
    },
    h(
      "div",
      { class: "params" },
      LIMITS.map(([name, label, unit], i) => h("div", { class: "field" }, h("label", { class: "label", for: `limit-${name}` }, label), inputs[i], h("p", { class: "hint", id: `limit-${name}-unit` }, `${unit}; blank: no limit`))),
    ),
    h("div", {}, saveButton),
  );

  const revoke = h("button", { type: "button", class: "btn btn-danger-ghost", "data-testid": "revoke-key" }, "Revoke key");
  revoke.addEventListener("click", () => {
    if (!revoke.classList.contains("armed")) {
      revoke.classList.add("armed");
      revoke.textContent = "Confirm revoke";
      return;
    }
    act(revoke, "Could not revoke the key", () => api(`/v1/admin/keys/${id}`, { method: "DELETE" }));
  });

  return h(
    "section",
    { class: "card key-editor", "aria-labelledby": "editor-title", "data-testid": "key-editor", "data-id": k.id },
    h(
      "div",
      { class: "title-row" },
      h("h2", { class: "card-title", id: "editor-title", tabindex: "-1" }, `Manage “${k.name}”`),
      h("span", { class: "spacer" }),
      h("a", { href: ledgerOf(k.id), "data-testid": "key-ledger-link" }, "Ledger"),
      h("a", { href: jobsOf(k.id), "data-testid": "key-jobs-link" }, "Jobs"),
      h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-testid": "close-editor", onclick: close }, "Close"),
    ),
    details([
      ["Key id", h("code", {}, k.id)],
      ["Balance", usd(k.balance, 4), "editor-balance"],
      ["Held for running jobs", usd(k.held, 4)],
      ["Available", usd(k.available, 4), "editor-available"],
      ["Jobs under way", number(k.live_jobs)],
      ["Revoked", k.revoked_at ? dateTime(k.revoked_at) : undefined, "editor-revoked"],
    ]),
    h("h3", { class: "sub" }, "Top up"),
    topup,
    h("h3", { class: "sub" }, "Limits"),
    limits,
    k.revoked_at ? null : h("div", { class: "danger-zone" }, h("p", { class: "muted" }, "A revoked key is refused at once; its jobs and ledger stay."), revoke),
  );
}
