"""The shipped early_warning table (PROCESSES.md §10): its defaults at every boundary, through the engine."""

from __future__ import annotations

import pytest

from tests.engine.helpers import BPMN_DIR, Driver, compile_file

QUIET = {"reports_12m": 0, "late_reports_12m": 0, "latest_grade": None, "dissatisfied_share": None,
         "years_in_post": 3, "audit_findings_3y": 0}


def test_the_process_deploys_cleanly():
    definition = compile_file(BPMN_DIR / "early_warning.bpmn")
    assert definition.key == "early_warning" and definition.warnings == () and definition.forms == {}


@pytest.mark.parametrize(("signals", "level"), [
    ({}, "none"),
    ({"reports_12m": 1}, "watch"), ({"reports_12m": 2}, "watch"), ({"reports_12m": 3}, "alert"),
    ({"late_reports_12m": 1}, "watch"), ({"late_reports_12m": 2}, "alert"),
    ({"latest_grade": "basic"}, "watch"), ({"latest_grade": "competent"}, "none"),
    ({"latest_grade": "basic", "reports_12m": 3}, "alert"),
    ({"audit_findings_3y": 2, "dissatisfied_share": 0.9, "years_in_post": 12}, "none"),  # not in the defaults
])
def test_default_levels(signals, level):
    step = Driver(compile_file(BPMN_DIR / "early_warning.bpmn")).start(**{**QUIET, **signals})
    assert step.completed and step.data["level"] == level
    assert bool(step.data["reason"]) is (level != "none")
