"""Races: two completions of the same task, and two timer workers on the same case."""

from __future__ import annotations

import threading
import time
from collections import Counter
from functools import partial
from typing import Any

from service.errors import Conflict
from service.usecases import cases, messages, tasks, timers
from tests.api.support import (
    TIMER_WAIT,
    admonishment_to_follow_up,
    make_api,
    start_admonishment,
    vetting_to_notice,
)
from tests.conftest import actor

ROUNDS = 10


def race(*calls: Any) -> list[Any]:
    """Run the calls in threads released together; each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Any) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # the race's loser: kept for the assertions
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def completions_of(api, case_id: int, element: str) -> list[dict]:
    return [e for e in api.history(case_id) if e["action"] == "complete" and e.get("task") == element]


def finish_talk(api, case_id: int) -> dict:
    api.complete(case_id, "conduct_talk", minutes="谈话记录")
    api.complete(case_id, "rectification_plan", plan="整改")
    return api.complete(case_id, "follow_up_review", rectified="yes")


def test_two_http_completions_of_one_task_one_wins(app, template, cadre):
    """Two clients completing the same task together: one 200, one 409; the case stays whole and finishes."""
    first, second = make_api(app, template), make_api(app, template)
    for _ in range(ROUNDS):
        case_id = start_admonishment(first)["id"]
        task_id = first.open_task(case_id, "intake_review")["id"]
        body = {"form": "talk", "reason": "属实"}
        responses = race(partial(first.complete_raw, task_id, "discipline", body),
                         partial(second.complete_raw, task_id, "discipline2", body))
        assert sorted(r.status_code for r in responses) == [200, 409], [r.get_json() for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.get_json()["error"]["code"] == "conflict"
        case = first.case(case_id)
        assert [t["element_id"] for t in case["open_tasks"]] == ["conduct_talk"]
        assert len(completions_of(first, case_id, "intake_review")) == 1
        assert first.get(f"/api/tasks/{task_id}").json["status"] == "completed"
        assert (finish_talk(first, case_id)["outcome"]) == "rectified"


def test_two_use_case_completions_with_different_data_follow_the_winner(services, api, cadre):
    """Racing complete_task with different decisions: exactly one Conflict, and the case follows the winner."""
    for _ in range(ROUNDS):
        case_id = start_admonishment(api)["id"]
        task_id = api.open_task(case_id, "intake_review")["id"]
        results = race(
            partial(tasks.complete_task, services, actor("discipline"), task_id, {"form": "dismiss", "reason": "a"}),
            partial(tasks.complete_task, services, actor("admin"), task_id, {"form": "talk", "reason": "b"}))
        kinds = Counter(type(r).__name__ for r in results)
        assert kinds == Counter({"dict": 1, "Conflict": 1}), results
        winner = next(r for r in results if isinstance(r, dict))
        assert isinstance(next(r for r in results if not isinstance(r, dict)), Conflict)
        [entry] = completions_of(api, case_id, "intake_review")
        case = api.case(case_id)
        assert case["data"]["form"] == entry["detail"]["data"]["form"] == winner["data"]["form"]
        if winner["data"]["form"] == "dismiss":
            assert (case["status"], case["outcome"], case["open_tasks"]) == ("completed", "dismissed", [])
        else:
            assert [t["element_id"] for t in case["open_tasks"]] == ["conduct_talk"]
            assert finish_talk(api, case_id)["outcome"] == "rectified"


def test_racing_completions_of_parallel_tasks_both_count(services, api, cadre):
    """Two different parallel tasks of one case completed at once both land; the join still opens review."""
    from tests.api.support import start_vetting

    for _ in range(3):
        case_id = start_vetting(api)["id"]
        open_tasks = {t["element_id"]: t["id"] for t in api.case(case_id)["open_tasks"]}
        who = actor("org_dept")
        results = race(
            partial(tasks.complete_task, services, who, open_tasks["solicit_family_opinion"], {"opinion": "positive"}),
            partial(tasks.complete_task, services, who, open_tasks["solicit_public_opinion"], {"opinion": "neutral"}))
        assert all(isinstance(r, dict) for r in results), results
        assert api.open_elements(case_id) == ["democratic_evaluation", "solicit_colleague_opinion"]
        api.complete(case_id, "solicit_colleague_opinion", opinion="positive")
        case = api.complete(case_id, "democratic_evaluation", votes_approve=1, votes_basic=0, votes_disapprove=0)
        assert [t["element_id"] for t in case["open_tasks"]] == ["org_head_review"]


def test_two_claims_at_once_one_wins(app, template, cadre):
    """Two users claiming the same task together: one 200, one 409, and the task has that one holder."""
    first, second = make_api(app, template), make_api(app, template)
    for _ in range(ROUNDS):
        case_id = start_admonishment(first)["id"]
        task_id = first.open_task(case_id, "intake_review")["id"]
        responses = race(partial(first.post, f"/api/tasks/{task_id}/claim", as_="discipline"),
                         partial(second.post, f"/api/tasks/{task_id}/claim", as_="discipline2"))
        assert sorted(r.status_code for r in responses) == [200, 409]
        winner = next(r for r in responses if r.status_code == 200).get_json()["assignee"]
        assert first.get(f"/api/tasks/{task_id}").json["assignee"] == winner
        claims = [e for e in first.history(case_id) if e["action"] == "claim"]
        assert [e["actor"] for e in claims] == [winner]


def test_two_starts_of_a_once_only_case_at_once_open_one(app, template, cadre):
    """Two clients starting the same cadre's 述职述廉 for a year together: the start rule locks the cadre, so one
    201 and one 409, and a single case for each year."""
    first, second = make_api(app, template), make_api(app, template)
    for year in range(2030, 2030 + ROUNDS):
        body = {"process": "integrity_report", "cadre_id": "c1", "data": {"year": year}}
        responses = race(partial(first.post, "/api/cases", as_="org_dept", json=body),
                         partial(second.post, "/api/cases", as_="org_dept2", json=body))
        assert sorted(r.status_code for r in responses) == [201, 409], [r.get_json() for r in responses]
    assert first.get("/api/cases", query_string={"process": "integrity_report"}).json["total"] == ROUNDS


def test_cancel_racing_a_completion_leaves_a_cancelled_consistent_case(services, api, cadre):
    """Cancel and complete at once: the case ends cancelled with no open task, whoever came first."""
    for _ in range(5):
        case_id = start_admonishment(api)["id"]
        task_id = api.open_task(case_id, "intake_review")["id"]
        results = race(
            partial(tasks.complete_task, services, actor("discipline"), task_id, {"form": "talk", "reason": "x"}),
            partial(cases.cancel_case, services, actor("admin"), case_id, "撤销"))
        cancelled = results[1]
        assert isinstance(cancelled, dict) and cancelled["status"] == "cancelled", results
        assert isinstance(results[0], dict | Conflict), results
        case = api.case(case_id)
        assert (case["status"], case["open_tasks"]) == ("cancelled", [])
        assert api.inbox("discipline", case_id=case_id) == []
        assert sum(e["action"] == "cancel" for e in api.history(case_id)) == 1


def test_timers_fire_once_under_races(fast_app, fast_services, template):
    """Racing timer workers fire each timer once; a message racing the notice timer: exactly one path wins."""
    api = make_api(fast_app, template)
    api.create_cadre("c1")
    case_ids = [admonishment_to_follow_up(api) for _ in range(5)]
    notices = [vetting_to_notice(api) for _ in range(3)]
    time.sleep(TIMER_WAIT)

    for case_id in notices:
        message, fired = race(
            partial(messages.deliver_message, fast_services, actor("discipline"), "vetting_objection", case_id,
                    {"report": "来信"}),
            partial(timers.fire_case_timers, fast_services, case_id))
        # The deadline has passed: whoever holds the case first fires the timer (the message request
        # does so itself before refusing), so the objection is refused and the timer fires exactly once.
        assert isinstance(message, Conflict) and fired in (0, 1), (message, fired)
        assert api.open_elements(case_id) == ["committee_decision"]
        actions = [e["action"] for e in api.history(case_id)]
        assert (actions.count("timer"), actions.count("message")) == (1, 0)

    per_case = race(*(partial(timers.fire_case_timers, fast_services, c) for c in case_ids[:2] for _ in range(2)))
    assert all(isinstance(r, int) for r in per_case), per_case
    assert sum(per_case) == 2
    sweeps = race(partial(timers.fire_due_timers, fast_services), partial(timers.fire_due_timers, fast_services))
    assert sum(sweeps) == 3, sweeps
    assert timers.fire_due_timers(fast_services) == 0
    for case_id in case_ids:
        history = api.history(case_id)
        assert sum(e["action"] == "timer" for e in history) == 1
        assert sum(e["action"] == "escalation" for e in history) == 1
        assert api.open_elements(case_id) == ["follow_up_review", "supervise_follow_up_review"]
        assert api.complete(case_id, "follow_up_review", rectified="yes")["outcome"] == "rectified"
