#!/usr/bin/env node
// Runs the SDK's tests with Node's test runner against one real `vidgate serve` for the whole run.
// The runner's own summary is the last thing printed; the exit code is the runner's.

import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { MODEL, SMALL, newKey, startGateway } from "./helpers/gateway.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = only.length
  ? only
  : readdirSync(here)
      .filter((f) => f.endsWith(".test.mjs"))
      .sort()
      .map((f) => join(here, f));

const gw = await startGateway().catch((err) => {
  console.error(`could not start the gateway for the SDK tests: ${err.message}`);
  process.exit(1);
});
const broken = await canary(gw);
if (broken) {
  console.error(`the gateway cannot finish a job, so no SDK test can pass: ${broken}\n--- serve.log (tail) ---`);
  console.error(readFileSync(gw.logPath, "utf8").slice(-4000));
  await gw.stop();
  process.exit(1);
}
const [major, minor] = process.versions.node.split(".").map(Number);
const flags = ["--test", "--test-reporter=spec"];
if (major > 20 || (major === 20 && minor >= 10)) flags.push(`--test-concurrency=${files.length}`);

const child = spawn(process.execPath, [...flags, ...files], {
  stdio: "inherit",
  env: { ...process.env, VIDGATE_SDK_TEST_BASE_URL: gw.baseUrl, VIDGATE_SDK_TEST_ADMIN_KEY: gw.adminKey },
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => child.kill(signal));
}
const code = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? (s ? 1 : 0))));
await gw.stop();
process.exit(code);

/** Why one small render does not complete within 30 s, or undefined when it does. */
async function canary(gw) {
  const key = await newKey(gw, "canary");
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
  const created = await fetch(`${gw.baseUrl}/v1/videos`, {
    method: "POST",
    headers,
    body: JSON.stringify({ model: MODEL, prompt: "canary", ...SMALL }),
  });
  if (created.status !== 202) return `POST /v1/videos answered ${created.status}: ${await created.text()}`;
  const { id } = await created.json();
  const deadline = Date.now() + 30_000;
  let video;
  while (Date.now() < deadline) {
    video = await (await fetch(`${gw.baseUrl}/v1/videos/${id}`, { headers })).json();
    if (video.status === "completed") return undefined;
    if (["failed", "cancelled", "expired"].includes(video.status)) return `${id} ended ${video.status}: ${JSON.stringify(video.error)}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  return `${id} is still ${video?.status} (progress ${video?.progress}) after 30 s`;
}
