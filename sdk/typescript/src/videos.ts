/** `client.videos`: every video route, plus waiting, streaming and verified downloads. */

import { ChecksumMismatchError, JobFailedError, VidgateError } from "./errors.js";
import type { RequestOptions, Transport } from "./http.js";
import { randomId, sleep } from "./runtime.js";
import { verifyingStream } from "./sha256.js";
import { streamEvents, type StreamContext, type StreamOptions } from "./stream.js";
import { TERMINAL_STATUSES, type ListVideosParams, type StreamEvent } from "./types.js";
import type {
  DownloadURL,
  StreamToken,
  Video,
  VideoDeleted,
  VideoGenerationRequest,
  VideoList,
  VideoModelList,
  WebhookDelivery,
  WebhookDeliveryList,
} from "./types.gen.js";

export interface CreateOptions extends RequestOptions {
  /** Sent as `Idempotency-Key`; one is generated when omitted, and kept across retries. */
  idempotencyKey?: string;
  /** Your own provider credentials for this job (`X-Provider-Key`), e.g. `{ openai: "sk-…" }`. */
  providerKeys?: Record<string, string>;
}

export interface ContentOptions extends RequestOptions {
  /** Which output (0 by default). */
  index?: number;
}

export interface DownloadOptions extends ContentOptions {
  /** Start at this byte (an HTTP Range request). */
  offset?: number;
  /** Only resume when the stored bytes still have this sha256 (`If-Range`); otherwise the whole file comes back (200). */
  ifRange?: string;
  /** Check the bytes against the gateway's sha256 as they stream (default true for whole files). */
  verify?: boolean;
}

export interface DownloadUrlOptions extends RequestOptions {
  index?: number;
  /** 60 to 3600 seconds (900 by default). */
  ttlSeconds?: number;
  disposition?: "attachment" | "inline";
}

export interface WebsocketUrlOptions {
  /** How often the gateway sends a heartbeat while nothing happens (1000 to 10000 ms). */
  intervalMs?: number;
  /** Whether the gateway closes the socket after a terminal status (true by default). */
  closeOnTerminal?: boolean;
}

export interface WaitOptions extends RequestOptions {
  /** Called with the job on the first poll and on every change a later poll finds. */
  onProgress?: (video: Video) => void;
  /** Throw `JobFailedError` when the job ends failed, cancelled or expired (default: return it). */
  throwOnFailure?: boolean;
  /** Poll at least this often, whatever `poll_after_seconds` says (ms). */
  maxIntervalMs?: number;
}

export type CreateAndWaitOptions = CreateOptions & WaitOptions;

/** What `Videos` needs from its client. */
export interface VideosContext extends StreamContext {
  transport: Transport;
}

const DEFAULT_POLL_SECONDS = 2;
/** A held poll's longest wait: under the idle timeouts of common proxies. */
const LONG_POLL_SECONDS = 25;

export class Videos {
  constructor(private readonly ctx: VideosContext) {}

  /** Create a job (`POST /v1/videos`); answers at once with `status: "queued"`. */
  async create(request: VideoGenerationRequest, options: CreateOptions = {}): Promise<Video> {
    const headers: Record<string, string> = { "Idempotency-Key": options.idempotencyKey ?? `sdk-${await randomId()}` };
    if (options.providerKeys) {
      headers["X-Provider-Key"] = Object.entries(options.providerKeys)
        .map(([provider, key]) => `${provider}=${key}`)
        .join(", ");
    }
    const video = await this.ctx.transport.json<Video>(
      { operation: "createVideo", body: request, headers, idempotent: true },
      options,
    );
    return this.ctx.absolutize(video);
  }

  /** Your jobs, newest first (`{object: "list", data, first_id, last_id, has_more}`). */
  async list(params: ListVideosParams = {}, options: RequestOptions = {}): Promise<VideoList> {
    const status = Array.isArray(params.status) ? params.status.join(",") : params.status;
    const page = await this.ctx.transport.json<VideoList>(
      {
        operation: "listVideos",
        query: { status, limit: params.limit, after: params.after, order: params.order },
        idempotent: true,
      },
      options,
    );
    return { ...page, data: page.data.map((v) => this.ctx.absolutize(v)) };
  }

