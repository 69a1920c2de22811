"""Secrets in memory and at rest.

``Secret`` carries a credential whose ``repr`` and ``str`` are redacted, so logging an object that
holds one (settings, a provider config, a job's own keys) never writes the value; code reveals it
only where it is used (an HMAC, an Authorization header). ``SecretBox`` seals what must sit in the
database for a while (the provider keys a request brings, until its job ends) with AES-256-GCM.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

import orjson

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

REDACTED = "**********"


@final
class Secret:
    """A string that is never shown: ``repr`` and ``str`` (and so f-strings and ``%s``) print stars."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The value itself: call this only where it is used, never to log or show it."""
        return self._value

    get_secret_value = reveal

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Secret cannot be changed")

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(_bytes(self._value), _bytes(other._value))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def secret(value: Secret | str | None) -> Secret | None:
    """``value`` as a Secret (None stays None): for fields that also accept a plain string."""
    return value if value is None or isinstance(value, Secret) else Secret(value)


def reveal(value: Secret | str | None) -> str:
    """The plain value of a Secret, a plain string as it is, None as ``""``."""
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else value


class SealError(ValueError):
    """A sealed value that cannot be opened: sealed under another key, for another record, or altered."""


SEALED_PREFIX = "v1:"
_NONCE = 12


class SecretBox:
    """AES-256-GCM under a key derived (HKDF-SHA256) from ``material`` for one ``purpose``.

    Each sealed value is bound to a context (the job id), so a value copied to another row does not
    open there.
    """

    __slots__ = ("_aead", "_material", "_purpose")

    def __init__(self, material: Secret | str, *, purpose: bytes = b"vidgate/at-rest/v1") -> None:
        self._material = Secret(reveal(material))
        self._purpose = purpose
        self._aead: AESGCM | None = None

    def _cipher(self) -> AESGCM:
        """The key is derived on first use, so settings without key material fail only if they seal."""
        if self._aead is None:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            if not self._material:
                raise SealError("no key to seal with: set VIDGATE_SECRETS_KEY or VIDGATE_SIGNING_SECRET")
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._purpose)
            self._aead = AESGCM(hkdf.derive(_bytes(self._material.reveal())))
        return self._aead

    def __repr__(self) -> str:
        return "SecretBox()"

    def seal(self, plaintext: bytes, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._cipher().encrypt(nonce, plaintext, context.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, *, context: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not token.startswith(SEALED_PREFIX):
            raise SealError("not a sealed value")
        cipher = self._cipher()
        try:
            raw = base64.urlsafe_b64decode(token[len(SEALED_PREFIX) :])
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (InvalidTag, ValueError) as exc:
            raise SealError(
                "a sealed value did not open: it was sealed under another key (VIDGATE_SECRETS_KEY or "
                "VIDGATE_SIGNING_SECRET differ between processes?) or altered"
            ) from exc


def seal_keys(box: SecretBox, context: str, keys: Mapping[str, Secret]) -> str:
    """Provider keys as one sealed text for a database column."""
    return box.seal(orjson.dumps({name: key.reveal() for name, key in keys.items()}), context=context)


def open_keys(box: SecretBox, context: str, stored: str | None) -> dict[str, Secret]:
    """The provider keys in ``stored`` (sealed, or plain JSON written before sealing existed)."""
    if not stored:
        return {}
    raw = orjson.loads(stored) if stored.startswith("{") else orjson.loads(box.open(stored, context=context))
    return {str(name): Secret(str(value)) for name, value in raw.items()}


def reveal_for_storage(value: object) -> str:
    """``orjson`` ``default`` for a record that keeps a Secret (a webhook's signing secret in a job spec)."""
    if isinstance(value, Secret):
        return value.reveal()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
