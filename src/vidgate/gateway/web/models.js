// The model catalogue: capabilities, providers with availability and health, prices.

import { api } from "./api.js";
import { clear, details, h, usd } from "./ui.js";

export async function modelsPage(view, ctx) {
  const { data: models } = await api("/v1/videos/models");
  if (!ctx.alive) return;
  const onlyAvailable = h("input", { type: "checkbox", id: "only-available", "data-testid": "only-available" });
  const grid = h("div", { class: "model-grid", "data-testid": "models" });
  const render = () => {
    const shown = models.filter((m) => !onlyAvailable.checked || isAvailable(m));
    clear(grid, shown.map(modelCard));
  };
  onlyAvailable.addEventListener("change", render);
  const availableCount = models.filter(isAvailable).length;
  clear(
    view,
    h(
      "header",
      { class: "page-head" },
      h("h1", {}, "Models"),
      h("p", { class: "muted" }, `${models.length} models in the catalogue, ${availableCount} with a configured provider.`),
    ),
    h("div", { class: "toolbar" }, h("label", { class: "check" }, onlyAvailable, " Only models this gateway can run")),
    grid,
  );
  render();
}

const isAvailable = (m) => m.providers.some((p) => p.available);

function modelCard(m) {
  const caps = m.capabilities;
  const available = isAvailable(m);
  const features = [
    caps.audio && "audio",
    caps.seed && "seed",
    caps.negative_prompt && "negative prompt",
    caps.cancellable && "cancellable",
    caps.sample_count[1] > 1 && `up to ${caps.sample_count[1]} samples`,
  ].filter(Boolean);
  const refs = caps.input_reference_roles.map((r) => (caps.required_reference_roles.includes(r) ? `${r} (required)` : r));
  return h(
    "article",
    { class: `card model-card${available ? "" : " unavailable"}`, "data-testid": "model-card", "data-model": m.id },
    h(
      "div",
      { class: "model-head" },
      h("div", {}, h("h2", { class: "card-title" }, m.name), h("code", { class: "model-id" }, m.id)),
      h("span", { class: `pill ${available ? "pill-ok" : "pill-off"}` }, available ? "available" : "no provider"),
    ),
    m.description ? h("p", { class: "muted model-desc" }, m.description) : null,
    details([
      ["Durations", durations(caps.durations)],
      ["Resolutions", caps.resolutions.join(", ") || "—"],
      ["Aspect ratios", caps.aspect_ratios.join(", ") || "—"],
      ["Sizes", sizes(caps)],
      ["Features", features.length ? h("span", { class: "chips" }, features.map((f) => h("span", { class: "chip" }, f))) : "—"],
      ["References", refs.join(", ") || "—"],
    ]),
    h("h3", { class: "sub" }, "Providers"),
    h(
      "ul",
      { class: "providers", "data-testid": "providers" },
      m.providers.map((p) =>
        h(
          "li",
          { "data-provider": p.name },
          h("span", { class: "provider-name" }, p.name),
          p.alpha ? h("span", { class: "pill pill-warn" }, "alpha") : null,
          h("span", { class: `pill ${p.available ? "pill-ok" : "pill-off"}` }, p.available ? "configured" : "not configured"),
          p.available ? h("span", { class: `pill ${p.healthy ? "pill-ok" : "pill-bad"}` }, p.healthy ? "healthy" : "cooling down") : null,
        ),
      ),
    ),
    h("h3", { class: "sub" }, "Price"),
    pricing(m.pricing),
    available ? h("a", { class: "btn btn-sm", href: `#/playground?model=${encodeURIComponent(m.id)}` }, "Try in playground") : null,
  );
}

function durations(list) {
  if (!list.length) return "—";
  const contiguous = list.every((d, i) => i === 0 || d === list[i - 1] + 1);
  return contiguous && list.length > 2 ? `${list[0]}–${list[list.length - 1]} s` : `${list.join(", ")} s`;
}

function sizes(caps) {
  if (caps.sizes && caps.sizes.length) return caps.sizes.join(", ");
  if (caps.size_range) {
    const r = caps.size_range;
    const mp = r.max_pixels ? `, up to ${(r.max_pixels / 1e6).toFixed(2)} MP` : "";
    return `any even size, ${r.min_side}–${r.max_side} px per side${mp}`;
  }
  return "—";
}

function pricing(p) {
  if (!p) return h("p", { class: "muted" }, "No price listed.");
  const lines = [h("li", {}, h("strong", {}, usd(p.per_second)), " per second")];
  if (p.per_request) lines.push(h("li", {}, h("strong", {}, usd(p.per_request)), " per request"));
  for (const t of p.tiers || []) {
    if (t.audio) lines.push(h("li", {}, "+", usd(t.add_per_second), " per second with audio"));
    else {
      const cond = Object.entries(t).filter(([k]) => k !== "per_second").map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(", ");
      lines.push(h("li", {}, h("strong", {}, usd(t.per_second)), ` per second at ${cond}`));
    }
  }
  return h("ul", { class: "prices", "data-testid": "prices" }, lines);
}
