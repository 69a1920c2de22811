/**
 * Webhook signatures, checked with WebCrypto so receivers on any runtime can use them.
 *
 * vidgate signs every delivery per Standard Webhooks: `webhook-id`, `webhook-timestamp` and
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the bytes
 * the secret's base64 (after `whsec_`) encodes, or by any other secret's UTF-8 bytes. The hosted reference's scheme is also accepted:
 * `x-phaseo-timestamp` and `x-phaseo-signature: <hex HMAC-SHA256 of "{timestamp}.{body}">`, keyed
 * by the secret's UTF-8 bytes.
 */

import { WebhookVerificationError } from "./errors.js";
import { webcrypto } from "./runtime.js";
import type { JobEvent } from "./types.js";

/** Request headers as `fetch`'s `Headers`, Node's `IncomingHttpHeaders` or a plain record. */
export type HeadersInput = Headers | Record<string, string | string[] | undefined> | Iterable<[string, string]>;

export type WebhookPayload = string | Uint8Array | ArrayBuffer;

export interface VerifyOptions {
  /** Oldest (and furthest in the future) a delivery's timestamp may be, in seconds. Default 300. */
  toleranceSeconds?: number;
  /** The current time (a Date or epoch milliseconds); for tests. */
  now?: Date | number;
  /** Which signature to check; `auto` takes Standard Webhooks when present, else the reference's. */
  scheme?: "auto" | "standard" | "reference";
}

export interface SignInput {
  payload: WebhookPayload;
  secret: string;
  /** The delivery id (Standard Webhooks `webhook-id`); the event id by convention. */
  id: string;
  /** Seconds since the epoch; now when omitted. */
  timestamp?: number;
}

const DEFAULT_TOLERANCE_SECONDS = 300;
const encoder = new TextEncoder();

/**
 * Verify a delivery and return its event. Pass the raw body exactly as received (not re-serialised
 * JSON). Throws `WebhookVerificationError` when the signature, timestamp or body does not check out.
 */
export async function verifyWebhook(
  payload: WebhookPayload,
  headers: HeadersInput,
  secret: string,
  options: VerifyOptions = {},
): Promise<JobEvent> {
  const h = normalizeHeaders(headers);
  const body = toBytes(payload);
  const scheme = options.scheme ?? "auto";
  const standard = scheme === "standard" || (scheme === "auto" && h.has("webhook-signature"));
  const reference = !standard && (scheme === "reference" || (scheme === "auto" && h.has("x-phaseo-signature")));
  if (standard) {
    await verifyStandard(body, h, secret, options);
  } else if (reference) {
    await verifyReference(body, h, secret, options);
  } else {
    throw new WebhookVerificationError("no webhook signature headers (webhook-signature or x-phaseo-signature)");
  }
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new WebhookVerificationError("the webhook body is not JSON");
  }
  if (!isEvent(event)) throw new WebhookVerificationError("the webhook body is not a lifecycle event");
  return event;
}

/** The headers a delivery of `payload` carries in both schemes (to test a receiver). */
export async function signWebhook(input: SignInput): Promise<Record<string, string>> {
  const timestamp = String(input.timestamp ?? Math.floor(Date.now() / 1000));
  const body = toBytes(input.payload);
  const standard = await hmac(standardKey(input.secret), concat(encoder.encode(`${input.id}.${timestamp}.`), body));
  const reference = await hmac(encoder.encode(input.secret), concat(encoder.encode(`${timestamp}.`), body));
  return {
    "webhook-id": input.id,
    "webhook-timestamp": timestamp,
    "webhook-signature": `v1,${toBase64(standard)}`,
    "x-phaseo-timestamp": timestamp,
    "x-phaseo-signature": toHex(reference),
  };
}

/** `verifyWebhook` and `signWebhook` together, for `import { webhooks } from "@vidgate/sdk"`. */
export const webhooks = { verify: verifyWebhook, sign: signWebhook };

