// Waiting (poll_after_seconds, onProgress, AbortSignal) and the lifecycle stream over a websocket
// and over server-sent events.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { AuthenticationError, Client, JobFailedError, NotFoundError } from "@vidgate/sdk";

import { LONG, MODEL, SMALL, gateway, newKey, prompt } from "./helpers/gateway.mjs";
import { MiniWebSocket } from "./helpers/mini-ws.mjs";
import { startProxy } from "./helpers/proxy.mjs";

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let gw;
let key;
let client;
let wsClient;

before(async () => {
  gw = await gateway();
  key = await newKey(gw, "wait-stream-tests");
  client = new Client({ apiKey: key, baseUrl: gw.baseUrl });
  wsClient = new Client({ apiKey: key, baseUrl: gw.baseUrl, WebSocket: MiniWebSocket });
});

async function collect(iterable) {
  const events = [];
  for await (const event of iterable) events.push(event);
  return events;
}

function assertLifecycle(events, id) {
  assert.ok(events.length >= 1);
  assert.equal(events[0].type, "job.snapshot");
  for (const event of events) assert.equal(event.data.id, id);
  for (const event of events.slice(1)) {
    assert.equal(event.type, "job.updated");
    assert.match(event.id, /^evt_/);
    assert.match(event.event, /^video\./);
  }
  const last = events.at(-1).data;
  assert.equal(last.status, "completed");
  assert.equal(last.progress, 100);
  assert.ok(last.content_url.startsWith(gw.baseUrl), "URLs in events are absolute");
}

test("createAndWait returns the finished job; throwOnFailure turns a cancel into JobFailedError", { timeout: 60_000 }, async () => {
  const done = await client.videos.createAndWait({ model: MODEL, prompt: prompt(), ...SMALL }, { maxIntervalMs: 250 });
  assert.equal(done.status, "completed");
  assert.equal(done.asset.width, 160);

  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  await client.videos.cancel(long.id);
  assert.equal((await client.videos.wait(long.id)).status, "cancelled", "returned, not thrown, by default");
  const err = await client.videos.wait(long.id, { throwOnFailure: true }).catch((e) => e);
  assert.ok(err instanceof JobFailedError);
  assert.equal(err.video.status, "cancelled");
});

test("wait stops at once when its AbortSignal aborts", { timeout: 60_000 }, async () => {
  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  try {
    const controller = new AbortController();
    const polls = [];
    const waiting = client.videos.wait(long.id, {
      signal: controller.signal,
      onProgress: (v) => {
        polls.push(v);
        controller.abort();
      },
    });
    await assert.rejects(waiting, { name: "AbortError" });
    assert.equal(polls.length, 1);
    await assert.rejects(client.videos.wait(long.id, { signal: AbortSignal.timeout(1) }), { name: "TimeoutError" });
    const aborted = AbortSignal.abort();
    await assert.rejects(client.videos.createAndWait({ model: MODEL, prompt: prompt(), ...SMALL }, { signal: aborted }), {
      name: "AbortError",
    });
  } finally {
    await client.videos.cancel(long.id);
  }
});

test("stream over a websocket (an injected WebSocket): snapshot, updates, end on completion", { timeout: 60_000 }, async () => {
  const job = await wsClient.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  const before = MiniWebSocket.opened.length;
  const events = await collect(wsClient.videos.stream(job.id, { intervalMs: 1000 }));
  assertLifecycle(events, job.id);
  const opened = MiniWebSocket.opened.slice(before);
  assert.equal(opened.length, 1);
  assert.equal(opened[0].url, `${gw.baseUrl.replace(/^http/, "ws")}/v1/async/video/${job.id}/ws?interval_ms=1000`);
  assert.deepEqual(opened[0].protocols, ["vidgate.v1", `bearer.${key}`]);
  assert.ok(!opened[0].url.includes(key), "the API key never goes in the URL");
});

test("stream over server-sent events needs only fetch", { timeout: 60_000 }, async () => {
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  const events = await collect(wsClient.videos.stream(job.id, { transport: "sse" }));
  assertLifecycle(events, job.id);
  // A finished job: the stream is its final snapshot.
  const again = await collect(client.videos.stream(job.id, { transport: "sse" }));
  assert.deepEqual(again.map((e) => [e.type, e.data.status]), [["job.snapshot", "completed"]]);
});

test("stream picks what the runtime has when no transport is named", { timeout: 60_000 }, async () => {
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  assertLifecycle(await collect(client.videos.stream(job.id)), job.id);
});

test("stream with a stream token: no API key at all on the socket", { timeout: 60_000 }, async () => {
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  const token = await client.videos.streamToken(job.id, { ttlSeconds: 60 });
  assert.ok(token.url.startsWith(`${gw.baseUrl.replace(/^http/, "ws")}/v1/async/video/${job.id}/ws?token=`));
  assert.ok(token.expires_at > Date.now() / 1000);
  const browser = new Client({ apiKey: "unused", baseUrl: gw.baseUrl, WebSocket: MiniWebSocket });
  const before = MiniWebSocket.opened.length;
  assertLifecycle(await collect(browser.videos.stream(job.id, { token: token.token })), job.id);
  const opened = MiniWebSocket.opened.slice(before);
  assert.deepEqual(opened[0].protocols, []);
  assert.ok(opened[0].url.includes(`token=${encodeURIComponent(token.token)}`));
});

