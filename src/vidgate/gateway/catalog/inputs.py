"""Bounds on what a create request may carry: URLs that really parse, free-form objects of sane shape,
inline images of sane size. Pure and cheap, so a hostile body is refused at create in microseconds.

Without them a URL that does not parse was accepted and then failed in the worker or the webhook
sender on every retry; a ``provider_params`` nested hundreds of levels deep broke serialisation
into a 500 whose traceback took seconds to format; a 640 KB PNG declaring 15000x15000 pixels took
most of a gigabyte to decode.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from vidgate.errors import ValidationError
from vidgate.gateway.render.imagesize import oversize, sniff

MAX_DEPTH = 32  # levels of objects and arrays in a free-form object, itself included
MAX_VALUES = 10_000  # keys and array items in all, at every level
MAX_KEY_CHARS = 256
MAX_STRING_CHARS = 256 << 10
MIN_INT, MAX_INT = -(2**63), 2**64 - 1  # what JSON libraries (and so every provider) can carry
FREE_FORM = ("provider_params", "provider_options", "beta")  # the create body's fields that take any JSON
MAX_MEDIA_URL_CHARS = 4096
_BAD_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\]")
_MAX_PARAM = 128


def clip(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages never echo a huge value."""
    return cut(repr(value[: limit + 1] if isinstance(value, str) else value), limit)


def cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_url(url: str, param: str, *, allow_http: bool, max_chars: int, expected: str = "an https:// URL") -> None:
    """An http(s) URL that parses the way the HTTP client will parse it, with a host and a valid port.

    Plain ``http://`` only where private URLs are allowed (tests, private deployments): the sender
    and the fetcher refuse it otherwise, so it is refused here, before a job depends on it.
    """
    if len(url) > max_chars:
        raise ValidationError(f"{param} is longer than {max_chars} characters", param=param)
    if _BAD_URL_CHARS.search(url):
        raise ValidationError(f"{param} must not contain whitespace, control characters or backslashes", param=param)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValidationError(f"{param} is not a valid URL: {cut(str(exc))}", param=param) from None
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        raise ValidationError(f"{param} must be {expected}", param=param)
    if not host:
        raise ValidationError(f"{param} has no host", param=param)
    if port == 0:
        raise ValidationError(f"{param} has port 0; ports are 1 to 65535", param=param)
    try:
        parsed = httpx.URL(url)  # what the fetcher and the webhook sender will use
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValidationError(f"{param} is not a valid URL: {cut(str(exc))}", param=param) from None
    if parsed.host.lower() != host.lower():
        raise ValidationError(f"{param} is ambiguous: its host reads differently to different parsers", param=param)


def check_image_url(url: str, param: str, *, allow_http: bool) -> None:
    """An input image: an https:// URL, or an inline ``data:image/…;base64,`` whose header declares a
    size that may be decoded (the picture itself is decoded only in the worker)."""
    check_media_url(url, param, "image", allow_http=allow_http)


def check_media_url(url: str, param: str, kind: str, *, allow_http: bool) -> None:
    """An input medium of ``kind`` (image, video, audio): an https:// URL, or the bytes inline as a
    ``data:<kind>/…;base64,`` URL; an inline image's header must declare a size that may be decoded."""
    if not url.startswith("data:"):
        expected = "an https:// URL or a data: URL"
        check_url(url, param, allow_http=allow_http, max_chars=MAX_MEDIA_URL_CHARS, expected=expected)
        return
    header, sep, payload = url.partition(",")
    if not sep or len(header) > 100 or ";base64" not in header or not header[5:].startswith(f"{kind}/"):
        raise ValidationError(f"a data: URL here must be data:{kind}/<type>;base64,<data>", param=param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("the data: URL is not valid base64", param=param) from exc
    info = sniff(data) if kind == "image" else None
    if info is not None and (why := oversize(info)) is not None:
        raise ValidationError(f"{param}: {why}", param=param)


def check_free_form(value: Any, param: str) -> None:
    """Depth, count, key and string lengths and integer range of a free-form JSON value, walked
    without recursion and given up on at the first excess, so the walk itself stays cheap."""
    stack: list[tuple[Any, str, int]] = [(value, param, 1)]
    values = 0
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise too_deep(param)
            values += len(item)
            if values > MAX_VALUES:
                raise ValidationError(f"{param} holds more than {MAX_VALUES} keys and items in all", param=param)
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and len(key) > MAX_KEY_CHARS:
                    raise ValidationError(f"{path} has a key longer than {MAX_KEY_CHARS} characters", param=path)
                if isinstance(child, dict | list | str | int):
                    stack.append((child, _child(path, key), depth + 1))
        elif isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                raise ValidationError(f"{path} is longer than {MAX_STRING_CHARS} characters", param=path)
        elif isinstance(item, int) and not MIN_INT <= item <= MAX_INT:
            raise ValidationError(f"{path} is an integer beyond 64 bits", param=path)


def _child(path: str, key: object) -> str:
    if len(path) > _MAX_PARAM:
        return path  # deep down, the parent names the place well enough
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def check_nesting(body: bytes) -> None:
    """Bound the free-form fields before the typed decoder walks them (it recurses into ``Any``).

    A body with fewer brackets than the depth limit cannot nest past it: the usual request costs two
    ``bytes.count`` calls. Otherwise the body is parsed once without Python recursion (orjson, which
    itself stops at 1024 levels; past that the typed decoder's own recursion limit answers).
    """
    if body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # the typed decoder reports what is wrong with it
    if isinstance(doc, dict):
        for name in FREE_FORM:
            if name in doc:
                check_free_form(doc[name], name)


def too_deep(param: str) -> ValidationError:
    return ValidationError(f"{param} nests more than {MAX_DEPTH} levels of objects and arrays", param=param)