async function verifyStandard(body: Uint8Array, h: Map<string, string>, secret: string, options: VerifyOptions) {
  const id = h.get("webhook-id");
  const timestamp = h.get("webhook-timestamp");
  const signatures = h.get("webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header");
  }
  checkTimestamp(timestamp, options);
  const key = await importKey(standardKey(secret));
  const signed = concat(encoder.encode(`${id}.${timestamp}.`), body);
  for (const entry of signatures.split(" ")) {
    const [version, signature] = entry.split(",", 2);
    if (version !== "v1" || !signature) continue;
    const mac = fromBase64(signature);
    if (mac && (await (await webcrypto()).subtle.verify("HMAC", key, mac as BufferSource, signed as BufferSource))) return;
  }
  throw new WebhookVerificationError("no webhook-signature matches this body and secret");
}

async function verifyReference(body: Uint8Array, h: Map<string, string>, secret: string, options: VerifyOptions) {
  const timestamp = h.get("x-phaseo-timestamp");
  const header = h.get("x-phaseo-signature");
  if (!timestamp || !header) {
    throw new WebhookVerificationError("missing x-phaseo-timestamp or x-phaseo-signature header");
  }
  checkTimestamp(timestamp, options);
  const key = await importKey(encoder.encode(secret));
  const signed = concat(encoder.encode(`${timestamp}.`), body);
  const mac = fromHex(header.trim().replace(/^(sha256|v1)=/, ""));
  if (!mac || !(await (await webcrypto()).subtle.verify("HMAC", key, mac as BufferSource, signed as BufferSource))) {
    throw new WebhookVerificationError("x-phaseo-signature does not match this body and secret");
  }
}

function checkTimestamp(raw: string, options: VerifyOptions): void {
  if (!/^\d{1,16}$/.test(raw.trim())) throw new WebhookVerificationError(`invalid webhook timestamp ${raw}`);
  let seconds = Number(raw);
  if (seconds > 1e12) seconds = Math.floor(seconds / 1000); // sent in milliseconds
  const now = options.now === undefined ? Date.now() : Number(options.now);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const skew = now / 1000 - seconds;
  if (skew > tolerance) throw new WebhookVerificationError("webhook timestamp is too old (a replay?)");
  if (skew < -tolerance) throw new WebhookVerificationError("webhook timestamp is in the future");
}

/**
 * The Standard Webhooks key of a secret, by the gateway's rule: `whsec_` + standard base64 stands
 * for the bytes it encodes; any other string (the reference accepts any) for its own UTF-8 bytes.
 */
function standardKey(secret: string): Uint8Array {
  if (secret.length === 0) throw new WebhookVerificationError("the webhook secret is empty");
  if (secret.startsWith("whsec_") && /^[A-Za-z0-9+/]+={0,2}$/.test(secret.slice(6))) {
    const key = fromBase64(secret.slice(6));
    if (key && key.length > 0) return key;
  }
  return new TextEncoder().encode(secret);
}

async function importKey(raw: Uint8Array): Promise<CryptoKey> {
  const crypto = await webcrypto();
  return crypto.subtle.importKey("raw", raw as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const crypto = await webcrypto();
  return new Uint8Array(await crypto.subtle.sign("HMAC", await importKey(key), data as BufferSource));
}

function normalizeHeaders(headers: HeadersInput): Map<string, string> {
  const out = new Map<string, string>();
  const entries: Iterable<[string, unknown]> =
    typeof (headers as Headers).forEach === "function" && typeof (headers as Headers).get === "function"
      ? collect(headers as Headers)
      : Symbol.iterator in (headers as object)
        ? (headers as Iterable<[string, string]>)
        : Object.entries(headers as Record<string, unknown>);
  for (const [name, value] of entries) {
    if (value === undefined || value === null) continue;
    out.set(name.toLowerCase(), Array.isArray(value) ? value.join(" ") : String(value));
  }
  return out;
}

function collect(headers: Headers): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  headers.forEach((value, name) => out.push([name, value]));
  return out;
}

function toBytes(payload: WebhookPayload): Uint8Array {
  if (typeof payload === "string") return encoder.encode(payload);
  if (payload instanceof Uint8Array) return payload;
  if (payload instanceof ArrayBuffer) return new Uint8Array(payload);
  throw new WebhookVerificationError("pass the raw webhook body as a string, Uint8Array or ArrayBuffer");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(text: string): Uint8Array | undefined {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function isEvent(value: unknown): value is JobEvent {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === "string" && typeof v.type === "string" && typeof v.data === "object" && v.data !== null;
}
