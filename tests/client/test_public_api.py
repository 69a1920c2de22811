"""The package's public surface: exactly the names in ``vidgate.__all__``, cheap to import, no server."""

from __future__ import annotations

import socket
import subprocess
import sys
from importlib.metadata import version

import pytest

import vidgate
from vidgate import errors, types
from vidgate.client import aio, sync
from vidgate.webhooks import verify

PUBLIC = {
    "Client",
    "AsyncClient",
    "webhooks",
    "__version__",
    "UNSET",
    # what a caller builds
    "VideoGenerationRequest",
    "InputReference",
    "ImageURL",
    "OutputConfig",
    "WebhookConfig",
    "ProviderRouting",
    # what a caller receives
    "Status",
    "Video",
    "VideoList",
    "VideoDeleted",
    "VideoOutput",
    "Asset",
    "Usage",
    "Billing",
    "ProviderAttempt",
    "JobError",
    "DownloadURL",
    "VideoModel",
    "VideoModelList",
    "ModelCapabilities",
    "ModelProvider",
    "Price",
    "JobEvent",
    # what a caller catches
    "VidgateError",
    "APIConnectionError",
    "WaitTimeoutError",
    "JobFailedError",
    "InvalidRequestError",
    "ValidationError",
    "UnsupportedParameterError",
    "ModelNotFoundError",
    "PayloadTooLargeError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "NotReadyError",
    "InsufficientFundsError",
    "SpendLimitExceededError",
    "RateLimitError",
    "UpstreamError",
    "ServiceUnavailableError",
    "NoProviderAvailableError",
    "StorageFullError",
    "InternalError",
}

SERVER = ("starlette", "av", "numpy", "sqlalchemy")
SERVER_MODULES = f"any(m.startswith('vidgate.gateway') or m in {SERVER} for m in sys.modules)"


def run_python(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def closed_port() -> int:
    """A loopback port nothing listens on: bound, read, and released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_all_is_exactly_the_public_names() -> None:
    assert len(vidgate.__all__) == len(set(vidgate.__all__))
    assert set(vidgate.__all__) == PUBLIC


def test_every_public_name_resolves_to_the_object_it_names() -> None:
    for name in vidgate.__all__:
        assert getattr(vidgate, name) is not None, name
    assert vidgate.Client is sync.Client
    assert vidgate.AsyncClient is aio.AsyncClient
    assert vidgate.webhooks.verify is verify
    assert vidgate.__version__ == version("vidgate")
    for name in PUBLIC - {"Client", "AsyncClient", "webhooks", "__version__", "UNSET", "Status"}:
        home = errors if hasattr(errors, name) else types
        assert getattr(vidgate, name) is getattr(home, name), name
    assert set(dir(vidgate)) >= PUBLIC


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = vidgate.NotAName
    assert not hasattr(vidgate, "gateway_internals")


def test_import_loads_no_server_module() -> None:
    run_python(f"import vidgate, sys; assert not {SERVER_MODULES}")
    # The clients, webhook verification and the version load on first use, and still no server.
    run_python("import vidgate, sys; assert 'httpx' not in sys.modules and 'standardwebhooks' not in sys.modules")
    run_python(f"import sys; from vidgate import *; Client; webhooks.verify; __version__; assert not {SERVER_MODULES}")


def test_every_documented_error_code_maps_to_a_public_error() -> None:
    documented = {
        "validation_error": 400,
        "unsupported_parameter": 400,
        "unauthorized": 401,
        "insufficient_funds": 402,
        "forbidden": 403,
        "not_found": 404,
        "not_ready": 409,
        "conflict": 409,
        "payload_too_large": 413,
        "rate_limited": 429,
        "internal_error": 500,
        "upstream_error": 502,
        "no_provider_available": 503,
    }
    for code, status in documented.items():
        err = errors.from_envelope(status, {"error": {"code": code, "message": "m"}})
        assert type(err).__name__ in PUBLIC and err.code == code and err.status == status, code
    # A status the gateway never answers still raises a public error, keeping what the body said.
    err = errors.from_envelope(501, {"error": {"code": "not_implemented", "message": "m"}})
    assert isinstance(err, vidgate.InternalError) and (err.status, err.code) == (501, "not_implemented")


def test_client_against_a_closed_port_raises_connection_error() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    with (
        vidgate.Client(api_key="vg_x", base_url=base_url, max_retries=0) as client,
        pytest.raises(vidgate.APIConnectionError),
    ):
        client.videos.list()


async def test_async_client_against_a_closed_port_raises_connection_error() -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    async with vidgate.AsyncClient(api_key="vg_x", base_url=base_url, max_retries=0) as client:
        with pytest.raises(vidgate.VidgateError) as info:
            await client.videos.get("vid_x")
    assert isinstance(info.value, vidgate.APIConnectionError) and info.value.status == 0
