/** `new Client({ apiKey, baseUrl })`: the reference SDK's method set over `client.videos`. */

import { VidgateError } from "./errors.js";
import { Transport, type FetchLike, type RequestOptions } from "./http.js";
import { env } from "./runtime.js";
import type { JobEvent, ListVideosParams, WebSocketConstructor } from "./types.js";
import type {
  DownloadURL,
  Video,
  VideoDeleted,
  VideoGenerationRequest,
  VideoList,
  VideoModelList,
} from "./types.gen.js";
import {
  Videos,
  type ContentOptions,
  type CreateOptions,
  type DownloadUrlOptions,
  type WebsocketUrlOptions,
} from "./videos.js";
import { verifyWebhook, type HeadersInput, type VerifyOptions, type WebhookPayload } from "./webhooks.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";
export const VERSION = "0.1.0";

export interface ClientOptions {
  /** An API key (`vg_…`); `VIDGATE_API_KEY` when omitted (on runtimes with `process.env`). */
  apiKey?: string;
  /** The gateway's URL; `VIDGATE_BASE_URL`, else `http://127.0.0.1:8080`. */
  baseUrl?: string;
  /** Per-attempt timeout in milliseconds (60 000 by default). Streams and downloads: until headers arrive. */
  timeoutMs?: number;
  /** Retries after 429/503 (any request) and network errors or 5xx (requests safe to repeat). Default 2. */
  maxRetries?: number;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchLike;
  /** A WebSocket constructor for `videos.stream()` where the runtime has none (Node 18 and 20: e.g. `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Headers sent with every request. */
  defaultHeaders?: Record<string, string>;
}

export class Client {
  readonly baseUrl: string;
  readonly videos: Videos;
  readonly webhooks: {
    /** Verify a delivery's signature (Standard Webhooks, or the reference's `x-phaseo-*`) and return its event. */
    verify(payload: WebhookPayload, headers: HeadersInput, secret: string, options?: VerifyOptions): Promise<JobEvent>;
  };

  constructor(options: ClientOptions = {}) {
    const baseUrl = (options.baseUrl ?? env("VIDGATE_BASE_URL") ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    if (!/^https?:\/\//.test(baseUrl)) throw new VidgateError(`baseUrl must be an http(s) URL, got ${baseUrl}`);
    const fetchImpl = options.fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : undefined);
    if (!fetchImpl) throw new VidgateError("no fetch in this runtime: pass { fetch } to new Client()");
    this.baseUrl = baseUrl;
    const apiKey = options.apiKey ?? env("VIDGATE_API_KEY");
    const transport = new Transport({
      baseUrl,
      apiKey,
      fetch: fetchImpl,
      timeoutMs: options.timeoutMs ?? 60_000,
      maxRetries: options.maxRetries ?? 2,
      headers: { ...options.defaultHeaders },
    });
    this.videos = new Videos({
      transport,
      apiKey,
      WebSocket: options.WebSocket,
      websocketUrl: (videoId, opts) => this.getAsyncJobWebSocketUrl("video", videoId, opts),
      absolutize: (video) => absolutize(video, baseUrl),
    });
    this.webhooks = { verify: verifyWebhook };
  }

  /** Create a video job; answers at once with `status: "queued"`, an id and `poll_after_seconds`. */
  generateVideo(request: VideoGenerationRequest, options?: CreateOptions): Promise<Video> {
    return this.videos.create(request, options);
  }

  /** Your jobs, newest first: `{object: "list", data, first_id, last_id, has_more}`. */
  listVideos(params?: ListVideosParams, options?: RequestOptions): Promise<VideoList> {
    return this.videos.list(params, options);
  }

  getVideo(videoId: string, options?: RequestOptions): Promise<Video> {
    return this.videos.get(videoId, options);
  }

  /** An output's bytes in memory; `videos.download()` streams them instead. */
  getVideoContent(videoId: string, options?: ContentOptions): Promise<Uint8Array> {
    return this.videos.content(videoId, options);
  }

  getVideoDownloadUrl(videoId: string, options?: DownloadUrlOptions): Promise<DownloadURL> {
    return this.videos.downloadUrl(videoId, options);
  }

  cancelVideo(videoId: string, options?: RequestOptions): Promise<Video> {
    return this.videos.cancel(videoId, options);
  }

  deleteVideo(videoId: string, options?: RequestOptions): Promise<VideoDeleted> {
    return this.videos.delete(videoId, options);
  }

  listVideoModels(options?: RequestOptions): Promise<VideoModelList> {
    return this.videos.listModels(options);
  }

  /** `ws(s)://…/v1/async/{kind}/{id}/ws` with the stream options; credentials never go in it. */
  getAsyncJobWebSocketUrl(kind: string, id: string, options: WebsocketUrlOptions = {}): string {
    const query = new URLSearchParams();
    if (options.intervalMs !== undefined) query.set("interval_ms", String(options.intervalMs));
    if (options.closeOnTerminal !== undefined) query.set("close_on_terminal", String(options.closeOnTerminal));
    const qs = query.toString();
    const base = this.baseUrl.replace(/^http/, "ws");
    return `${base}/v1/async/${encodeURIComponent(kind)}/${encodeURIComponent(id)}/ws${qs ? `?${qs}` : ""}`;
  }
}

/** The job with every URL in it absolute: the gateway may answer with paths relative to itself. */
function absolutize(video: Video, baseUrl: string): Video {
  if (!video || typeof video !== "object") return video;
  const abs = (url: string | null | undefined) => (typeof url === "string" && url.startsWith("/") ? baseUrl + url : url);
  const out: Video = { ...video };
  if (out.polling_url !== undefined) out.polling_url = abs(out.polling_url) as string;
  if (out.content_url !== undefined) out.content_url = abs(out.content_url) as string;
  if (out.download_url !== undefined) out.download_url = abs(out.download_url);
  if (Array.isArray(out.outputs)) {
    out.outputs = out.outputs.map((o) => {
      const copy = { ...o };
      if (copy.content_url !== undefined) copy.content_url = abs(copy.content_url) as string;
      if (copy.download_url !== undefined) copy.download_url = abs(copy.download_url) as string;
      return copy;
    });
  }
  return out;
}
