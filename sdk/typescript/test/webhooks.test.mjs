// Webhook signatures checked against real deliveries from the gateway to a receiver on 127.0.0.1,
// and the reference's x-phaseo-* scheme.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Client, WebhookVerificationError, signWebhook, verifyWebhook, webhooks } from "@vidgate/sdk";

import { MODEL, SMALL, gateway, newKey, prompt } from "./helpers/gateway.mjs";

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
let gw;
let client;
let receiver;
let receiverUrl;
const deliveries = [];
const waiters = new Set();

before(async () => {
  gw = await gateway();
  client = new Client({ apiKey: await newKey(gw, "webhook-tests"), baseUrl: gw.baseUrl });
  receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
      for (const check of waiters) check();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}/hooks/vidgate`;
});
after(() => new Promise((r) => receiver?.close(r)));

/** Deliveries matching `predicate`, once at least `count` have arrived. */
function received(predicate, count = 1, ms = 30_000) {
  return new Promise((resolvePromise, reject) => {
    const check = () => {
      const found = deliveries.filter(predicate);
      if (found.length >= count) {
        waiters.delete(check);
        clearTimeout(timer);
        resolvePromise(found);
      }
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`only ${deliveries.filter(predicate).length} of ${count} deliveries arrived`));
    }, ms);
    waiters.add(check);
    check();
  });
}

const forJob = (id, type) => (d) => {
  const body = JSON.parse(d.body.toString("utf8"));
  return body.data?.id === id && (!type || body.type === type);
};

test("real deliveries verify, and anything altered does not", { timeout: 60_000 }, async () => {
  const job = await client.generateVideo({
    model: MODEL,
    prompt: prompt(),
    ...SMALL,
    webhook: { url: receiverUrl, secret: SECRET },
  });
  const [delivery] = await received(forJob(job.id, "video.completed"));
  assert.ok(delivery.headers["webhook-signature"].startsWith("v1,"));

  const event = await webhooks.verify(delivery.body, delivery.headers, SECRET);
  assert.equal(event.type, "video.completed");
  assert.equal(event.id, delivery.headers["webhook-id"]);
  assert.equal(event.data.id, job.id);
  assert.equal(event.data.status, "completed");
  assert.equal((await client.webhooks.verify(delivery.body.toString("utf8"), new Headers(delivery.headers), SECRET)).id, event.id);
  assert.equal((await verifyWebhook(new Uint8Array(delivery.body), delivery.headers, SECRET)).id, event.id);
  for (const d of deliveries.filter(forJob(job.id))) {
    assert.equal((await verifyWebhook(d.body, d.headers, SECRET)).data.id, job.id);
  }

  const tampered = Buffer.from(delivery.body.toString("utf8").replace('"completed"', '"failed"'));
  await assert.rejects(verifyWebhook(tampered, delivery.headers, SECRET), WebhookVerificationError);
  const otherSecret = `whsec_${randomBytes(32).toString("base64")}`;
  await assert.rejects(verifyWebhook(delivery.body, delivery.headers, otherSecret), WebhookVerificationError);
  const later = Date.now() + 10 * 60 * 1000;
  await assert.rejects(verifyWebhook(delivery.body, delivery.headers, SECRET, { now: later }), /too old/);
  assert.ok(await verifyWebhook(delivery.body, delivery.headers, SECRET, { now: later, toleranceSeconds: 3600 }));
  // Both schemes sign every delivery: either one alone verifies, neither is refused.
  const { ["webhook-signature"]: _, ...referenceSigned } = delivery.headers;
  assert.equal((await verifyWebhook(delivery.body, referenceSigned, SECRET)).id, event.id);
  const { ["x-phaseo-signature"]: __, ...unsigned } = referenceSigned;
  await assert.rejects(verifyWebhook(delivery.body, unsigned, SECRET), /no webhook signature headers/);

  if (delivery.headers["x-phaseo-signature"]) {
    // The gateway also signs in the reference's scheme: check that signature on its own.
    assert.equal((await verifyWebhook(delivery.body, delivery.headers, SECRET, { scheme: "reference" })).id, event.id);
  }
});

test("the delivery log lists deliveries, and a redelivery arrives signed with the same id", { timeout: 60_000 }, async () => {
  const job = await client.videos.create({ model: MODEL, prompt: prompt(), ...SMALL, webhook: { url: receiverUrl, secret: SECRET, events: ["video.completed"] } });
  const [first] = await received(forJob(job.id, "video.completed"));
  let log;
  for (let i = 0; i < 50; i++) {
    log = await client.videos.listWebhookDeliveries(job.id);
    if (log.data.some((d) => d.status === "delivered")) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(log.object, "list");
  const entry = log.data.find((d) => d.event_type === "video.completed");
  assert.equal(entry.status, "delivered");
  assert.equal(entry.url, receiverUrl);
  assert.equal(entry.event_id, first.headers["webhook-id"]);
  assert.equal(entry.log.at(-1).status_code, 204);

  const queued = await client.videos.redeliverWebhook(job.id, entry.id);
  assert.equal(queued.id, entry.id);
  const both = await received(forJob(job.id, "video.completed"), 2);
  const again = both[1];
  assert.equal(again.headers["webhook-id"], first.headers["webhook-id"], "receivers can deduplicate on webhook-id");
  assert.equal((await verifyWebhook(again.body, again.headers, SECRET)).id, entry.event_id);
});

test("signWebhook produces exactly the Standard Webhooks and reference signatures", async () => {
  const body = JSON.stringify({ id: "evt_1", type: "video.completed", created_at: 1, data: { id: "vid_1", status: "completed" } });
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = await signWebhook({ payload: body, secret: SECRET, id: "evt_1", timestamp });
  const key = Buffer.from(SECRET.slice("whsec_".length), "base64");
  const standard = createHmac("sha256", key).update(`evt_1.${timestamp}.${body}`).digest("base64");
  assert.equal(headers["webhook-signature"], `v1,${standard}`);
  const reference = createHmac("sha256", Buffer.from(SECRET, "utf8")).update(`${timestamp}.${body}`).digest("hex");
  assert.equal(headers["x-phaseo-signature"], reference);
  assert.equal(headers["x-phaseo-timestamp"], String(timestamp));

  const { ["webhook-signature"]: _, ["webhook-id"]: __, ["webhook-timestamp"]: ___, ...referenceOnly } = headers;
  const event = await verifyWebhook(body, referenceOnly, SECRET);
  assert.equal(event.data.id, "vid_1");
  await assert.rejects(verifyWebhook(`${body} `, referenceOnly, SECRET), WebhookVerificationError);
  await assert.rejects(verifyWebhook(body, { ...referenceOnly, "x-phaseo-signature": "00".repeat(32) }, SECRET), WebhookVerificationError);
  await assert.rejects(verifyWebhook(body, { ...referenceOnly, "x-phaseo-timestamp": String(timestamp - 3600) }, SECRET), /too old/);
  // Several signatures in one header (during a secret rotation): any match passes.
  const rotated = { ...headers, "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")} ${headers["webhook-signature"]}` };
  assert.equal((await verifyWebhook(body, rotated, SECRET, { scheme: "standard" })).id, "evt_1");
});

