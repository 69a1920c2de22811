"""Debian's chromium driven by Playwright, as the dashboard tests and ``scripts/screenshots.py`` use it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags chromium keeps dialling Google on this closed network.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1360, "height": 900}


def launch(playwright: Any) -> Any:
    """Chromium from Debian's package: never a browser Playwright downloads."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def open_tab(
    browser: Any, viewport: dict[str, int] = VIEWPORT, errors: list[str] | None = None, **options: Any
) -> tuple[Any, Any, list[str]]:
    """A new context (``options`` passed on) and tab; its uncaught errors and console errors collect in ``errors``."""
    context = browser.new_context(viewport=viewport, **options)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    errors = [] if errors is None else errors
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, tab, errors


def sign_in(page: Any, base_url: str, key: str) -> None:
    page.goto(base_url + "/")
    page.get_by_test_id("api-key").fill(key)
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("playground-form").wait_for()


def wait_until(page: Any, expression: str, arg: Any = None, timeout: float = 20.0) -> Any:
    """Poll a JS expression until it is truthy.

    ``page.wait_for_function`` polls by evaluating its predicate with ``eval`` inside the page, which
    the dashboard's CSP (``script-src 'self'``) refuses; ``page.evaluate`` goes through the debugger.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)
