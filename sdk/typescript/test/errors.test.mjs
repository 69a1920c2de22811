// Typed errors carrying the gateway's envelope, and retries, idempotency and timeouts through a
// misbehaving proxy.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import {
  APIConnectionError,
  APIError,
  APITimeoutError,
  AuthenticationError,
  BadRequestError,
  Client,
  ConflictError,
  NotFoundError,
  NotReadyError,
  ServiceUnavailableError,
} from "@vidgate/sdk";

import { LONG, MODEL, SMALL, gateway, newKey, prompt } from "./helpers/gateway.mjs";
import { startProxy } from "./helpers/proxy.mjs";

let gw;
let key;
let client;
let proxy;

before(async () => {
  gw = await gateway();
  key = await newKey(gw, "error-tests");
  client = new Client({ apiKey: key, baseUrl: gw.baseUrl });
  proxy = await startProxy(gw.baseUrl);
});
after(() => proxy?.close());
beforeEach(() => proxy.clear());

/** A client through the proxy, for a fresh key (so its job list starts empty). */
async function viaProxy(options = {}) {
  return new Client({ apiKey: await newKey(gw, "via-proxy"), baseUrl: proxy.baseUrl, ...options });
}

test("404 carries the envelope: type, code, param, request id and status", async () => {
  const err = await client.getVideo("vid_00000000000000000000000000").catch((e) => e);
  assert.ok(err instanceof NotFoundError && err instanceof APIError);
  assert.equal(err.status, 404);
  assert.equal(err.type, "invalid_request_error");
  assert.equal(err.code, "not_found");
  assert.equal(err.param, "video_id");
  assert.match(err.requestId, /^req_/);
  assert.equal(err.headers.get("x-request-id"), err.requestId);
  assert.match(err.message, /no video/);
  assert.equal(err.body.error.request_id, err.requestId);
});

test("400 names the parameter at fault", async () => {
  const err = await client.generateVideo({ model: MODEL, prompt: prompt(), duration: 1, size: "161x90" }).catch((e) => e);
  assert.ok(err instanceof BadRequestError);
  assert.equal(err.status, 400);
  assert.equal(err.type, "invalid_request_error");
  assert.equal(err.code, "validation_error");
  assert.equal(err.param, "size");
  assert.match(err.requestId, /^req_/);
  const unknown = await client.videos.create({ model: "nobody/nothing", prompt: prompt() }).catch((e) => e);
  assert.ok(unknown instanceof BadRequestError);
  assert.equal(unknown.code, "model_not_found");
  assert.equal(unknown.param, "model");
});

test("401 for a wrong key; 409 not_ready before the bytes exist", { timeout: 30_000 }, async () => {
  const wrong = new Client({ apiKey: "vg_not-a-real-key", baseUrl: gw.baseUrl });
  const err = await wrong.listVideos().catch((e) => e);
  assert.ok(err instanceof AuthenticationError);
  assert.equal(err.status, 401);
  assert.equal(err.code, "unauthorized");
  assert.equal(err.type, "authentication_error");

  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  const early = await client.getVideoContent(long.id, { maxRetries: 0 }).catch((e) => e);
  assert.ok(early instanceof NotReadyError);
  assert.equal(early.status, 409);
  assert.equal(early.code, "not_ready");
  assert.ok(early.retryAfter > 0);
  await client.cancelVideo(long.id);
});

test("a 503 with Retry-After is retried after the wait, with the same Idempotency-Key: one job", { timeout: 30_000 }, async () => {
  const c = await viaProxy();
  proxy.fault("POST", /^\/v1\/videos$/, { kind: "status", status: 503, code: "no_provider_available", headers: { "Retry-After": "1" } });
  const job = await c.generateVideo({ model: MODEL, prompt: prompt(), ...SMALL });
  const posts = proxy.requests.filter((r) => r.method === "POST");
  assert.equal(posts.length, 2);
  assert.equal(posts[0].fault, "status");
  assert.ok(posts[0].headers["idempotency-key"], "create sends an Idempotency-Key");
  assert.equal(posts[1].headers["idempotency-key"], posts[0].headers["idempotency-key"]);
  assert.ok(posts[1].at - posts[0].at >= 1000 - 20, "Retry-After: 1 was honoured");
  assert.deepEqual((await c.listVideos()).data.map((v) => v.id), [job.id]);
});

