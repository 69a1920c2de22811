/** Types the gateway's OpenAPI document does not describe: events, list parameters, WebSockets. */

import type { Video, VideoDeleted } from "./types.gen.js";

/** A job's status. */
export type VideoStatus = Video["status"];

/** The statuses a job never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<VideoStatus> = new Set<VideoStatus>([
  "completed",
  "failed",
  "cancelled",
  "expired",
]);

/** A lifecycle event as webhook deliveries carry it. */
export interface JobEvent {
  /** The event id (`evt_…`); the same on every attempt of a delivery, so receivers can deduplicate. */
  id: string;
  /** `video.status_changed`, `video.progress`, `video.completed`, `video.failed`, `video.cancelled`, `video.expired`… */
  type: string;
  created_at: number;
  data: Video;
}

/** One message of a job's lifecycle stream (websocket or server-sent events). */
export type StreamEvent =
  | { type: "job.snapshot"; data: Video }
  | { type: "job.updated"; event: string; id: string; data: Video }
  | { type: "job.deleted"; data: VideoDeleted };

/** Parameters of `listVideos`. */
export interface ListVideosParams {
  /** One status or several (`"queued,completed"` or `["queued", "completed"]`); aliases such as `pending` work too. */
  status?: string | string[];
  /** 1 to 100 (20 by default). */
  limit?: number;
  /** The last id of the previous page. */
  after?: string;
  order?: "asc" | "desc";
}

/** A WebSocket as browsers, Node 22+, Deno and Bun provide it (and the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
  removeEventListener(type: string, listener: (event: any) => void): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
