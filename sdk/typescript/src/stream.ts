/**
 * A job's lifecycle as an async iterator: over the websocket when the runtime has one (or one is
 * injected), otherwise over server-sent events, which need nothing but `fetch`. Both carry the same
 * messages: a snapshot on connect, one update per lifecycle event, and the end after a terminal
 * status. A dropped connection is reopened; the new snapshot brings the consumer up to date.
 */

import { APIConnectionError, APIError, VidgateError } from "./errors.js";
import { backoffMs, type Transport } from "./http.js";
import { abortReason, globalWebSocket, sleep } from "./runtime.js";
import { TERMINAL_STATUSES, type StreamEvent, type WebSocketConstructor, type WebSocketLike } from "./types.js";
import type { Video } from "./types.gen.js";

export interface StreamOptions {
  signal?: AbortSignal;
  /** How often the gateway sends a heartbeat while nothing happens (1000 to 10000 ms). */
  intervalMs?: number;
  /** End after a terminal status (the default); `false` keeps listening until you stop. Websocket only. */
  closeOnTerminal?: boolean;
  /** `auto` (the default) uses a WebSocket when one is available, else server-sent events. */
  transport?: "auto" | "websocket" | "sse";
  /** A stream token (`videos.streamToken`) to authenticate with instead of the API key. Websocket only. */
  token?: string;
  /** Reconnections in a row before giving up (default 5). */
  maxReconnects?: number;
}

export interface StreamContext {
  transport: Transport;
  apiKey: string | undefined;
  WebSocket: WebSocketConstructor | undefined;
  websocketUrl(videoId: string, options: { intervalMs?: number; closeOnTerminal?: boolean }): string;
  absolutize(video: Video): Video;
}

const PROTOCOL = "vidgate.v1";
const DEFAULT_INTERVAL_MS = 10_000;
const IDLE_SLACK_MS = 5_000;
// Close codes the gateway uses to refuse a stream: retrying cannot help.
const REFUSALS: Record<number, [number, string]> = {
  4400: [400, "validation_error"],
  4401: [401, "unauthorized"],
  4404: [404, "not_found"],
  4429: [429, "rate_limited"],
};

export async function* streamEvents(
  ctx: StreamContext,
  videoId: string,
  options: StreamOptions = {},
): AsyncGenerator<StreamEvent> {
  const transport = options.transport ?? "auto";
  const Ctor = ctx.WebSocket ?? (globalWebSocket() as WebSocketConstructor | undefined);
  if (transport === "websocket" || (transport === "auto" && (Ctor || options.token))) {
    if (!Ctor) {
      throw new VidgateError(
        "no WebSocket in this runtime: pass { WebSocket } to new Client() (for example from the ws package) or use transport: 'sse'",
      );
    }
    yield* overWebSocket(ctx, Ctor, videoId, options);
  } else {
    yield* overServerSentEvents(ctx, videoId, options);
  }
}

function isTerminal(event: StreamEvent): boolean {
  return event.type === "job.deleted" || TERMINAL_STATUSES.has(event.data.status);
}

function toEvent(ctx: StreamContext, raw: string): StreamEvent | undefined {
  let msg: { type?: string; event?: string; id?: string; data?: unknown };
  try {
    msg = JSON.parse(raw);
  } catch {
    return undefined;
  }
  switch (msg?.type) {
    case "job.snapshot":
      return { type: "job.snapshot", data: ctx.absolutize(msg.data as Video) };
    case "job.updated":
      return { type: "job.updated", event: String(msg.event), id: String(msg.id), data: ctx.absolutize(msg.data as Video) };
    case "job.deleted":
      return { type: "job.deleted", data: msg.data as never };
    default:
      return undefined; // heartbeats, pongs
  }
}

type SocketItem =
  | { kind: "open" }
  | { kind: "message"; data: unknown }
  | { kind: "error" }
  | { kind: "close"; code: number; reason: string }
  | { kind: "idle" };

/** A queue of socket happenings that one reader pulls from, with an abort signal and an idle limit. */
class Inbox {
  private items: SocketItem[] = [];
  private waiter: ((item: SocketItem) => void) | undefined;

  push(item: SocketItem): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      waiter(item);
    } else {
      this.items.push(item);
    }
  }

  next(signal: AbortSignal | undefined, idleMs: number): Promise<SocketItem> {
    const ready = this.items.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiter = undefined;
      };
      const onAbort = () => {
        done();
        reject(abortReason(signal as AbortSignal));
      };
      const timer = setTimeout(() => {
        done();
        resolve({ kind: "idle" });
      }, idleMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiter = (item) => {
        done();
        resolve(item);
      };
    });
  }
}

