/** The SDK's errors: one class per failure the gateway reports, plus the client-side ones. */

import type { Video } from "./types.gen.js";

/** Base of every error this SDK throws (aborts rethrow the signal's own reason instead). */
export class VidgateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VidgateError";
  }
}

/** The fields of the gateway's error envelope, `{"error": {type, code, message, param, request_id}}`. */
export interface ErrorEnvelopeFields {
  type?: string;
  code?: string;
  message?: string;
  param?: string | null;
  request_id?: string | null;
  details?: Record<string, unknown>;
}

/** The gateway answered with an error status. Every field of the envelope is kept. */
export class APIError extends VidgateError {
  /** The HTTP status (for websocket refusals: the close code minus 4000, e.g. 404 for 4404). */
  readonly status: number;
  readonly type: string | undefined;
  readonly code: string | undefined;
  readonly param: string | null;
  /** The envelope's `request_id`, or the `X-Request-Id` header when the body has none. */
  readonly requestId: string | null;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Headers;
  /** The parsed body (the envelope), or the raw text when it was not JSON. */
  readonly body: unknown;

  constructor(status: number, error: ErrorEnvelopeFields, headers: Headers = new Headers(), body?: unknown) {
    super(error.message || `HTTP ${status}`);
    this.name = "APIError";
    this.status = status;
    this.type = error.type;
    this.code = error.code;
    this.param = error.param ?? null;
    this.requestId = error.request_id ?? headers.get("x-request-id");
    this.details = error.details;
    this.headers = headers;
    this.body = body;
  }

  /** Seconds the gateway asked to wait before trying again (`Retry-After`), if it said. */
  get retryAfter(): number | undefined {
    return parseRetryAfter(this.headers.get("retry-after"));
  }

  /** The typed error for a status and envelope. */
  static from(status: number, body: unknown, headers: Headers = new Headers()): APIError {
    const envelope = isObject(body) && isObject(body.error) ? (body.error as ErrorEnvelopeFields) : {};
    const fields: ErrorEnvelopeFields = {
      ...envelope,
      message: typeof envelope.message === "string" ? envelope.message : `HTTP ${status}`,
    };
    const Cls = (fields.code && BY_CODE[fields.code]) || BY_STATUS[status] || APIError;
    return new Cls(status, fields, headers, body);
  }
}

export class BadRequestError extends APIError {
  override name = "BadRequestError";
}
export class AuthenticationError extends APIError {
  override name = "AuthenticationError";
}
export class InsufficientFundsError extends APIError {
  override name = "InsufficientFundsError";
}
export class PermissionDeniedError extends APIError {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends APIError {
  override name = "NotFoundError";
}
export class ConflictError extends APIError {
  override name = "ConflictError";
}
/** `409 not_ready`: the job has no content yet. */
export class NotReadyError extends ConflictError {
  override name = "NotReadyError";
}
export class PayloadTooLargeError extends APIError {
  override name = "PayloadTooLargeError";
}
export class UnsupportedMediaTypeError extends APIError {
  override name = "UnsupportedMediaTypeError";
}
export class RangeNotSatisfiableError extends APIError {
  override name = "RangeNotSatisfiableError";
}
export class RateLimitError extends APIError {
  override name = "RateLimitError";
}
export class InternalServerError extends APIError {
  override name = "InternalServerError";
}
export class NotImplementedError extends APIError {
  override name = "NotImplementedError";
}
export class UpstreamError extends APIError {
  override name = "UpstreamError";
}
export class ServiceUnavailableError extends APIError {
  override name = "ServiceUnavailableError";
}

type APIErrorClass = new (status: number, error: ErrorEnvelopeFields, headers?: Headers, body?: unknown) => APIError;

const BY_STATUS: Record<number, APIErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  402: InsufficientFundsError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  416: RangeNotSatisfiableError,
  429: RateLimitError,
  500: InternalServerError,
  501: NotImplementedError,
  502: UpstreamError,
  503: ServiceUnavailableError,
};

const BY_CODE: Record<string, APIErrorClass> = { not_ready: NotReadyError };

/** The gateway could not be reached, or the connection broke before an answer. */
export class APIConnectionError extends VidgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "APIConnectionError";
  }
}

/** No answer within the request timeout (`timeoutMs`). */
export class APITimeoutError extends APIConnectionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "APITimeoutError";
  }
}

/** A wait ended on `failed`, `cancelled` or `expired` and the caller asked for an error. */
export class JobFailedError extends VidgateError {
  readonly video: Video;
  constructor(video: Video) {
    const detail = video.error ? `: ${video.error.message}` : "";
    super(`video ${video.id} ended ${video.status}${detail}`);
    this.name = "JobFailedError";
    this.video = video;
  }
}

/** Downloaded bytes do not hash to the sha256 the gateway recorded. */
export class ChecksumMismatchError extends VidgateError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, message?: string) {
    super(message ?? `downloaded bytes hash to sha256 ${actual}, expected ${expected}`);
    this.name = "ChecksumMismatchError";
    this.expected = expected;
    this.actual = actual;
  }
}

/** A webhook delivery whose signature, timestamp or body does not check out. */
export class WebhookVerificationError extends VidgateError {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
