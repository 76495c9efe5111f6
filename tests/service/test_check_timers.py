"""`cadreflow check` names a case whose timer the worker cannot see: one left fired but not run, with no next
timer due stored (what a migration made after the timer's time stored before the engine counted such timers),
a case that would never move on by itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from service.db.models import Case
from service.usecases.check import check_cases
from tests.api.support import start_admonishment

READY = 16  # SpiffWorkflow's TaskState.READY as saved states hold it (only workflows/engine imports the engine)


def fired_but_not_run(state: str, element_id: str, at: datetime) -> str:
    """The saved state with the named timer fired at `at` and left READY, as SpiffWorkflow leaves a timer whose
    time passed during a step."""
    saved = json.loads(state)
    timers = [task for task in saved["tasks"].values() if task["task_spec"] == element_id]
    assert len(timers) == 1, [task["task_spec"] for task in saved["tasks"].values()]
    timers[0].update(state=READY, internal_data={"event_value": at.isoformat(), "event_fired": True})
    return json.dumps(saved)


def test_a_timer_fired_but_not_run_with_no_next_timer_due_is_named(api, services, cadre):
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    assert check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work() as session:
        case = session.get(Case, case_id)
        at = datetime.now(UTC) - timedelta(days=1)
        stuck = fired_but_not_run(case.state, "timer_record_inquiry_reply", at)
        session.execute(update(Case).where(Case.id == case_id).values(state=stuck, next_timer_due=None))
    checked, faults = check_cases(services, 3600)
    assert checked == 1
    assert f"case {case_id}: next_timer_due None differs from the engine's {at}" in faults, faults
    assert any(fault.startswith(f"case {case_id}: timer overdue since") for fault in faults), faults
