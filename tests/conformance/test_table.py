"""bpmn/CONVENTIONS.md's table of constructs is exactly what the conformance suite checks."""

from __future__ import annotations

from tests.conformance import table


def test_conventions_table_matches_the_suite() -> None:
    """A construct added to or changed in the suite must show in the table (make conventions rewrites it)."""
    assert table.current() == table.render(), "run `make conventions` to rewrite bpmn/CONVENTIONS.md's table"
