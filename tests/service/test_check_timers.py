"""`cadreflow check` names a case whose timer the worker cannot see: one left fired but not run, with no next
timer due stored (what a migration made after the timer's time stored before the engine counted such timers),
a case that would never move on by itself; `cadreflow resync-timers` sets the due time again, and the worker
then fires the timer as any other."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from service.db.models import Case, HistoryEntry
from service.usecases.check import check_cases
from service.usecases.timers import fire_due_timers
from tests.api.support import start_admonishment
from tests.e2e.support import CLI

READY = 16  # SpiffWorkflow's TaskState.READY as saved states hold it (only workflows/engine imports the engine)


def fired_but_not_run(state: str, element_id: str, at: datetime) -> str:
    """The saved state with the named timer fired at `at` and left READY, as SpiffWorkflow leaves a timer whose
    time passed during a step."""
    saved = json.loads(state)
    timers = [task for task in saved["tasks"].values() if task["task_spec"] == element_id]
    assert len(timers) == 1, [task["task_spec"] for task in saved["tasks"].values()]
    timers[0].update(state=READY, internal_data={"event_value": at.isoformat(), "event_fired": True})
    return json.dumps(saved)


def stuck_case(api, services) -> tuple[int, datetime]:
    """An admonishment at its written inquiry whose reply deadline fired a day ago and was left not run, with
    no next timer due stored; and when it fired."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="inquiry", reason="书面函询")
    assert check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work() as session:
        case = session.get(Case, case_id)
        at = datetime.now(UTC) - timedelta(days=1)
        stuck = fired_but_not_run(case.state, "timer_record_inquiry_reply", at)
        session.execute(update(Case).where(Case.id == case_id).values(state=stuck, next_timer_due=None))
    return case_id, at


def test_a_timer_fired_but_not_run_with_no_next_timer_due_is_named(api, services, cadre):
    case_id, at = stuck_case(api, services)
    checked, faults = check_cases(services, 3600)
    assert checked == 1
    assert (f"case {case_id}: next_timer_due None differs from the engine's {at} (`cadreflow resync-timers` sets it)"
            in faults), faults
    assert any(fault.startswith(f"case {case_id}: timer overdue since") for fault in faults), faults


def resync_timers(services) -> subprocess.CompletedProcess[str]:
    """`cadreflow resync-timers` as an operator runs it: its own process, with nothing of the service cached (a
    process version's BPMN loads lazily there)."""
    settings = services.settings
    env = {**os.environ, "CADREFLOW_DATABASE_URL": settings["DATABASE_URL"], "CADREFLOW_SECRET_KEY":
           settings["SECRET_KEY"], "CADREFLOW_DEADLINES": json.dumps(settings["DEADLINES"])}
    return subprocess.run([*CLI, "resync-timers"], env=env, capture_output=True, text=True, timeout=120)


def test_resync_timers_sets_the_due_time_and_the_worker_then_fires_the_timer(api, services, cadre):
    case_id, at = stuck_case(api, services)
    other = start_admonishment(api)["id"]  # in step with its engine: left alone
    assert fire_due_timers(services) == 0  # the worker cannot see the stuck one
    result = resync_timers(services)
    assert result.returncode == 0, result.stderr
    assert f"case {case_id}: next_timer_due None -> {at}" in result.stdout
    assert f"case {other}:" not in result.stdout and "2 open case(s) read, 1 due time(s) set" in result.stdout
    assert not [fault for fault in check_cases(services, 3600)[1] if "differs from the engine's" in fault]
    assert fire_due_timers(services) == 1
    with services.db.unit_of_work(write=False) as session:
        actions = list(session.scalars(select(HistoryEntry.action).where(HistoryEntry.case_id == case_id)
                                       .order_by(HistoryEntry.seq)))
    assert actions[-1] == "timer", actions
    assert check_cases(services, 3600) == (2, [])
    again = resync_timers(services)
    assert again.returncode == 0 and "2 open case(s) read, 0 due time(s) set" in again.stdout


def test_resync_timers_names_a_case_whose_state_does_not_load_and_exits_1(api, services, cadre):
    case_id = start_admonishment(api)["id"]
    with services.db.unit_of_work() as session:
        session.execute(update(Case).where(Case.id == case_id).values(state='{"not": "a workflow"}'))
    result = resync_timers(services)
    assert result.returncode == 1
    assert f"case {case_id}: saved state does not load" in result.stderr
    with services.db.unit_of_work(write=False) as session:
        assert session.get(Case, case_id).state == '{"not": "a workflow"}'
