"""Signed download links: HMAC-SHA256 over job id, output index, disposition, expiry and variant;
for an upload, over its id and expiry under a prefix of its own.

The variant (``thumbnail``, ``spritesheet``) is signed only when it is not the video, so a video
link's message, and every link issued before variants existed, stays what it was. A link for one
variant never opens another: the messages differ, and ``expires`` is read as an integer, so no
value of it can carry a variant's line.
"""

from __future__ import annotations

import hmac

from vidgate.gateway.secret import Secret, reveal

VIDEO = "video"


def _hmac(secret: Secret | str, msg: str) -> str:
    return hmac.digest(reveal(secret).encode(), msg.encode("utf-8", "surrogatepass"), "sha256").hex()


def _matches(expected: str, signature: str) -> bool:
    # Bytes, not str: compare_digest refuses str with non-ASCII characters, and a link is user input.
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass"))


def _mac(secret: Secret | str, job_id: str, index: int, disposition: str, expires: int, variant: str) -> str:
    msg = f"{job_id}\n{index}\n{disposition}\n{expires}"
    if variant != VIDEO:
        msg = f"{msg}\n{variant}"
    return _hmac(secret, msg)


def sign_path(
    secret: Secret | str, job_id: str, index: int, disposition: str, expires: int, variant: str = VIDEO
) -> str:
    # Every part is URL-safe already (an id, digits, fixed words, hex): no quoting needed.
    signature = _mac(secret, job_id, index, disposition, expires, variant)
    path = f"/v1/videos/{job_id}/download?index={index}&disposition={disposition}&expires={expires}"
    if variant != VIDEO:
        path = f"{path}&variant={variant}"
    return f"{path}&signature={signature}"


def verify(
    secret: Secret | str,
    job_id: str,
    index: int,
    disposition: str,
    expires: int,
    signature: str,
    variant: str = VIDEO,
) -> bool:
    return _matches(_mac(secret, job_id, index, disposition, expires, variant), signature)


# An upload's link signs a message of its own shape under its own prefix, so no video link's
# signature ever verifies as a file's (or the other way round).
_FILE_DOMAIN = "vidgate/file-download/v1"


def _file_mac(secret: Secret | str, file_id: str, expires: int) -> str:
    return _hmac(secret, f"{_FILE_DOMAIN}\n{file_id}\n{expires}")


def sign_file_path(secret: Secret | str, file_id: str, expires: int) -> str:
    """The path (with its query) of a link to an upload's bytes that works without the API key until ``expires``."""
    return f"/v1/files/{file_id}/download?expires={expires}&signature={_file_mac(secret, file_id, expires)}"


def verify_file(secret: Secret | str, file_id: str, expires: int, signature: str) -> bool:
    return _matches(_file_mac(secret, file_id, expires), signature)