async function* overWebSocket(
  ctx: StreamContext,
  Ctor: WebSocketConstructor,
  videoId: string,
  options: StreamOptions,
): AsyncGenerator<StreamEvent> {
  const { signal, token } = options;
  const closeOnTerminal = options.closeOnTerminal ?? true;
  if (!token && !ctx.apiKey) throw new VidgateError("no API key and no stream token to open the websocket with");
  let url = ctx.websocketUrl(videoId, { intervalMs: options.intervalMs, closeOnTerminal: options.closeOnTerminal });
  if (token) url += `${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
  // The key travels as a subprotocol offer (never in the URL); the gateway selects vidgate.v1.
  const protocols = token ? undefined : [PROTOCOL, `bearer.${ctx.apiKey}`];
  const idleMs = 2 * (options.intervalMs ?? DEFAULT_INTERVAL_MS) + IDLE_SLACK_MS;
  const maxReconnects = options.maxReconnects ?? 5;
  let failures = 0;
  while (true) {
    if (signal?.aborted) throw abortReason(signal);
    const inbox = new Inbox();
    const listeners: Record<string, (event: any) => void> = {
      open: () => inbox.push({ kind: "open" }),
      message: (event) => inbox.push({ kind: "message", data: event?.data }),
      error: () => inbox.push({ kind: "error" }),
      close: (event) => inbox.push({ kind: "close", code: Number(event?.code ?? 1006), reason: String(event?.reason ?? "") }),
    };
    let socket: WebSocketLike;
    try {
      socket = protocols ? new Ctor(url, protocols) : new Ctor(url);
    } catch (err) {
      throw new APIConnectionError(`could not open ${url}: ${(err as Error)?.message ?? err}`, { cause: err });
    }
    for (const [type, fn] of Object.entries(listeners)) socket.addEventListener(type, fn);
    let dropped = "";
    try {
      while (!dropped) {
        const item = await inbox.next(signal, idleMs);
        if (item.kind === "message") {
          if (typeof item.data !== "string") continue;
          const event = toEvent(ctx, item.data);
          if (!event) continue;
          failures = 0;
          yield event;
          if (event.type === "job.deleted" || (closeOnTerminal && isTerminal(event))) return;
        } else if (item.kind === "close") {
          if (item.code === 1000) return; // the gateway ended the stream: the job is over
          const refusal = REFUSALS[item.code];
          if (refusal) {
            throw APIError.from(refusal[0], { error: { code: refusal[1], message: item.reason || `closed with ${item.code}` } });
          }
          dropped = `closed with ${item.code}${item.reason ? ` (${item.reason})` : ""}`;
        } else if (item.kind === "idle") {
          dropped = `nothing received for ${idleMs} ms`;
        }
        // "open" and "error" need nothing: an error is always followed by a close.
      }
    } finally {
      for (const [type, fn] of Object.entries(listeners)) socket.removeEventListener(type, fn);
      if (socket.readyState < 2) {
        try {
          socket.close(1000);
        } catch {
          // already going away
        }
      }
    }
    if (++failures > maxReconnects) throw new APIConnectionError(`the stream for ${videoId} kept dropping: ${dropped}`);
    await sleep(backoffMs(failures), signal);
  }
}

async function* overServerSentEvents(ctx: StreamContext, videoId: string, options: StreamOptions): AsyncGenerator<StreamEvent> {
  const { signal } = options;
  const idleMs = 2 * (options.intervalMs ?? DEFAULT_INTERVAL_MS) + IDLE_SLACK_MS;
  const maxReconnects = options.maxReconnects ?? 5;
  let lastEventId: string | undefined;
  let failures = 0;
  while (true) {
    let dropped: string;
    try {
      const response = await ctx.transport.send(
        {
          operation: "streamVideoEvents",
          path: { video_id: videoId },
          query: { interval_ms: options.intervalMs },
          headers: { Accept: "text/event-stream", ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}) },
          idempotent: true,
          raw: true,
        },
        { signal },
      );
      if (response.status === 204 || !response.body) return; // reconnected to a finished job
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let frame: { event?: string; data: string[]; id?: string } = { data: [] };
      try {
        while (true) {
          const chunk = await readWithin(reader, idleMs);
          if (chunk === "idle") {
            dropped = `nothing received for ${idleMs} ms`;
            break;
          }
          if (chunk.done) {
            dropped = "the event stream ended early";
            break;
          }
          buffer += chunk.value;
          let newline: number;
          while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
            if (line === "") {
              if (frame.id) lastEventId = frame.id;
              const event = frame.data.length ? toEvent(ctx, frame.data.join("\n")) : undefined;
              frame = { data: [] };
              if (!event) continue;
              failures = 0;
              yield event;
              if (isTerminal(event)) return;
              continue;
            }
            if (line.startsWith(":")) continue; // heartbeat comment
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") frame.data.push(value);
            else if (field === "event") frame.event = value;
            else if (field === "id") frame.id = value;
          }
        }
      } finally {
        reader.cancel().catch(() => undefined);
      }
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      if (!(err instanceof APIConnectionError) && !(err instanceof TypeError)) throw err;
      dropped = (err as Error).message;
    }
    if (++failures > maxReconnects) throw new APIConnectionError(`the event stream for ${videoId} kept dropping: ${dropped}`);
    await sleep(backoffMs(failures), signal);
  }
}

async function readWithin<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T> | "idle"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<"idle">((resolve) => {
    timer = setTimeout(() => resolve("idle"), ms);
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } finally {
    clearTimeout(timer);
  }
}
