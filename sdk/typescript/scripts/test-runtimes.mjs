#!/usr/bin/env node
// Runs test/runtimes/smoke.mjs (one job end to end through the built SDK) on each runtime against one
// real `vidgate serve`: this Node, then Bun, Deno, Node 18 and Node 22 fetched from the npm registry
// by `npx` into npm's cache (nothing is added to this package). Name some to run only those:
// `npm run test:runtimes -- bun deno`. Prints a table; exits 1 if any runtime failed.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { newKey, startGateway } from "../test/helpers/gateway.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const smoke = join(root, "test", "runtimes", "smoke.mjs");
const npx = ["npx", "--yes"];
const RUNTIMES = {
  node: { version: [process.execPath, "--version"], run: [process.execPath, smoke] },
  bun: { version: [...npx, "bun@1", "--version"], run: [...npx, "bun@1", smoke] },
  deno: {
    version: [...npx, "deno@2", "--version"],
    run: [...npx, "deno@2", "run", "--allow-net", "--allow-env", "--allow-read", smoke],
  },
  node18: { version: [...npx, "node@18", "--version"], run: [...npx, "node@18", smoke] },
  node22: { version: [...npx, "node@22", "--version"], run: [...npx, "node@22", smoke] },
};
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(RUNTIMES);
const unknown = chosen.filter((name) => !RUNTIMES[name]);
if (unknown.length) {
  console.error(`unknown runtime ${unknown.join(", ")}; known: ${Object.keys(RUNTIMES).join(", ")}`);
  process.exit(2);
}

/** Runs a command to its end (or `ms`), with what it printed. */
function run([command, ...args], env, ms) {
  return new Promise((resolveRun) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("error", (err) => (out += String(err)));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? 1, out: out.trim() });
    });
  });
}

// The webhook receiver: keeps each job's completed delivery, hands it out (long-polled) to the smoke.
const deliveries = new Map();
const waiting = new Map();
const hooks = createServer((req, res) => {
  if (req.method === "POST") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const event = JSON.parse(body.toString("utf8"));
      if (event.type === "video.completed") {
        const delivery = { headers: req.headers, body: body.toString("base64") };
        deliveries.set(event.data.id, delivery);
        for (const answer of waiting.get(event.data.id) ?? []) answer(delivery);
        waiting.delete(event.data.id);
      }
      res.writeHead(204).end();
    });
    return;
  }
  const id = req.url.split("/").pop();
  const answer = (delivery) => res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(delivery));
  if (deliveries.has(id)) return answer(deliveries.get(id));
  waiting.set(id, [...(waiting.get(id) ?? []), answer]);
  setTimeout(() => res.headersSent || res.writeHead(404).end(), 30_000);
});
await new Promise((r) => hooks.listen(0, "127.0.0.1", r));

const gw = await startGateway();
const results = [];
try {
  for (const name of chosen) {
    const runtime = RUNTIMES[name];
    const probe = await run(runtime.version, {}, 300_000);
    if (probe.code !== 0) {
      const detail = `could not be obtained: ${probe.out.split("\n").pop()}`;
      results.push({ name, version: "-", ok: false, seconds: 0, detail });
      continue;
    }
    const env = {
      VIDGATE_BASE_URL: gw.baseUrl,
      VIDGATE_API_KEY: await newKey(gw, `runtime-${name}`),
      VIDGATE_SMOKE_HOOKS: `http://127.0.0.1:${hooks.address().port}`,
      VIDGATE_SMOKE_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
    };
    const started = Date.now();
    const { code, out } = await run(runtime.run, env, 120_000);
    const seconds = (Date.now() - started) / 1000;
    const last = out.split("\n").pop();
    let detail = out.slice(-2000);
    if (code === 0) {
      const smokeResult = JSON.parse(last);
      detail = `${smokeResult.stream}: ${smokeResult.events.join(" > ")}; ${smokeResult.bytes} bytes sha256 ok; webhook ok`;
    }
    results.push({ name, version: probe.out.split("\n")[0].split(" (")[0], ok: code === 0, seconds, detail });
  }
} finally {
  await gw.stop();
  hooks.close();
}

for (const r of results) {
  const seconds = `${r.seconds.toFixed(1).padStart(5)} s`;
  console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name.padEnd(7)} ${r.version.padEnd(11)} ${seconds}  ${r.detail}`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
