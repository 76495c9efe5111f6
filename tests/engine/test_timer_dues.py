"""A case's timers are never late nor lost. Migrating a case keeps its deadlines (workflows/engine/extending.py):
SpiffWorkflow's migration resets every waiting task, and a reset timer would count its duration again from the
migration, each deadline moved later, an extended one back to the default. A timer already due when the case
moves is left fired but not run, and still names the case's next timer due (reading.next_timer_due), so the
timer worker runs it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.engine.helpers import BPMN_DIR, FIXTURES, Driver, compile_file
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



def _dated(tmp_path: Path, first: str, second: str | None = None) -> ProcessDefinition:
    """The review loop with its deadline a timeDate at `first`, as a designer writes it, and with `second` a
    second timeDate boundary timer on the same task."""
    text = (FIXTURES / "review_loop.bpmn").read_text(encoding="utf-8")
    duration = '<bpmn:timeDuration>deadline("review")</bpmn:timeDuration>'
    assert duration in text
    text = text.replace(duration, f'<bpmn:timeDate>"{first}"</bpmn:timeDate>')
    if second is not None:
        other = ('<bpmn:boundaryEvent id="review_later" attachedToRef="review" cancelActivity="false">'
                 '<bpmn:outgoing>f_later</bpmn:outgoing><bpmn:timerEventDefinition id="t2">'
                 f'<bpmn:timeDate>"{second}"</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
                 '<bpmn:endEvent id="later_done"><bpmn:incoming>f_later</bpmn:incoming></bpmn:endEvent>'
                 '<bpmn:sequenceFlow id="f_later" sourceRef="review_later" targetRef="later_done"/>')
        text = text.replace('<bpmn:userTask id="supervise_review"', other + '<bpmn:userTask id="supervise_review"', 1)
    path = tmp_path / "dated.bpmn"
    path.write_text(text, encoding="utf-8")
    return compile_file(path, "review_loop")


def test_a_date_without_zone_is_due_in_utc_at_the_moment_the_engine_fires_it(tmp_path):
    """SpiffWorkflow reads a timeDate without zone in the server's zone; the due time the service stores (a column
    that refuses a time without zone) names that moment, in UTC."""
    case = Driver(_dated(tmp_path, "2099-01-01T00:00:00"))
    case.start()
    expected = datetime(2099, 1, 1).astimezone(UTC).isoformat()  # the server's zone, as SpiffWorkflow takes it
    assert case.step.next_timer_due == expected and case.step.open_tasks[0].due_at == expected


def test_the_earliest_of_dates_in_different_zones_is_the_earliest_moment_not_the_smallest_text(tmp_path):
    """Midnight of 1 January in Shanghai (16:00 UTC the day before) comes before 20:00 UTC on 31 December,
    though its text sorts after."""
    case = Driver(_dated(tmp_path, "2026-12-31T20:00:00+00:00", "2027-01-01T00:00:00+08:00"))
    case.start()
    assert case.step.next_timer_due == "2026-12-31T16:00:00+00:00"
    assert case.step.open_tasks[0].due_at == "2026-12-31T16:00:00+00:00"
