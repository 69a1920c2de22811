"""The browser the dashboard tests share: one Debian chromium per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from web.browser import launch


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()
