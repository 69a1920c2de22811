// Every method of the client, in both its forms, against a real gateway; and the package's entry points.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Client, ConflictError, NotFoundError, TERMINAL_STATUSES, VidgateError, operations } from "@vidgate/sdk";

import { LONG, MODEL, SMALL, gateway, newKey, prompt } from "./helpers/gateway.mjs";

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FAST = { maxIntervalMs: 250 };
let gw;
let client;

before(async () => {
  gw = await gateway();
  client = new Client({ apiKey: await newKey(gw, "client-tests"), baseUrl: gw.baseUrl });
});

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

test("the reference's example works as written", { timeout: 60_000 }, async () => {
  const job = await client.generateVideo({ model: MODEL, prompt: "A calm ocean at dusk", ...SMALL });
  assert.match(job.id, /^vid_/);
  assert.equal(job.object, "video");
  assert.equal(job.status, "queued");
  assert.equal(job.polling_url, `${gw.baseUrl}/v1/videos/${job.id}`);
  assert.ok(job.poll_after_seconds >= 1);

  const jobs = await client.listVideos({ status: "queued,completed", limit: 2 });
  assert.equal(jobs.object, "list");
  assert.ok(jobs.data.length <= 2);
  assert.ok(jobs.data.every((v) => v.status === "queued" || v.status === "completed"));

  const status = await client.getVideo(job.id);
  assert.equal(status.id, job.id);
  const websocketUrl = client.videos.websocketUrl(job.id, { intervalMs: 1500 });
  assert.equal(websocketUrl, `${gw.baseUrl.replace(/^http/, "ws")}/v1/async/video/${job.id}/ws?interval_ms=1500`);

  const done = await client.videos.wait(job.id, FAST);
  assert.equal(done.status, "completed");
  assert.ok(done.download_url.startsWith(`${gw.baseUrl}/v1/videos/${job.id}/download?`));
});

test("every method in its client form and its resource form", { timeout: 60_000 }, async () => {
  const models = await client.listVideoModels();
  assert.equal(models.object, "list");
  const procedural = models.data.find((m) => m.id === MODEL);
  assert.ok(procedural, "the built-in model is in the catalogue");
  assert.ok(procedural.capabilities.durations.includes(1));
  assert.deepEqual(
    (await client.videos.listModels()).data.map((m) => m.id),
    models.data.map((m) => m.id),
  );

  const first = await client.generateVideo({ model: MODEL, prompt: prompt(), ...SMALL });
  const second = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  assert.notEqual(first.id, second.id);
  assert.equal(first.size, "160x90");
  assert.equal(first.seconds, 1);

  const done = await client.videos.wait(first.id, FAST);
  await client.videos.wait(second.id, FAST);
  assert.equal(done.status, "completed");
  assert.deepEqual((await client.getVideo(first.id)).asset, done.asset);
  assert.equal((await client.videos.get(first.id)).id, first.id);
  const asset = done.outputs[0].asset;
  assert.equal(asset.width, 160);
  assert.equal(asset.height, 90);
  assert.equal(done.outputs[0].content_url, `${gw.baseUrl}/v1/videos/${first.id}/content?index=0`);

  const bytes = await client.getVideoContent(first.id);
  assert.ok(bytes instanceof Uint8Array);
  assert.equal(bytes.length, asset.bytes);
  assert.equal(sha256(bytes), asset.sha256);
  assert.deepEqual(await client.videos.content(first.id, { index: 0 }), bytes);

  const link = await client.getVideoDownloadUrl(first.id, { ttlSeconds: 120, disposition: "inline" });
  assert.equal(link.object, "video.download_url");
  assert.equal(link.disposition, "inline");
  assert.equal(link.index, 0);
  assert.ok(link.url.startsWith(`${gw.baseUrl}/`), "the link is absolute");
  assert.ok(link.expires_at > Date.now() / 1000);
  const viaLink = await fetch(link.url); // no API key
  assert.equal(viaLink.status, 200);
  assert.equal(sha256(new Uint8Array(await viaLink.arrayBuffer())), asset.sha256);
  assert.ok((await client.videos.downloadUrl(first.id)).url.includes("disposition=attachment"));

  const completed = await client.listVideos({ status: ["completed"] });
  assert.ok(completed.data.some((v) => v.id === first.id));
  assert.ok(completed.data.every((v) => v.status === "completed"));
  const page = await client.videos.list({ limit: 1 });
  assert.equal(page.data.length, 1);
  assert.equal(page.has_more, true);
  const next = await client.videos.list({ limit: 1, after: page.last_id });
  assert.notEqual(next.data[0].id, page.data[0].id);
  const everything = [];
  for await (const video of client.videos.listAll({ limit: 1 })) everything.push(video.id);
  assert.ok(everything.includes(first.id) && everything.includes(second.id));
  assert.equal(new Set(everything).size, everything.length);

  assert.equal(
    client.getAsyncJobWebSocketUrl("video", first.id, { intervalMs: 2000, closeOnTerminal: false }),
    `${gw.baseUrl.replace(/^http/, "ws")}/v1/async/video/${first.id}/ws?interval_ms=2000&close_on_terminal=false`,
  );

  const deleted = await client.deleteVideo(first.id);
  assert.deepEqual(deleted, { id: first.id, object: "video.deleted", deleted: true });
  assert.equal((await client.videos.delete(second.id)).deleted, true);
  await assert.rejects(client.getVideo(first.id), NotFoundError);
});

