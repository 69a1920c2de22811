// Downloads: the web stream checked against the stored sha256, and the Node helper that writes a
// file, resumes with Range after an interruption and refuses bytes that do not hash right.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, test } from "node:test";

import { ChecksumMismatchError, Client, NotReadyError, Sha256 } from "@vidgate/sdk";
import { downloadToFile } from "@vidgate/sdk/node";

import { LONG, MODEL, gateway, newKey, prompt } from "./helpers/gateway.mjs";
import { startProxy } from "./helpers/proxy.mjs";

const MEDIUM = { duration: 2, size: "320x180" };
let gw;
let key;
let client;
let proxy;
let viaProxy;
let video; // a finished job
let bytes; // its output
let dir;

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

before(async () => {
  gw = await gateway();
  key = await newKey(gw, "download-tests");
  client = new Client({ apiKey: key, baseUrl: gw.baseUrl });
  proxy = await startProxy(gw.baseUrl);
  viaProxy = new Client({ apiKey: key, baseUrl: proxy.baseUrl });
  video = await client.videos.createAndWait({ model: MODEL, prompt: prompt(), ...MEDIUM }, { maxIntervalMs: 250 });
  assert.equal(video.status, "completed");
  bytes = Buffer.from(await client.getVideoContent(video.id));
  dir = mkdtempSync(join(tmpdir(), "vidgate-sdk-download-"));
});
after(async () => {
  await proxy?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => proxy.clear());

test("the incremental SHA-256 matches node:crypto for every padding case and chunking", () => {
  for (const size of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65_537]) {
    const data = randomBytes(size);
    assert.equal(new Sha256().update(data).hex(), sha256(data), `size ${size}`);
    const chunked = new Sha256();
    for (let i = 0; i < size; i += 7) chunked.update(data.subarray(i, i + 7));
    assert.equal(chunked.hex(), sha256(data), `size ${size} in 7-byte chunks`);
  }
});

test("download() streams the output and checks its sha256 as it goes", async () => {
  const asset = video.outputs[0].asset;
  assert.ok(asset.bytes > 4000, "a file big enough to cut in pieces");
  const streamed = await readAll(await client.videos.download(video.id));
  assert.equal(streamed.length, asset.bytes);
  assert.equal(sha256(streamed), asset.sha256);
  const tail = await readAll(await client.videos.download(video.id, { offset: 1000 }));
  assert.deepEqual(tail, bytes.subarray(1000));
});

test("download() errors at the end when the bytes are not the stored ones", async () => {
  const corrupting = async (url, init) => {
    const response = await fetch(url, init);
    if (!url.includes("/content")) return response;
    const body = new Uint8Array(await response.arrayBuffer());
    body[body.length >> 1] ^= 0xff;
    return new Response(body, { status: response.status, headers: response.headers });
  };
  const corrupt = new Client({ apiKey: key, baseUrl: gw.baseUrl, fetch: corrupting });
  const err = await readAll(await corrupt.videos.download(video.id)).catch((e) => e);
  assert.ok(err instanceof ChecksumMismatchError, String(err));
  assert.equal(err.expected, video.outputs[0].asset.sha256);
  const unchecked = await readAll(await corrupt.videos.download(video.id, { verify: false }));
  assert.equal(unchecked.length, bytes.length);
});

test("downloadToFile writes the file after checking its sha256", async () => {
  const path = join(dir, "whole.mp4");
  const progress = [];
  const saved = await downloadToFile(client, video.id, path, { onProgress: (p) => progress.push(p) });
  assert.deepEqual(saved, { path, bytes: bytes.length, sha256: video.outputs[0].asset.sha256, resumedFrom: 0 });
  assert.deepEqual(readFileSync(path), bytes);
  assert.ok(!existsSync(`${path}.part`));
  assert.deepEqual(progress.at(-1), { bytes: bytes.length, total: bytes.length });
});

test("downloadToFile resumes a .part file left by an earlier download with Range", async () => {
  const path = join(dir, "resumed.mp4");
  writeFileSync(`${path}.part`, bytes.subarray(0, 1000));
  const saved = await downloadToFile(viaProxy, video.id, path);
  assert.equal(saved.resumedFrom, 1000);
  assert.deepEqual(readFileSync(path), bytes);
  const content = proxy.requests.filter((r) => r.url.includes("/content"));
  assert.equal(content.length, 1);
  assert.equal(content[0].headers.range, "bytes=1000-");
  assert.equal(content[0].headers["if-range"], `"${video.outputs[0].asset.sha256}"`);
  assert.equal(content[0].status, 206);
});

test("downloadToFile picks up where a connection dropped mid-body", async () => {
  const path = join(dir, "interrupted.mp4");
  // Cut once the 2,000 bytes are in the part file, as a client that had read them before the drop.
  const kept = () => existsSync(`${path}.part`) && statSync(`${path}.part`).size >= 2000;
  proxy.fault("GET", /\/content/, { kind: "cut", afterBytes: 2000, until: kept });
  const saved = await downloadToFile(viaProxy, video.id, path);
  assert.equal(saved.sha256, video.outputs[0].asset.sha256);
  assert.deepEqual(readFileSync(path), bytes);
  const content = proxy.requests.filter((r) => r.url.includes("/content"));
  assert.equal(content.length, 2);
  assert.equal(content[0].headers.range, undefined);
  assert.equal(content[1].headers.range, "bytes=2000-");
});

test("downloadToFile refuses bytes that do not hash to the stored sha256, and starts clean next time", async () => {
  const path = join(dir, "corrupt.mp4");
  writeFileSync(`${path}.part`, randomBytes(1000)); // not the file's first 1000 bytes
  const err = await downloadToFile(client, video.id, path).catch((e) => e);
  assert.ok(err instanceof ChecksumMismatchError, String(err));
  assert.ok(!existsSync(path) && !existsSync(`${path}.part`));
  await downloadToFile(client, video.id, path);
  assert.deepEqual(readFileSync(path), bytes);
});

test("downloadToFile starts over when the .part file is longer than the output", async () => {
  const path = join(dir, "too-long.mp4");
  writeFileSync(`${path}.part`, Buffer.concat([bytes, randomBytes(10)]));
  const saved = await downloadToFile(client, video.id, path);
  assert.equal(saved.resumedFrom, 0);
  assert.equal(statSync(path).size, bytes.length);
});

test("downloadToFile on an unfinished job is NotReadyError", { timeout: 30_000 }, async () => {
  const long = await client.videos.create({ model: MODEL, prompt: prompt(), ...LONG });
  try {
    const err = await downloadToFile(client, long.id, join(dir, "never.mp4")).catch((e) => e);
    assert.ok(err instanceof NotReadyError);
    assert.equal(err.code, "not_ready");
    await assert.rejects(client.videos.download(long.id, { maxRetries: 0 }), NotReadyError);
  } finally {
    await client.videos.cancel(long.id);
  }
});