test("a secret that is not whsec_ + base64 keys both schemes with its UTF-8 bytes, as the gateway does", async () => {
  const plain = "my-reference-secret-1";
  const body = '{"id":"evt_3","type":"video.completed","created_at":1,"data":{"id":"vid_3"}}';
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = await signWebhook({ payload: body, secret: plain, id: "evt_3", timestamp });
  const standard = createHmac("sha256", Buffer.from(plain, "utf8")).update(`evt_3.${timestamp}.${body}`).digest("base64");
  assert.equal(headers["webhook-signature"], `v1,${standard}`);
  assert.equal((await verifyWebhook(body, headers, plain, { scheme: "standard" })).id, "evt_3");
  assert.equal((await verifyWebhook(body, headers, plain, { scheme: "reference" })).id, "evt_3");
  await assert.rejects(verifyWebhook(body, headers, "my-reference-secret-2"), WebhookVerificationError);
});

test("verification works without a global crypto (as on Node 18)", { timeout: 30_000 }, async () => {
  const body = '{"id":"evt_2","type":"video.completed","created_at":1,"data":{"id":"vid_2"}}';
  const headers = await signWebhook({ payload: body, secret: SECRET, id: "evt_2" });
  const script = join(mkdtempSync(join(tmpdir(), "vidgate-sdk-crypto-")), "verify.cjs");
  writeFileSync(
    script,
    `delete globalThis.crypto;
    const { verifyWebhook } = require(${JSON.stringify(join(PACKAGE_DIR, "dist", "cjs", "index.js"))});
    verifyWebhook(${JSON.stringify(body)}, ${JSON.stringify(headers)}, ${JSON.stringify(SECRET)})
      .then((e) => process.stdout.write(typeof globalThis.crypto + " " + e.id));`,
  );
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [script]);
    assert.equal(stdout, "undefined evt_2");
  } finally {
    rmSync(dirname(script), { recursive: true, force: true });
  }
});
