// One job through the built SDK on whichever runtime runs this file (Node, Bun, Deno): create with a
// webhook, stream its events while waiting, download with sha256 checking, verify the delivery. Uses
// nothing but the SDK and web APIs; prints one JSON line, and exits non-zero on any failure.

import { Client, Sha256, WebhookVerificationError, signWebhook, verifyWebhook } from "../../dist/esm/index.js";

const env = (name) => (globalThis.Deno ? globalThis.Deno.env.get(name) : globalThis.process.env[name]);
const baseUrl = env("VIDGATE_BASE_URL");
const apiKey = env("VIDGATE_API_KEY");
const hooks = env("VIDGATE_SMOKE_HOOKS"); // the receiver the runner holds the deliveries in
const secret = env("VIDGATE_SMOKE_SECRET");

function check(ok, message) {
  if (!ok) throw new Error(message);
}

const client = new Client({ apiKey, baseUrl });
const job = await client.videos.create({
  model: "vidgate/procedural",
  prompt: `a runtime smoke test ${Math.random().toString(36).slice(2, 10)}`,
  duration: 1,
  size: "160x90",
  webhook: { url: `${hooks}/hook`, secret },
});
const signal = AbortSignal.timeout(60_000);
const streamed = [];
const streaming = (async () => {
  for await (const event of client.videos.stream(job.id, { signal })) streamed.push(event.data?.status ?? event.type);
})();
const done = await client.videos.wait(job.id, { signal });
await streaming;
check(done.status === "completed", `${job.id} ended ${done.status}: ${JSON.stringify(done.error)}`);
check(streamed.at(-1) === "completed", `the stream ended on ${streamed.at(-1)}`);

const hash = new Sha256();
let bytes = 0;
const reader = (await client.videos.download(job.id, { verify: true })).getReader();
for (let read = await reader.read(); !read.done; read = await reader.read()) {
  hash.update(read.value);
  bytes += read.value.length;
}
const sha256 = hash.hex();
check(sha256 === done.asset.sha256 && bytes === done.asset.bytes, `downloaded ${bytes} bytes hashing ${sha256}`);

const answer = await fetch(`${hooks}/deliveries/${job.id}`, { signal });
check(answer.ok, `no webhook delivery for ${job.id}: ${answer.status}`);
const delivery = await answer.json();
const body = Uint8Array.from(atob(delivery.body), (c) => c.charCodeAt(0));
const event = await verifyWebhook(body, delivery.headers, secret);
check(event.type === "video.completed" && event.data.id === job.id, `verified ${event.type} for ${event.data.id}`);
const referenceOnly = Object.fromEntries(Object.entries(delivery.headers).filter(([k]) => !k.startsWith("webhook-")));
check((await verifyWebhook(body, referenceOnly, secret)).id === event.id, "the x-phaseo-* signature alone did not verify");
const tampered = new TextEncoder().encode(new TextDecoder().decode(body).replace('"completed"', '"failed"'));
const refused = await verifyWebhook(tampered, delivery.headers, secret).then(
  () => false,
  (err) => err instanceof WebhookVerificationError,
);
check(refused, "a tampered delivery verified");
const payload = '{"id":"evt_1","type":"video.completed","data":{"id":"vid_1"}}';
const signed = await signWebhook({ payload, secret, id: "evt_1" });
check((await verifyWebhook(payload, signed, secret)).id === "evt_1", "signWebhook's headers did not verify");

console.log(
  JSON.stringify({
    job: job.id,
    stream: typeof globalThis.WebSocket === "function" ? "websocket" : "sse",
    events: streamed,
    bytes,
    sha256,
    webhook: event.id,
  }),
);
