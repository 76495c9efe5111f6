"""The pages' content security policy in a real browser: the diagrams, charts and the modeler draw under it
without one refused style or script (the policy allows inline styles on the modeler's page alone)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import login

pytestmark = pytest.mark.ui

RECORD = (
    "window.cspViolations = []; document.addEventListener('securitypolicyviolation', e => "
    "window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sample}`));"
)


def violations(page: Any, url: str, ready: str) -> list[str]:
    page.goto(url)
    page.wait_for_selector(ready)
    page.wait_for_load_state("load")
    return list(page.evaluate("window.cspViolations"))


def test_diagrams_charts_and_the_modeler_draw_without_a_refused_style(page, server):
    """admin opens a case's diagram, the dashboard, the watchlist, a version's diagram and the modeler."""
    page.add_init_script(RECORD)
    login(page, "admin")
    pages = [
        (f"/cases/{server.fixtures['audit_case_id']}", "#diagram[data-state='ready']"),
        ("/dashboard", "body[data-charts='ready']"),
        ("/watchlist", "[data-state='ready']"),
        ("/designer/departure_audit/versions/1", "[data-state='ready']"),
        ("/designer/departure_audit/edit", "#canvas[data-state='ready']"),
    ]
    assert {url: violations(page, url, ready) for url, ready in pages} == {url: [] for url, _ in pages}
