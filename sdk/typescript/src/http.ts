/** Sending one API call: URL building, auth, timeouts, retries with backoff, error envelopes. */

import { APIConnectionError, APIError, APITimeoutError, VidgateError } from "./errors.js";
import { abortReason, linkedController, sleep } from "./runtime.js";
import { operations, type OperationId } from "./types.gen.js";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Options every method takes. */
export interface RequestOptions {
  /** Abort the call (and any retry wait) when this signal aborts. */
  signal?: AbortSignal;
  /** Per-attempt timeout in milliseconds; overrides the client's `timeoutMs`. */
  timeoutMs?: number;
  /** Retries after a retryable failure; overrides the client's `maxRetries`. */
  maxRetries?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

export interface TransportConfig {
  baseUrl: string;
  apiKey: string | undefined;
  fetch: FetchLike;
  timeoutMs: number;
  maxRetries: number;
  headers: Record<string, string>;
}

export interface Call {
  operation: OperationId;
  path?: Record<string, string | number>;
  query?: Record<string, string | number | boolean | null | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Safe to send again after a network failure or an ambiguous status (5xx, 408). */
  idempotent: boolean;
  /** Answer with the Response once headers arrive (the body is the caller's to read). */
  raw?: boolean;
}

// 429 and 503 mean "not done, try later" for any request; these others only for requests that
// are safe to repeat, since the first attempt may have been acted on.
const RETRY_ALWAYS = new Set([429, 503]);
const RETRY_IDEMPOTENT = new Set([408, 500, 502, 504]);
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 8_000;
/** A Retry-After longer than this is not slept through: the error goes to the caller. */
const RETRY_AFTER_MAX_MS = 60_000;

export class Transport {
  constructor(readonly config: TransportConfig) {}

  url(operation: OperationId, path: Record<string, string | number> = {}, query?: Call["query"]): string {
    const template: string = operations[operation].path;
    const filled = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = path[name];
      if (value === undefined || value === "") throw new VidgateError(`${name} is required`);
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) search.set(name, String(value));
    }
    const qs = search.toString();
    return this.config.baseUrl + filled + (qs ? `?${qs}` : "");
  }

  /** Send a call and decode its JSON answer. */
  async json<T>(call: Call, options: RequestOptions = {}): Promise<T> {
    const response = await this.send({ ...call, raw: false }, options);
    const text = await response.text();
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (err) {
      throw new VidgateError(`the gateway answered ${response.status} with a body that is not JSON`, { cause: err });
    }
  }

  /** Send a call, retrying what may be retried; any error status is thrown as its typed APIError. */
  async send(call: Call, options: RequestOptions = {}): Promise<Response> {
    const { config } = this;
    if (!config.apiKey) {
      throw new VidgateError("no API key: pass { apiKey } to new Client() or set VIDGATE_API_KEY");
    }
    const method = operations[call.operation].method;
    const url = this.url(call.operation, call.path, call.query);
    const headers: Record<string, string> = {
      Accept: call.raw ? "*/*" : "application/json",
      ...config.headers,
      ...call.headers,
      ...options.headers,
      Authorization: `Bearer ${config.apiKey}`,
    };
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["Content-Type"] = "application/json";
    }
    const maxRetries = options.maxRetries ?? config.maxRetries;
    const timeoutMs = options.timeoutMs ?? config.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const { controller, dispose } = linkedController(options.signal);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      let waitMs: number | undefined;
      let handedOver = false;
      try {
        const response = await config.fetch(url, { method, headers, body, signal: controller.signal });
        if (response.ok || response.status === 304) {
          if (call.raw) {
            // The body outlives this call: the caller's signal stays linked to it, the timeout does not.
            handedOver = true;
            return response;
          }
          // Buffer here so the timeout also covers reading the body.
          const buffered = await response.arrayBuffer();
          return new Response(buffered.byteLength ? buffered : null, { status: response.status, headers: response.headers });
        }
        const error = await errorFrom(response);
        const retryable = RETRY_ALWAYS.has(response.status) || (call.idempotent && RETRY_IDEMPOTENT.has(response.status));
        if (!retryable || attempt >= maxRetries) throw error;
        const retryAfter = error.retryAfter;
        if (retryAfter !== undefined && retryAfter * 1000 > RETRY_AFTER_MAX_MS) throw error;
        waitMs = retryAfter !== undefined ? retryAfter * 1000 : undefined;
      } catch (err) {
        if (err instanceof APIError) throw err;
        if (options.signal?.aborted) throw abortReason(options.signal);
        const failure = timedOut
          ? new APITimeoutError(`${method} ${url} got no answer within ${timeoutMs} ms`, { cause: err })
          : new APIConnectionError(`${method} ${url} failed: ${describe(err)}`, { cause: err });
        if (!call.idempotent || attempt >= maxRetries) throw failure;
      } finally {
        clearTimeout(timer);
        if (!handedOver) dispose();
      }
      await sleep(waitMs ?? backoffMs(attempt), options.signal);
    }
  }
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base * 2^attempt)]. */
export function backoffMs(attempt: number): number {
  return Math.random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

async function errorFrom(response: Response): Promise<APIError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // a body that breaks off still leaves the status and headers to report
  }
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (a proxy's HTML page, say): keep the text
  }
  return APIError.from(response.status, body, response.headers);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? `${cause.message}` : "";
    return detail && detail !== err.message ? `${err.message} (${detail})` : err.message;
  }
  return String(err);
}
