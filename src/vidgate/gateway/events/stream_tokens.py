"""Stream tokens: short-lived HMAC tokens that let a browser open a job's websocket without putting
an API key in the URL. Bound to the job and the key that asked for it, domain-separated from download
links. The websocket checks the key afresh when a token is used, so a revoked key's tokens stop at once.
``POST /v1/videos/{id}/stream_token`` (``api/events.py``) issues them."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec

from vidgate.gateway.ids import now_s
from vidgate.gateway.secret import Secret, reveal

TOKEN_PREFIX = "st2"
TOKEN_TTL_MAX = 300


class StreamTokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    ttl_seconds: int = TOKEN_TTL_MAX


class InvalidToken(ValueError):
    """A token that is malformed, forged, for another job or expired; the message says which."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_mac(secret: Secret | str, job_id: str, key_id: str, expires: int) -> str:
    # Domain-separated from download-link signatures, which share the secret.
    msg = f"vidgate-stream-token/2\n{job_id}\n{key_id}\n{expires}".encode()
    return _b64(hmac.new(reveal(secret).encode(), msg, hashlib.sha256).digest())


def issue_token(secret: Secret | str, job_id: str, key_id: str, ttl: int) -> tuple[str, int]:
    expires = now_s() + ttl
    mac = _token_mac(secret, job_id, key_id, expires)
    return f"{TOKEN_PREFIX}.{expires}.{_b64(key_id.encode())}.{mac}", expires


def verify_token(secret: Secret | str, job_id: str, token: str) -> str:
    """The id of the key a token was issued to for ``job_id`` (whether it is still live is the caller's check)."""
    try:
        prefix, expires_s, key_b64, mac = token.split(".")
        expires, key_id = int(expires_s), _unb64(key_b64).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("malformed stream token") from None
    if prefix != TOKEN_PREFIX or not hmac.compare_digest(
        mac.encode("utf-8", "surrogatepass"), _token_mac(secret, job_id, key_id, expires).encode()
    ):
        raise InvalidToken("invalid stream token")
    if expires < now_s():
        raise InvalidToken("stream token expired; request a new one")
    return key_id
