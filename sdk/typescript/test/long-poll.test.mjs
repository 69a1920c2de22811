// wait's long polls (`?wait=` with If-None-Match) and its fallback to the poll_after_seconds pace
// where the gateway does not hold polls (a proxy that answers as the hosted reference does).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client } from "@vidgate/sdk";

import { LONG, MODEL, gateway, newKey, prompt } from "./helpers/gateway.mjs";
import { startProxy } from "./helpers/proxy.mjs";

const RENDER = { duration: 8, size: "640x360" }; // about 1.5 s of render: several changes to wake on
let gw;
let key;
let holding;
let reference;

before(async () => {
  gw = await gateway();
  key = await newKey(gw, "long-poll-tests");
  holding = await startProxy(gw.baseUrl);
  reference = await startProxy(gw.baseUrl, { noLongPolls: true });
});

after(async () => {
  await holding?.close();
  await reference?.close();
});

function pollsOf(proxy, id) {
  return proxy.requests.filter((r) => r.method === "GET" && new URL(r.url, "http://x").pathname === `/v1/videos/${id}`);
}

test("wait long-polls on the version it last saw and reports each change once", { timeout: 60_000 }, async () => {
  const client = new Client({ apiKey: key, baseUrl: holding.baseUrl });
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...RENDER });
  const seen = [];
  const done = await client.videos.wait(job.id, { onProgress: (v) => seen.push(v) });
  assert.equal(done.status, "completed");
  const polls = pollsOf(holding, job.id);
  assert.ok(polls.length >= 2);
  assert.equal(new URL(polls[0].url, "http://x").search, "", "a first plain look");
  assert.equal(polls[0].headers["if-none-match"], undefined);
  for (const poll of polls.slice(1)) {
    assert.match(new URL(poll.url, "http://x").searchParams.get("wait") ?? "", /^[0-9.]+$/);
    assert.match(poll.headers["if-none-match"] ?? "", new RegExp(`^W/"${job.id}-[0-9]+`));
    assert.equal(poll.status, 200, "each held poll returned on a change");
  }
  assert.equal(seen.length, polls.length);
  assert.equal(seen.at(-1).status, "completed");
});

test("a held poll that runs its course unchanged is a 304, and wait keeps holding", { timeout: 60_000 }, async () => {
  const client = new Client({ apiKey: key, baseUrl: holding.baseUrl });
  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  const controller = new AbortController();
  const seen = [];
  try {
    const waiting = client.videos.wait(long.id, {
      signal: controller.signal,
      maxIntervalMs: 300, // holds of 0.3 s: some run their course before the next change
      onProgress: (v) => seen.push(v),
    });
    const deadline = Date.now() + 30_000;
    while (!pollsOf(holding, long.id).some((p) => p.status === 304) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    await waiting.catch(() => undefined);
    const polls = pollsOf(holding, long.id);
    assert.ok(polls.some((p) => p.status === 304), "an unchanged hold answered 304");
    assert.ok(seen.length < polls.length, "a 304 is not reported as progress");
  } finally {
    await client.videos.cancel(long.id).catch(() => undefined);
  }
});

test("where polls are not held, wait follows poll_after_seconds", { timeout: 60_000 }, async () => {
  const client = new Client({ apiKey: key, baseUrl: reference.baseUrl });
  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  try {
    const controller = new AbortController();
    const polls = [];
    const waiting = client.videos.wait(long.id, {
      signal: controller.signal,
      onProgress: (video) => {
        polls.push({ at: Date.now(), video });
        if (polls.length === 2) controller.abort();
      },
    });
    // Aborted after the second poll, unless that poll found the render done (then wait returned it).
    const outcome = await waiting.catch((err) => err);
    assert.ok(outcome?.name === "AbortError" || outcome?.status === "completed", String(outcome));
    assert.equal(polls.length, 2);
    const asked = polls[0].video.poll_after_seconds * 1000;
    assert.ok(asked >= 1000, "a running job comes with a poll_after_seconds hint");
    assert.ok(polls[1].at - polls[0].at >= asked - 20, `the second poll waited the ${asked} ms the gateway asked for`);
    assert.ok(pollsOf(reference, long.id).every((p) => p.headers["if-none-match"] === undefined));
  } finally {
    await client.videos.cancel(long.id).catch(() => undefined);
  }
});
