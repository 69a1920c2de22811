// Usage: balance, held and available funds, this key's limits and how much of each is in use (the
// request-rate bucket's tokens left included), spend per day (an inline SVG chart), spend by model.

import { api } from "./api.js";
import { clear, dateTime, h, number, progressBar, s, table, usd, empty } from "./ui.js";

const WINDOWS = [7, 30, 90];
let days = 30;

export async function usagePage(view, ctx) {
  const select = h(
    "select",
    { class: "input input-sm", "data-testid": "usage-days", "aria-label": "Period" },
    WINDOWS.map((d) => h("option", { value: d, selected: d === days }, `Last ${d} days`)),
  );
  const body = h("div", { class: "stack" });
  const load = async () => {
    const [u, limits] = await Promise.all([api(`/v1/usage?days=${days}`), api("/v1/usage/limits")]);
    if (!ctx.alive) return;
    const total = u.by_day.reduce((sum, d) => sum + d.cost, 0);
    const jobs = u.by_day.reduce((sum, d) => sum + d.jobs, 0);
    clear(
      body,
      h(
        "div",
        { class: "stats" },
        stat("Balance", usd(u.balance, 4), "usage-balance"),
        stat("Held for running jobs", usd(u.held, 4), "usage-held"),
        stat("Available", usd(u.available, 4), "usage-available"),
        stat(`Spent in ${u.days} days`, usd(total, 4), "usage-total", `${number(jobs)} job${jobs === 1 ? "" : "s"}`),
      ),
      limitsCard(limits),
      h(
        "section",
        { class: "card" },
        h("h2", { class: "card-title" }, "Spend per day"),
        u.by_day.length ? chart(u.by_day, u.days) : empty("No spend in this period yet.", { "data-testid": "usage-chart-empty" }),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", { class: "card-title" }, "Spend by model"),
        u.by_model.length
          ? table(
              ["Model", ["Jobs", "num"], ["Cost", "num"]],
              u.by_model.map((m) =>
                h("tr", { "data-testid": "usage-model-row", "data-model": m.model }, h("td", {}, h("code", {}, m.model)), h("td", { class: "num" }, number(m.jobs)), h("td", { class: "num" }, usd(m.cost, 4))),
              ),
              { "data-testid": "usage-by-model" },
            )
          : empty("No spend in this period yet."),
      ),
    );
  };
  select.addEventListener("change", () => {
    days = Number(select.value);
    load().catch(ctx.fail);
  });
  clear(
    view,
    h(
      "header",
      { class: "page-head" },
      h("div", { class: "title-row" }, h("h1", {}, "Usage"), h("span", { class: "spacer" }), select),
      h("p", { class: "muted" }, "Funds, limits and spend of this key (days in UTC)."),
    ),
    body,
  );
  await load();
}

/** The key's limits as they apply to it, and how much of each is in use now. */
function limitsCard(l) {
  const item = (name, value, detail, testid, used) =>
    h(
      "li",
      { class: "limit", "data-testid": testid },
      h("span", { class: "limit-name" }, name),
      h("span", { class: "limit-value", "data-testid": `${testid}-value` }, value),
      used === undefined ? null : used,
      detail ? h("p", { class: "limit-detail" }, detail) : null,
    );
  const bar = (label, share) => {
    const el = progressBar({ class: "progress progress-sm", "aria-label": label });
    el.set(share * 100, share >= 1 ? "failed" : "");
    return el;
  };
  const spend = (name, w, testid) => {
    if (w.limit === null) return item(name, "No limit", `${usd(w.spent, 4)} spent, ${usd(w.held, 4)} held`, testid);
    const used = w.spent + w.held;
    return item(
      name,
      `${usd(used, 4)} of ${usd(w.limit, 2)}`,
      `${usd(w.spent, 4)} spent + ${usd(w.held, 4)} held · ${usd(w.remaining, 4)} left · resets ${dateTime(Date.parse(w.resets_at) / 1000)}`,
      testid,
      bar(`${name} used`, w.limit ? used / w.limit : 1),
    );
  };
  const cap = l.max_concurrent_jobs;
  const rate = () => {
    if (l.rate_per_second === null) return item("Requests", "No limit", null, "limit-rate");
    // The bucket the throttle takes from, read just after this page's own request took its token.
    const left = Math.floor(l.rate_available);
    const full = left >= l.rate_burst ? "full" : `full again at ${dateTime(Date.parse(l.rate_full_at) / 1000)}`;
    return item(
      "Requests",
      `${number(l.rate_per_second)} a second`,
      [
        h("span", { "data-testid": "limit-rate-available" }, `${number(left)} of ${number(l.rate_burst)}`),
        ` left in the burst now (${full}); past that, requests are answered 429`,
      ],
      "limit-rate",
      bar("Request burst used", (l.rate_burst - l.rate_available) / l.rate_burst),
    );
  };
  return h(
    "section",
    { class: "card", "aria-labelledby": "limits-title", "data-testid": "usage-limits" },
    h("h2", { class: "card-title", id: "limits-title" }, "Limits"),
    h(
      "ul",
      { class: "limits" },
      rate(),
      cap === null
        ? item("Jobs at once", "No limit", `${number(l.live_jobs)} queued or running`, "limit-concurrency")
        : item("Jobs at once", `${number(l.live_jobs)} of ${number(cap)}`, "queued or running now", "limit-concurrency", bar("Jobs at once used", l.live_jobs / cap)),
      spend("Daily spend", l.daily, "limit-daily"),
      spend("Monthly spend", l.monthly, "limit-monthly"),
    ),
  );
}