  /** Every job matching `params`, page after page. */
  async *listAll(params: Omit<ListVideosParams, "after"> = {}, options: RequestOptions = {}): AsyncGenerator<Video> {
    let after: string | undefined;
    while (true) {
      const page = await this.list({ ...params, after }, options);
      yield* page.data;
      if (!page.has_more || !page.last_id) return;
      after = page.last_id;
    }
  }

  /** One job: its status, progress, outputs and billing. */
  async get(videoId: string, options: RequestOptions = {}): Promise<Video> {
    const video = await this.ctx.transport.json<Video>(
      { operation: "getVideo", path: { video_id: videoId }, idempotent: true },
      options,
    );
    return this.ctx.absolutize(video);
  }

  /** An output's bytes, in memory (`409 not_ready` until the job completes). See `download` to stream them. */
  async content(videoId: string, options: ContentOptions = {}): Promise<Uint8Array> {
    const response = await this.contentResponse(videoId, options);
    return new Uint8Array(await response.arrayBuffer());
  }

  /**
   * An output as a web `ReadableStream`, checked against the gateway's sha256 as it flows: the
   * stream errors with `ChecksumMismatchError` at the end if the bytes are not the stored ones.
   */
  async download(videoId: string, options: DownloadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const response = await this.contentResponse(videoId, options);
    if (!response.body) throw new VidgateError("the content response has no body");
    const expected = contentSha256(response);
    const partial = response.status === 206;
    if (options.verify === false || partial || !expected) return response.body;
    return response.body.pipeThrough(
      verifyingStream(expected, (actual) => new ChecksumMismatchError(expected, actual)),
    );
  }

