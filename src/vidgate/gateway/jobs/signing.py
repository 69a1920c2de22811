"""Signed download links: HMAC-SHA256 over job id, output index, disposition and expiry."""

from __future__ import annotations

import hmac

from vidgate.gateway.secret import Secret, reveal


def _mac(secret: Secret | str, job_id: str, index: int, disposition: str, expires: int) -> str:
    msg = f"{job_id}\n{index}\n{disposition}\n{expires}".encode("utf-8", "surrogatepass")
    return hmac.digest(reveal(secret).encode(), msg, "sha256").hex()


def sign_path(secret: Secret | str, job_id: str, index: int, disposition: str, expires: int) -> str:
    # Every part is URL-safe already (an id, digits, a fixed word, hex): no quoting needed.
    signature = _mac(secret, job_id, index, disposition, expires)
    return (
        f"/v1/videos/{job_id}/download?index={index}&disposition={disposition}&expires={expires}&signature={signature}"
    )


def verify(secret: Secret | str, job_id: str, index: int, disposition: str, expires: int, signature: str) -> bool:
    # Bytes, not str: compare_digest refuses str with non-ASCII characters, and a link is user input.
    expected = _mac(secret, job_id, index, disposition, expires).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))