function stat(label, value, testid, sub) {
  return h("div", { class: "stat card" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value", "data-testid": testid }, value), sub ? h("div", { class: "stat-sub muted" }, sub) : null);
}

/** Every UTC day of the window, oldest first, as ``YYYY-MM-DD``. */
function windowDates(count) {
  const today = new Date();
  const base = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  return Array.from({ length: count }, (_, i) => new Date(base - (count - 1 - i) * 86400000).toISOString().slice(0, 10));
}

/** A 1, 2, 2.5 or 5 × 10^n step that splits ``max`` into at most ``parts`` parts, so the axis reads cleanly. */
function niceStep(max, parts = 4) {
  const raw = max > 0 ? max / parts : 1;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = [1, 2, 2.5, 5, 10].find((x) => raw <= x * pow + 1e-12);
  return m * pow;
}

function chart(byDay, count) {
  const costs = new Map(byDay.map((d) => [d.date, d]));
  const dates = windowDates(count);
  const W = 760;
  const H = 240;
  const pad = { top: 16, right: 12, bottom: 28, left: 64 };
  const iw = W - pad.left - pad.right;
  const ih = H - pad.top - pad.bottom;
  const step = niceStep(Math.max(...byDay.map((d) => d.cost)));
  const top = step * Math.max(1, Math.ceil(Math.max(...byDay.map((d) => d.cost)) / step - 1e-9));
  const slot = iw / dates.length;
  const barW = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v) => pad.top + ih - (v / top) * ih;
  const digits = Math.max(2, Math.ceil(-Math.log10(step) - 1e-9) + (String(step).includes("25") ? 1 : 0));
  const ticks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
  const grid = ticks.map((v) => [
    s("line", { x1: pad.left, x2: W - pad.right, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "gridline" }),
    s("text", { x: pad.left - 8, y: y(v) + 4, "text-anchor": "end", class: "tick" }, usd(v, digits)),
  ]);
  const labelEvery = Math.ceil(dates.length / 8);
  const bars = dates.map((date, i) => {
    const d = costs.get(date);
    const x = pad.left + i * slot + (slot - barW) / 2;
    const parts = [];
    if (d && d.cost > 0) {
      const top_ = y(d.cost);
      parts.push(
        s(
          "rect",
          { x, y: top_, width: barW, height: Math.max(1, pad.top + ih - top_), rx: 2, class: "bar", "data-testid": "day-bar", "data-date": date, "data-cost": d.cost },
          s("title", {}, `${date}: ${usd(d.cost, 4)} · ${d.jobs} job${d.jobs === 1 ? "" : "s"}`),
        ),
      );
    }
    if ((dates.length - 1 - i) % labelEvery === 0) {
      parts.push(s("text", { x: x + barW / 2, y: H - 8, "text-anchor": "middle", class: "tick" }, date.slice(5)));
    }
    return parts;
  });
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "Spend per day", "data-testid": "usage-chart" },
    grid,
    bars,
  );
}