  /** The raw content response (status 200 or 206, `ETag`, `Content-Length`), for callers that manage bytes themselves. */
  async contentResponse(videoId: string, options: DownloadOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.offset) {
      headers.Range = `bytes=${options.offset}-`;
      if (options.ifRange) headers["If-Range"] = `"${options.ifRange}"`;
    }
    return this.ctx.transport.send(
      {
        operation: "getVideoContent",
        path: { video_id: videoId },
        query: { index: options.index },
        headers,
        idempotent: true,
        raw: true,
      },
      options,
    );
  }

  /** A short-lived signed link that works without the API key (absolute). */
  async downloadUrl(videoId: string, options: DownloadUrlOptions = {}): Promise<DownloadURL> {
    const body: Record<string, unknown> = {};
    if (options.index !== undefined) body.index = options.index;
    if (options.ttlSeconds !== undefined) body.ttl_seconds = options.ttlSeconds;
    if (options.disposition !== undefined) body.disposition = options.disposition;
    const link = await this.ctx.transport.json<DownloadURL>(
      { operation: "getVideoDownloadUrl", path: { video_id: videoId }, body, idempotent: true },
      options,
    );
    return { ...link, url: this.absoluteUrl(link.url) };
  }

  /** Cancel a queued or running job (`409` when it already ended). */
  async cancel(videoId: string, options: RequestOptions = {}): Promise<Video> {
    const video = await this.ctx.transport.json<Video>(
      { operation: "cancelVideo", path: { video_id: videoId }, idempotent: false },
      options,
    );
    return this.ctx.absolutize(video);
  }

  /** Delete a finished job and its stored outputs. */
  delete(videoId: string, options: RequestOptions = {}): Promise<VideoDeleted> {
    return this.ctx.transport.json<VideoDeleted>(
      { operation: "deleteVideo", path: { video_id: videoId }, idempotent: true },
      options,
    );
  }

  /** The model catalogue: capabilities, providers and prices. */
  listModels(options: RequestOptions = {}): Promise<VideoModelList> {
    return this.ctx.transport.json<VideoModelList>({ operation: "listVideoModels", idempotent: true }, options);
  }

  /**
   * The job's lifecycle websocket URL (no credentials in it). Connect with the subprotocols
   * `["vidgate.v1", "bearer.<API key>"]`, or append `?token=` from `streamToken()`.
   */
  websocketUrl(videoId: string, options: WebsocketUrlOptions = {}): string {
    return this.ctx.websocketUrl(videoId, options);
  }

  /** A short-lived token that opens this job's websocket without the API key (for browsers). */
  async streamToken(videoId: string, options: RequestOptions & { ttlSeconds?: number } = {}): Promise<StreamToken> {
    const body = options.ttlSeconds !== undefined ? { ttl_seconds: options.ttlSeconds } : {};
    const token = await this.ctx.transport.json<StreamToken>(
      { operation: "createStreamToken", path: { video_id: videoId }, body, idempotent: true },
      options,
    );
    const url = this.absoluteUrl(token.url).replace(/^http/, "ws");
    return { ...token, url };
  }

  /** The job's lifecycle events as they happen; ends after a terminal status. */
  stream(videoId: string, options: StreamOptions = {}): AsyncGenerator<StreamEvent> {
    return streamEvents(this.ctx, videoId, options);
  }

  /**
   * Poll until the job is terminal. After a first look, each poll is a long poll (`?wait=` with
   * `If-None-Match`): the gateway holds it until the job changes. Where polls are not held (no
   * ETag comes back, as from the hosted reference) it sleeps as long as `poll_after_seconds` says
   * between polls. Abort with `signal` (for a deadline: `AbortSignal.timeout(ms)`).
   */
  async wait(videoId: string, options: WaitOptions = {}): Promise<Video> {
    const { onProgress, throwOnFailure = false, maxIntervalMs } = options;
    const baseTimeoutMs = options.timeoutMs ?? this.ctx.transport.config.timeoutMs;
    let last: Video | undefined;
    let etag: string | null = null;
    while (true) {
      let waitSeconds: number | undefined;
      let headers: Record<string, string> | undefined;
      if (last !== undefined && etag !== null) {
        waitSeconds = Math.max(0.1, Math.min(LONG_POLL_SECONDS, (maxIntervalMs ?? Infinity) / 1000));
        headers = { "If-None-Match": etag };
      }
      const started = Date.now();
      const response = await this.ctx.transport.send(
        {
          operation: "getVideo",
          path: { video_id: videoId },
          query: waitSeconds === undefined ? undefined : { wait: waitSeconds.toFixed(1) },
          headers,
          idempotent: true,
        },
        { ...options, timeoutMs: baseTimeoutMs + (waitSeconds ?? 0) * 1000 },
      );
      const took = Date.now() - started;
      let video: Video;
      let news: boolean;
      if (response.status === 304 && last !== undefined) {
        video = last;
        news = false;
      } else {
        video = this.ctx.absolutize(JSON.parse(await response.text()) as Video);
        const tag = response.headers.get("etag");
        news = last === undefined || tag === null || tag !== etag;
        etag = tag;
        last = video;
      }
      if (news) onProgress?.(video);
      if (TERMINAL_STATUSES.has(video.status)) {
        if (throwOnFailure && video.status !== "completed") throw new JobFailedError(video);
        return video;
      }
      // A held poll that brought news, or ran its course, is followed at once by the next.
      if (etag !== null && (news || (waitSeconds !== undefined && took >= waitSeconds * 900))) continue;
      let ms = (video.poll_after_seconds ?? DEFAULT_POLL_SECONDS) * 1000;
      if (maxIntervalMs !== undefined) ms = Math.min(ms, maxIntervalMs);
      await sleep(ms, options.signal);
    }
  }

  /** `create` then `wait`: the finished job. */
  async createAndWait(request: VideoGenerationRequest, options: CreateAndWaitOptions = {}): Promise<Video> {
    const video = await this.create(request, options);
    return this.wait(video.id, options);
  }

  /** The job's webhook deliveries with their attempt log. */
  listWebhookDeliveries(videoId: string, options: RequestOptions = {}): Promise<WebhookDeliveryList> {
    return this.ctx.transport.json<WebhookDeliveryList>(
      { operation: "listWebhookDeliveries", path: { video_id: videoId }, idempotent: true },
      options,
    );
  }

  /** Queue a webhook delivery again. */
  redeliverWebhook(videoId: string, deliveryId: string, options: RequestOptions = {}): Promise<WebhookDelivery> {
    return this.ctx.transport.json<WebhookDelivery>(
      { operation: "redeliverWebhook", path: { video_id: videoId, delivery_id: deliveryId }, idempotent: true },
      options,
    );
  }

  private absoluteUrl(url: string): string {
    return url.startsWith("/") ? this.ctx.transport.config.baseUrl + url : url;
  }
}

/** The sha256 the gateway stored for a content response (`X-Content-SHA256`, else the `ETag`). */
export function contentSha256(response: Response): string | undefined {
  const header = response.headers.get("x-content-sha256") ?? response.headers.get("etag")?.replace(/^W\//, "");
  const value = header?.replace(/"/g, "").trim().toLowerCase();
  return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}