test("leaving a stream early closes it; a cancel shows up on the next one", { timeout: 60_000 }, async () => {
  const long = await wsClient.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  for await (const event of wsClient.videos.stream(long.id)) {
    assert.equal(event.type, "job.snapshot");
    break;
  }
  const stream = wsClient.videos.stream(long.id);
  const first = await stream.next();
  assert.equal(first.value.type, "job.snapshot");
  await wsClient.videos.cancel(long.id);
  const rest = await collect(stream);
  assert.equal(rest.at(-1).data.status, "cancelled");
  const sse = await collect(client.videos.stream(long.id, { transport: "sse" }));
  assert.equal(sse.at(-1).data.status, "cancelled");
});

test("a stream aborts with its signal", { timeout: 60_000 }, async () => {
  const long = await wsClient.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  try {
    for (const transport of ["websocket", "sse"]) {
      const controller = new AbortController();
      const seen = [];
      const consuming = (async () => {
        for await (const event of wsClient.videos.stream(long.id, { transport, signal: controller.signal })) {
          seen.push(event);
          controller.abort();
        }
      })();
      await assert.rejects(consuming, { name: "AbortError" }, transport);
      assert.ok(seen.length >= 1);
    }
  } finally {
    await wsClient.videos.cancel(long.id);
  }
});

test("a websocket that drops mid-stream is reopened, and the stream still sees the end", { timeout: 60_000 }, async () => {
  let opened = 0;
  // The first socket dies right after its first message, as a flaky network would leave it.
  class FlakyWebSocket extends MiniWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.flaky = opened++ === 0;
    }

    emit(type, event) {
      if (this.dead && type === "message") return; // frames that arrived with the first one are lost too
      super.emit(type, event);
      if (this.flaky && type === "message") {
        this.dead = true;
        this.socket.destroy();
      }
    }
  }
  const flaky = new Client({ apiKey: key, baseUrl: gw.baseUrl, WebSocket: FlakyWebSocket });
  const long = await flaky.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  const events = [];
  for await (const event of flaky.videos.stream(long.id)) {
    events.push(event);
    if (events.length === 2) await flaky.videos.cancel(long.id); // on the second connection's snapshot
  }
  assert.equal(opened, 2);
  assert.deepEqual(events.slice(0, 2).map((e) => e.type), ["job.snapshot", "job.snapshot"], "each connection starts with a snapshot");
  assert.equal(events.at(-1).data.status, "cancelled");
});

test("an event stream cut short is reopened", { timeout: 60_000 }, async () => {
  const proxy = await startProxy(gw.baseUrl);
  try {
    const viaProxy = new Client({ apiKey: key, baseUrl: proxy.baseUrl });
    const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
    proxy.fault("GET", /\/events/, { kind: "cut", afterBytes: 20 });
    const events = await collect(viaProxy.videos.stream(job.id, { transport: "sse" }));
    assert.equal(events.at(-1).data.status, "completed");
    const opens = proxy.requests.filter((r) => r.url.includes("/events"));
    assert.equal(opens.length, 2);
    assert.equal(opens[0].fault, "cut");
  } finally {
    await proxy.close();
  }
});

test("asking for a websocket where there is none says how to get one", { skip: typeof WebSocket === "function" }, async () => {
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  await assert.rejects(collect(client.videos.stream(job.id, { transport: "websocket" })), /pass \{ WebSocket \}/);
  await client.videos.wait(job.id, { maxIntervalMs: 250 });
});

test("a refused stream throws the typed error", { timeout: 30_000 }, async () => {
  const missing = "vid_00000000000000000000000000";
  await assert.rejects(collect(wsClient.videos.stream(missing)), (err) => err instanceof NotFoundError && err.status === 404);
  await assert.rejects(collect(client.videos.stream(missing, { transport: "sse" })), NotFoundError);
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  const wrong = new Client({ apiKey: "vg_wrong", baseUrl: gw.baseUrl, WebSocket: MiniWebSocket });
  await assert.rejects(collect(wrong.videos.stream(job.id)), AuthenticationError);
});

test("stream on the runtime's own WebSocket (Node 22+, or Node 20 with --experimental-websocket)", { timeout: 60_000 }, async (t) => {
  const flags = typeof WebSocket === "function" ? [] : ["--experimental-websocket"];
  const probe = await promisify(execFile)(process.execPath, [...flags, "-e", "process.stdout.write(typeof WebSocket)"]).catch(() => null);
  if (probe?.stdout !== "function") {
    t.skip("this Node has no built-in WebSocket");
    return;
  }
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL });
  const script = `
    import { Client } from "@vidgate/sdk";
    const client = new Client({ apiKey: ${JSON.stringify(key)}, baseUrl: ${JSON.stringify(gw.baseUrl)} });
    const events = [];
    for await (const e of client.videos.stream(${JSON.stringify(job.id)}, { transport: "websocket" })) events.push([e.type, e.data.status]);
    process.stdout.write(JSON.stringify(events));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, "--input-type=module", "-e", script], {
    cwd: join(PACKAGE_DIR, "test"),
  });
  const events = JSON.parse(stdout);
  assert.equal(events[0][0], "job.snapshot");
  assert.deepEqual(events.at(-1), [events.length === 1 ? "job.snapshot" : "job.updated", "completed"]);
});
