"""A case's timers are never late nor lost. Migrating a case keeps its deadlines (workflows/engine/extending.py):
SpiffWorkflow's migration resets every waiting task, and a reset timer would count its duration again from the
migration, each deadline moved later, an extended one back to the default. A timer already due when the case
moves is left fired but not run, and still names the case's next timer due (reading.next_timer_due), so the
timer worker runs it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.engine.helpers import BPMN_DIR, Driver, compile_file
from tests.engine.test_admonishment import START as ADMONISHMENT_START
from tests.engine.test_integrity_report import driver as integrity_driver
from tests.engine.test_integrity_report import to_disclosure
from tests.engine.test_vetting import to_public_notice
from workflows.engine import ProcessDefinition

EXTENDED = "2099-01-01T15:59:59.999999+00:00"


def variant(tmp_path: Path, key: str, old: str, new: str) -> ProcessDefinition:
    """The shipped process with one name changed: another version to migrate to."""
    text = (BPMN_DIR / f"{key}.bpmn").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / f"{key}-{len(list(tmp_path.iterdir()))}.bpmn"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return compile_file(path, key)


def migrate(driver: Driver, target: ProcessDefinition) -> None:
    migration = driver.runner.migrate(driver.definition, driver.state, target, dry_run=False)
    assert migration.step is not None
    driver.definition = target
    driver.resume(migration.step)


def test_a_boundary_deadline_and_its_extension_survive_migrations(drive, tmp_path):
    case = drive("admonishment")
    case.start(**ADMONISHMENT_START)
    case.complete("intake_review", form="inquiry", reason="书面函询")
    due, task = case.step.next_timer_due, case.task("record_inquiry_reply")
    assert due is not None and task.due_at == due
    migrate(case, variant(tmp_path, "admonishment", 'name="受理审核"', 'name="受理审核（二）"'))
    assert case.step.next_timer_due == due and case.task("record_inquiry_reply").due_at == due
    case.resume(case.runner.extend(case.definition, case.state, task.id, EXTENDED))
    migrate(case, variant(tmp_path, "admonishment", 'name="受理审核"', 'name="受理审核（三）"'))
    assert case.step.next_timer_due == EXTENDED and case.task("record_inquiry_reply").due_at == EXTENDED


def at_public_notice(drive) -> Driver:
    vetting = drive("pre_appointment_vetting")
    to_public_notice(vetting)
    return vetting


def at_disclosure(_drive) -> Driver:
    case = integrity_driver(compile_file(BPMN_DIR / "integrity_report.bpmn"))
    to_disclosure(case)
    return case


# Timers off a task's boundary: how a case comes to wait on one, and the name the next version gives an element.
WAITS = {"event-based gateway (public notice)": (at_public_notice, 'name="公示期满"', 'name="任前公示期满"'),
         "intermediate catch event (disclosure)": (at_disclosure, 'name="公示评议期满"', 'name="公示评议期届满"')}


@pytest.mark.parametrize("wait", sorted(WAITS))
def test_a_waiting_timer_keeps_its_end(drive, tmp_path, wait):
    reach, old, new = WAITS[wait]
    case = reach(drive)
    due = case.step.next_timer_due
    assert due is not None
    migrate(case, variant(tmp_path, case.definition.key, old, new))
    assert case.step.next_timer_due == due


def test_a_period_that_ended_before_the_migration_is_over_after_it(tmp_path):
    """Migrated once its disclosure period has passed (before the timer worker came by), the case is still due
    then and goes on at the worker's next run, instead of waiting a whole period again."""
    case = integrity_driver(compile_file(BPMN_DIR / "integrity_report.bpmn"), fast=True)
    to_disclosure(case)
    due = case.step.next_timer_due
    time.sleep(case.timer_wait)
    migrate(case, variant(tmp_path, "integrity_report", 'name="公示评议期满"', 'name="公示评议期届满"'))
    assert case.step.next_timer_due == due
    case.fire_timers()
    assert "disclosure_period" in case.runner.diagram(case.definition, case.state).completed
    assert case.services.operations() == ["open_disclosure", "close_disclosure"]

