/**
 * The vidgate SDK: `new Client({ apiKey, baseUrl })` with `fetch` and no dependencies, for Node 18+,
 * browsers, Deno and Bun. Node's file helpers live in `@vidgate/sdk/node`.
 */

export { Client, DEFAULT_BASE_URL, VERSION, type ClientOptions } from "./client.js";
export {
  APIConnectionError,
  APIError,
  APITimeoutError,
  AuthenticationError,
  BadRequestError,
  ChecksumMismatchError,
  ConflictError,
  InsufficientFundsError,
  InternalServerError,
  JobFailedError,
  NotFoundError,
  NotImplementedError,
  NotReadyError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RangeNotSatisfiableError,
  RateLimitError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  UpstreamError,
  VidgateError,
  WebhookVerificationError,
  type ErrorEnvelopeFields,
} from "./errors.js";
export type { FetchLike, RequestOptions } from "./http.js";
export { Sha256 } from "./sha256.js";
export type { StreamOptions } from "./stream.js";
export * from "./types.gen.js";
export {
  TERMINAL_STATUSES,
  type JobEvent,
  type ListVideosParams,
  type StreamEvent,
  type VideoStatus,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./types.js";
export {
  Videos,
  type ContentOptions,
  type CreateAndWaitOptions,
  type CreateOptions,
  type DownloadOptions,
  type DownloadUrlOptions,
  type WaitOptions,
  type WebsocketUrlOptions,
} from "./videos.js";
export {
  signWebhook,
  verifyWebhook,
  webhooks,
  type HeadersInput,
  type SignInput,
  type VerifyOptions,
  type WebhookPayload,
} from "./webhooks.js";
