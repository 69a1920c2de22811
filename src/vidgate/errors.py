"""The one error hierarchy: every failure the API returns, and every error the SDK raises."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from vidgate.types import Video


class VidgateError(Exception):
    """Base of every API error; renders as the one error envelope."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.request_id = request_id
        self.headers = headers or {}
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]
        if status is not None:
            self.status = status  # type: ignore[misc]

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "request_id": self.request_id,
        }
        if self.details:
            err["details"] = self.details
        return {"error": err}

    def __str__(self) -> str:
        where = f" (param: {self.param})" if self.param else ""
        return f"{self.code}: {self.message}{where}"


class InvalidRequestError(VidgateError):
    status = 400
    code = "invalid_request"
    type = "invalid_request_error"


class ValidationError(InvalidRequestError):
    code = "validation_error"


class UnsupportedParameterError(InvalidRequestError):
    code = "unsupported_parameter"


class ModelNotFoundError(InvalidRequestError):
    code = "model_not_found"


class ModelRetiredError(InvalidRequestError):
    """The model's maker stopped serving it (410 Gone); the message gives the date."""

    status = 410
    code = "model_retired"


class UnsupportedMediaTypeError(InvalidRequestError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(InvalidRequestError):
    status = 413
    code = "payload_too_large"


class RangeNotSatisfiableError(InvalidRequestError):
    status = 416
    code = "range_not_satisfiable"


class AuthenticationError(VidgateError):
    status = 401
    code = "unauthorized"
    type = "authentication_error"


class PermissionDeniedError(VidgateError):
    status = 403
    code = "forbidden"
    type = "permission_error"


class NotFoundError(VidgateError):
    status = 404
    code = "not_found"
    type = "invalid_request_error"


class MethodNotAllowedError(VidgateError):
    status = 405
    code = "method_not_allowed"
    type = "invalid_request_error"


class ConflictError(VidgateError):
    status = 409
    code = "conflict"
    type = "invalid_request_error"


class NotReadyError(ConflictError):
    code = "not_ready"


class InsufficientFundsError(VidgateError):
    status = 402
    code = "insufficient_funds"
    type = "billing_error"


class SpendLimitExceededError(InsufficientFundsError):
    code = "spend_limit_exceeded"


class UpgradeRequiredError(VidgateError):
    status = 426
    code = "upgrade_required"
    type = "invalid_request_error"


class RateLimitError(VidgateError):
    status = 429
    code = "rate_limited"
    type = "rate_limit_error"

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After") or self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class UpstreamError(VidgateError):
    status = 502
    code = "upstream_error"
    type = "upstream_error"


class ServiceUnavailableError(VidgateError):
    status = 503
    code = "service_unavailable"
    type = "api_error"


class NoProviderAvailableError(ServiceUnavailableError):
    code = "no_provider_available"


class StorageFullError(ServiceUnavailableError):
    """The gateway's disk is (nearly) full: new work waits, deletes still free space."""

    code = "storage_full"


class InternalError(VidgateError):
    status = 500
    code = "internal_error"


class JobFailedError(VidgateError):
    """Raised by SDK waits when a job ends failed, cancelled or expired and the caller asked so."""

    status = 200
    code = "job_failed"
    type = "job_error"

    def __init__(self, message: str, *, job: Video | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.job = job


class WaitTimeoutError(VidgateError):
    status = 0
    code = "wait_timeout"
    type = "client_error"


class APIConnectionError(VidgateError):
    status = 0
    code = "connection_error"
    type = "client_error"


_BY_CODE: dict[str, type[VidgateError]] = {}
for _cls in list(globals().values()):
    if isinstance(_cls, type) and issubclass(_cls, VidgateError) and _cls.status:
        _BY_CODE.setdefault(_cls.code, _cls)

_BY_STATUS: dict[int, type[VidgateError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientFundsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    410: ModelRetiredError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    416: RangeNotSatisfiableError,
    426: UpgradeRequiredError,
    429: RateLimitError,
    502: UpstreamError,
    503: ServiceUnavailableError,
}


def from_envelope(status: int, body: Any, headers: dict[str, str] | None = None) -> VidgateError:
    """Rebuild the typed error an envelope describes (used by the SDK)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {"message": f"HTTP {status}", "code": "http_error"}
    code = str(err.get("code") or "")
    cls = _BY_CODE.get(code)
    if cls is None or (cls.status != status and status in _BY_STATUS):
        cls = _BY_STATUS.get(status, InternalError if status >= 500 else InvalidRequestError)
    return cls(
        str(err.get("message") or f"HTTP {status}"),
        param=err.get("param"),
        request_id=err.get("request_id"),
        headers=headers,
        details=err.get("details"),
        code=code or None,
        status=status,
    )
