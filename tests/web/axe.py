"""axe-core in the browser tests: injected through the debugger (the page's CSP refuses inline scripts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from web.browser import wait_until

ROOT = Path(__file__).resolve().parents[2]
# Installed by scripts/setup-test-env (npm, into the ignored build/ folder); VIDGATE_AXE may point elsewhere.
AXE = Path(os.environ.get("VIDGATE_AXE", ROOT / "build" / "test-node" / "node_modules" / "axe-core" / "axe.min.js"))
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
RUN = """tags => axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] }).then(r =>
  r.violations.filter(v => v.impact === "critical" || v.impact === "serious").map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
  })))"""


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """Every critical or serious axe-core violation on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text() + "\n;void 0")
    return page.evaluate(RUN, TAGS)


def sideways_overflow(page: Any) -> int:
    """How many CSS pixels the page scrolls sideways (0: it fits the viewport)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def audit(page: Any) -> tuple[list[dict[str, Any]], int, str]:
    """What the accessibility tests check on a page: serious violations, sideways overflow, its title."""
    return serious_violations(page), sideways_overflow(page), page.title()


def audit_route(page: Any, route: str, ready: str) -> tuple[list[dict[str, Any]], int, str]:
    """Go to ``route`` in the same page, wait for the test id ``ready`` and focus on the heading, then audit."""
    page.evaluate("h => { location.hash = h }", route)
    page.get_by_test_id(ready).first.wait_for()
    wait_until(page, "document.activeElement && document.activeElement.tagName === 'H1'")
    return audit(page)


def assert_clean(checks: dict[str, tuple[list[dict[str, Any]], int, str]]) -> dict[str, str]:
    """No page has a violation or scrolls sideways, and each has a title of its own; the titles by page."""
    failures = {name: c for name, c in checks.items() if c[0] or c[1] > 0}
    assert failures == {}, failures
    titles = {name: c[2] for name, c in checks.items()}
    assert len(set(titles.values())) == len(titles), titles
    return titles