test("a 429 on a read is retried", async () => {
  const c = await viaProxy();
  proxy.fault("GET", /^\/v1\/videos\/models/, { kind: "status", status: 429, code: "rate_limited", headers: { "Retry-After": "0" } });
  const models = await c.listVideoModels();
  assert.ok(models.data.length > 0);
  assert.equal(proxy.requests.length, 2);
});

test("a dropped connection is retried for a read", async () => {
  const c = await viaProxy();
  proxy.fault("GET", /^\/v1\/videos/, { kind: "drop" });
  assert.equal((await c.listVideos()).object, "list");
  assert.equal(proxy.requests.length, 2);
});

test("a create whose answer was lost is retried and replayed: still one job", { timeout: 30_000 }, async () => {
  const c = await viaProxy();
  proxy.fault("POST", /^\/v1\/videos$/, { kind: "lose-response" });
  const job = await c.generateVideo({ model: MODEL, prompt: prompt(), ...SMALL });
  const posts = proxy.requests.filter((r) => r.method === "POST");
  assert.equal(posts.length, 2);
  assert.equal(posts[0].status, 202, "the gateway created the job the first time");
  assert.equal(posts[1].status, 200, "the retry was an idempotent replay");
  assert.equal(posts[1].headers["idempotency-key"], posts[0].headers["idempotency-key"]);
  assert.deepEqual((await c.listVideos()).data.map((v) => v.id), [job.id]);
});

test("the same Idempotency-Key and body give the same job; another body is a 409", async () => {
  const body = { model: MODEL, prompt: prompt(), ...SMALL };
  const idempotencyKey = `test-${Math.random().toString(36).slice(2)}`;
  const first = await client.generateVideo(body, { idempotencyKey });
  const again = await client.generateVideo(body, { idempotencyKey });
  assert.equal(again.id, first.id);
  const other = await client.generateVideo({ ...body, prompt: prompt() }, { idempotencyKey }).catch((e) => e);
  assert.ok(other instanceof ConflictError);
  assert.equal(other.status, 409);
});

test("a cancel is not repeated after a dropped connection", async () => {
  const c = await viaProxy();
  proxy.fault("POST", /\/cancel$/, { kind: "drop" });
  const err = await c.cancelVideo("vid_00000000000000000000000000").catch((e) => e);
  assert.ok(err instanceof APIConnectionError);
  assert.equal(proxy.requests.length, 1);
});

test("when retries run out the last error is thrown with its Retry-After", async () => {
  const c = await viaProxy({ maxRetries: 1 });
  for (let i = 0; i < 2; i++) {
    proxy.fault("GET", /^\/v1\/videos\/models/, { kind: "status", status: 503, code: "service_unavailable", headers: { "Retry-After": "0" } });
  }
  const err = await c.listVideoModels().catch((e) => e);
  assert.ok(err instanceof ServiceUnavailableError);
  assert.equal(err.status, 503);
  assert.equal(err.requestId, "req_proxy");
  assert.equal(err.retryAfter, 0);
  assert.equal(proxy.requests.length, 2);
});

test("a request with no answer times out, and is retried when safe", async () => {
  const c = await viaProxy({ timeoutMs: 300, maxRetries: 1 });
  proxy.fault("GET", /^\/v1\/videos\/models/, { kind: "hang" });
  proxy.fault("GET", /^\/v1\/videos\/models/, { kind: "hang" });
  const err = await c.listVideoModels().catch((e) => e);
  assert.ok(err instanceof APITimeoutError && err instanceof APIConnectionError);
  assert.equal(proxy.requests.length, 2);
});

test("an AbortSignal aborts a request in flight", async () => {
  const c = await viaProxy();
  proxy.fault("GET", /^\/v1\/videos\/models/, { kind: "hang" });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(c.listVideoModels({ signal: controller.signal }), { name: "AbortError" });
  assert.equal(proxy.requests.length, 1, "an abort is never retried");
});