test("cancel stops a running job; a finished job cannot be cancelled; then it is deleted", { timeout: 60_000 }, async () => {
  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  const cancelled = await client.cancelVideo(long.id);
  assert.equal(cancelled.id, long.id);
  assert.equal(cancelled.status, "cancelled");
  assert.ok(TERMINAL_STATUSES.has(cancelled.status));
  assert.equal((await client.getVideo(long.id)).status, "cancelled");
  await assert.rejects(client.videos.cancel(long.id), (err) => err instanceof ConflictError && err.status === 409);
  const cancelledOnly = await client.listVideos({ status: "cancelled" });
  assert.deepEqual(cancelledOnly.data.map((v) => v.id), [long.id]);
  const aliased = await client.listVideos({ status: "canceled" });
  assert.deepEqual(aliased.data.map((v) => v.id), [long.id]);
  assert.equal((await client.videos.delete(long.id)).deleted, true);
  await assert.rejects(client.videos.get(long.id), NotFoundError);
});

test("the key and base URL come from VIDGATE_API_KEY and VIDGATE_BASE_URL when omitted", async () => {
  const saved = { key: process.env.VIDGATE_API_KEY, url: process.env.VIDGATE_BASE_URL };
  try {
    process.env.VIDGATE_API_KEY = await newKey(gw, "from-env");
    process.env.VIDGATE_BASE_URL = `${gw.baseUrl}/`;
    const fromEnv = new Client();
    assert.equal(fromEnv.baseUrl, gw.baseUrl);
    assert.equal((await fromEnv.listVideos()).data.length, 0, "a new key sees only its own jobs");
    delete process.env.VIDGATE_API_KEY;
    await assert.rejects(new Client({ baseUrl: gw.baseUrl }).listVideos(), (err) => err instanceof VidgateError && /API key/.test(err.message));
  } finally {
    for (const [name, value] of [["VIDGATE_API_KEY", saved.key], ["VIDGATE_BASE_URL", saved.url]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});

test("another key's job is a 404, never a 403", async () => {
  const mine = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  const other = new Client({ apiKey: await newKey(gw, "other"), baseUrl: gw.baseUrl });
  await assert.rejects(other.getVideo(mine.id), (err) => err instanceof NotFoundError && err.status === 404);
  await assert.rejects(other.cancelVideo(mine.id), NotFoundError);
  await client.videos.wait(mine.id, FAST);
});

test("the package loads as ESM and as CommonJS, with its Node entry", async () => {
  const require = createRequire(import.meta.url);
  const cjs = require("@vidgate/sdk");
  assert.equal(typeof cjs.Client, "function");
  assert.equal(typeof cjs.webhooks.verify, "function");
  assert.equal(new cjs.Client({ apiKey: "k", baseUrl: gw.baseUrl }).baseUrl, gw.baseUrl);
  const cjsNode = require("@vidgate/sdk/node");
  assert.equal(typeof cjsNode.downloadToFile, "function");
  assert.equal(typeof cjsNode.Client, "function");
  const esmNode = await import("@vidgate/sdk/node");
  assert.equal(typeof esmNode.downloadToFile, "function");
  const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8"));
  assert.equal(Object.keys(pkg.dependencies ?? {}).length, 0, "no runtime dependencies");
  assert.equal(pkg.license, "Apache-2.0");
});

test("the main entry reaches nothing Node-only (browsers, Deno, Bun)", () => {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const spec =
        line.match(/^(?:import|export)\b.*\bfrom\s*["']([^"']+)["']/)?.[1] ??
        line.match(/^\}\s*from\s*["']([^"']+)["']/)?.[1] ??
        line.match(/^import\s*["']([^"']+)["']/)?.[1] ??
        line.match(/\bimport\(\s*["']([^"']+)["']\s*\)/)?.[1];
      if (spec === undefined) continue;
      assert.ok(spec.startsWith("./"), `${file} imports ${spec}`);
      visit(join(dirname(file), spec));
    }
  };
  visit(join(PACKAGE_DIR, "dist", "esm", "index.js"));
  assert.ok(!seen.has(join(PACKAGE_DIR, "dist", "esm", "node.js")));
  assert.ok(seen.size > 5);
});

test("the generated types match the document the running gateway serves, and drift is caught", { timeout: 30_000 }, async () => {
  const served = await (await fetch(`${gw.baseUrl}/openapi.json`)).json();
  const dir = mkdtempSync(join(tmpdir(), "vidgate-sdk-openapi-"));
  const check = (doc) => {
    const file = join(dir, "openapi.json");
    writeFileSync(file, JSON.stringify(doc));
    return promisify(execFile)(process.execPath, ["scripts/gen-types.mjs", "--check", "--from", file], { cwd: PACKAGE_DIR });
  };
  try {
    await check(served);
    served.components.schemas.Video.properties.brand_new_field = { type: "string" };
    const drift = await check(served).catch((e) => e);
    assert.equal(drift.code, 1);
    assert.match(drift.stderr, /out of date/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("routes come from the gateway's OpenAPI document", async () => {
  const doc = await (await fetch(`${gw.baseUrl}/openapi.json`)).json();
  for (const [id, { method, path }] of Object.entries(operations)) {
    assert.ok(doc.paths[path]?.[method.toLowerCase()], `${id}: ${method} ${path} is served`);
    assert.equal(doc.paths[path][method.toLowerCase()].operationId, id);
  }
});
