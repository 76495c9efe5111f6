"""Two cases changing one cadre's post at the same moment (先审计，后离任 under a race).

`cadres.change_post` checks the audit rule on the cadre's row and then writes the new post. Each case holds only
its own lock, so on PostgreSQL two steps could both check the post as it was before either committed, and the
second to commit overwrote the first: a cadre appointed to a new post by one case and taken out of it by the other
without any audit of it. The check now runs on the cadre's row locked, so the second waits and sees the first's
post. Made certain by pausing the departure after its check until the appointment has committed (PostgreSQL);
on SQLite writers are serialised and the test holds as it is."""

from __future__ import annotations

import time

from sqlalchemy import text

from service.errors import Conflict
from service.usecases import cadres, check, tasks
from tests.api.support import departure_to_fieldwork, vetting_to_notice
from tests.conftest import actor
from tests.service.test_deactivation_races import Paused, started


def at_approve_departure(api) -> str:
    """A departure audit of c1 cleared without findings, waiting at approve_departure; that task's id."""
    case_id = departure_to_fieldwork(api)
    api.complete(case_id, "audit_fieldwork", as_="audit2", findings="none", amount_involved=0, report_ref="审计报告")
    return api.open_task(case_id, "approve_departure")["id"]


def at_committee_decision(api) -> str:
    """A vetting case of c1 past its notice (an unfounded objection), waiting at committee_decision; the task's id."""
    case_id = vetting_to_notice(api, post="县财政局局长")
    sent = api.post("/api/messages", as_="discipline", json={"name": "vetting_objection", "case_id": case_id,
                                                             "data": {"report": "来信"}})
    assert sent.status_code == 202, sent.json
    api.complete(case_id, "verify_objection", substantiated=False, notes="查无实据")
    return api.open_task(case_id, "committee_decision")["id"]


def waited_or_ran(services, seconds: float = 5.0) -> None:
    """Until the appointment waits on a lock the paused departure holds; on SQLite (it waits at BEGIN IMMEDIATE), or
    when it never waits (it ran to its commit meanwhile, as it did before the fix), after a while."""
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not services.db.is_sqlite and services.db.read_rows(waiting, {})[0][0]:
            return
        time.sleep(0.05)


def test_a_departure_racing_an_appointment_never_takes_the_cadre_out_of_an_unaudited_post(services, api, cadre,
                                                                                         monkeypatch):
    """c1 (leading, audited for its post) is appointed to a new post by a vetting case while its departure audit's
    approval runs: the departure either comes first (the appointment then gives the cadre its new post) or is
    refused (409: the new post has had no audit); never a cadre without a post whose appointment was recorded."""
    departure, appointment = at_approve_departure(api), at_committee_decision(api)
    pause = Paused(monkeypatch, cadres, "change_post")
    leaving = started(lambda: tasks.complete_task(services, actor("org_dept"), departure,
                                                  {"decision": "approve", "comment": "同意离任"}))
    pause.wait()  # the departure checked the rule on the post as it is, and holds
    appointed = started(lambda: tasks.complete_task(services, actor("committee"), appointment,
                                                    {"decision": "appoint"}))
    waited_or_ran(services)
    pause.release.set()
    left, taken = leaving(), appointed()
    post = api.cadre("c1")["post"]
    if isinstance(left, dict):  # the departure first: the appointment then applies to a cadre without a post
        assert isinstance(taken, dict) and taken["outcome"] == "appointed", taken
        assert post == "县财政局局长"
    else:
        assert isinstance(left, Conflict) and "先审计" in left.message, left
        assert taken["outcome"] == "appointed" and post == "县财政局局长"
    assert check.check_cases(services, grace_seconds=3600)[1] == []
