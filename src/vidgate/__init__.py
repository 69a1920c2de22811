"""vidgate: a self-hostable gateway for AI video generation, and its Python SDK.

    from vidgate import Client

    with Client(api_key="vg_…", base_url="http://127.0.0.1:8080") as client:
        video = client.videos.create_and_wait(model="vidgate/procedural", prompt="a lighthouse at dusk")
        client.videos.download(video.id, "lighthouse.mp4")

Only the names in ``__all__`` are public: the clients, the request and response models, the errors a
caller catches, ``webhooks.verify`` and ``__version__``. Everything under ``vidgate.gateway`` is the
server's own and may change in any release. The clients, webhook verification and the version load
on first use, so ``import vidgate`` costs no more than the models, and never loads the server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from vidgate.errors import (
    APIConnectionError,
    AuthenticationError,
    ConflictError,
    InsufficientFundsError,
    InternalError,
    InvalidRequestError,
    JobFailedError,
    ModelNotFoundError,
    NoProviderAvailableError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    SpendLimitExceededError,
    StorageFullError,
    UnsupportedParameterError,
    UpstreamError,
    ValidationError,
    VidgateError,
    WaitTimeoutError,
)
from vidgate.types import (
    Asset,
    Billing,
    DownloadURL,
    ImageURL,
    InputReference,
    JobError,
    JobEvent,
    ModelCapabilities,
    ModelProvider,
    OutputConfig,
    Price,
    ProviderAttempt,
    ProviderRouting,
    Status,
    Usage,
    Video,
    VideoDeleted,
    VideoGenerationRequest,
    VideoList,
    VideoModel,
    VideoModelList,
    VideoOutput,
    WebhookConfig,
)

if TYPE_CHECKING:
    from vidgate import webhooks
    from vidgate.client import AsyncClient, Client

__version__: str  # set by ``__getattr__`` from the package metadata

__all__ = [
    "UNSET",
    "APIConnectionError",
    "Asset",
    "AsyncClient",
    "AuthenticationError",
    "Billing",
    "Client",
    "ConflictError",
    "DownloadURL",
    "ImageURL",
    "InputReference",
    "InsufficientFundsError",
    "InternalError",
    "InvalidRequestError",
    "JobError",
    "JobEvent",
    "JobFailedError",
    "ModelCapabilities",
    "ModelNotFoundError",
    "ModelProvider",
    "NoProviderAvailableError",
    "NotFoundError",
    "NotReadyError",
    "OutputConfig",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Price",
    "ProviderAttempt",
    "ProviderRouting",
    "RateLimitError",
    "ServiceUnavailableError",
    "SpendLimitExceededError",
    "Status",
    "StorageFullError",
    "UnsupportedParameterError",
    "UpstreamError",
    "Usage",
    "ValidationError",
    "Video",
    "VideoDeleted",
    "VideoGenerationRequest",
    "VideoList",
    "VideoModel",
    "VideoModelList",
    "VideoOutput",
    "VidgateError",
    "WaitTimeoutError",
    "WebhookConfig",
    "__version__",
    "webhooks",
]


def __getattr__(name: str) -> Any:
    # httpx, httpx-ws, standardwebhooks and the package metadata load here, on first use.
    value: Any
    if name in ("Client", "AsyncClient"):
        value = getattr(import_module("vidgate.client"), name)
    elif name == "webhooks":
        value = import_module("vidgate.webhooks")
    elif name == "__version__":
        from importlib.metadata import version

        value = version("vidgate")
    else:
        raise AttributeError(f"module 'vidgate' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
