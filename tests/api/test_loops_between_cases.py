"""Two processes that hand a signal back and forth for ever, with no person in between.

Each case's step is bounded (the engine's loop guard), but between cases nothing was: the step that took a signal threw
the next one, delivered right after its commit from inside the delivery before it, so the request that started the
pair recursed some fifty deliveries deep (until RecursionError), and every pass of the worker took the stranded items
up again: a hundred more steps and two hundred history entries per pair and pass, for ever. A chain of hand-overs
without a person now stops after MAX_HOPS, the case that would throw the next one held as an incident.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select, update

from service.db.models import Case, HistoryEntry, OutboxItem, utcnow
from service.usecases import between, delivery
from tests.conformance.bpmn import definitions, flow, signal, signal_ref, start

QUICKLY = 30.0  # seconds: MAX_HOPS steps on a loaded machine take a fraction of this


def echo(key: str, first: str, then: str, throws_first: bool) -> bytes:
    """A loop through a gateway: throw `first` and catch `then` (or catch `first`, throw `then`), again and again."""
    events = {"throw": "intermediateThrowEvent", "catch": "intermediateCatchEvent"}
    one, two = ("throw", "catch") if throws_first else ("catch", "throw")
    body = (start() + '<bpmn:exclusiveGateway id="again"/>'
            + f'<bpmn:{events[one]} id="one">{signal_ref(first)}</bpmn:{events[one]}>'
            + f'<bpmn:{events[two]} id="two">{signal_ref(then)}</bpmn:{events[two]}>'
            + flow("start", "again") + flow("again", "one") + flow("one", "two") + flow("two", "again"))
    return definitions(key, body, top=signal(first) + signal(then))


def deploy(api, key, body):
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=body, content_type="application/xml")
    assert response.status_code == 201, response.json
    assert api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200


def counts(services) -> tuple[int, int]:
    with services.db.unit_of_work(write=False) as session:
        return (session.scalar(select(func.count()).select_from(HistoryEntry)),
                session.scalar(select(func.count()).select_from(OutboxItem)))


def test_a_signal_ping_pong_between_two_cases_stops_as_an_incident(api, services):
    deploy(api, "pong", echo("pong", "ping", "pong", throws_first=False))
    deploy(api, "ping", echo("ping", "ping", "pong", throws_first=True))
    api.create_cadre("c1")
    answering = api.start("pong", "c1", as_="org_dept")
    started = time.monotonic()
    response = api.post("/api/cases", as_="org_dept", json={"process": "ping", "cadre_id": "c1", "data": {}})
    assert response.status_code == 201, response.json
    assert time.monotonic() - started < QUICKLY
    with services.db.unit_of_work(write=False) as session:
        statuses = {case.id: (case.status, case.incident) for case in session.scalars(select(Case))}
    held = [status for status in statuses.values() if status[0] == "incident"]
    assert len(held) == 1 and "循环" in held[0][1]["message"], statuses
    assert {answering["id"], response.json["id"]} <= set(statuses)
    before = counts(services)
    assert before[1] == 0, "an item of the loop is left for the worker"
    with services.db.unit_of_work() as session:  # whatever is left is due now
        session.execute(update(OutboxItem).values(next_attempt_at=utcnow()))
    assert delivery.deliver_due(services) == 0
    assert counts(services) == before


def test_a_short_chain_of_hand_overs_still_runs(api, services):
    """A signal answered once: far below MAX_HOPS, every hand-over is taken."""
    deploy(api, "pong", echo("pong", "ping", "pong", throws_first=False))
    body = (start() + f'<bpmn:intermediateThrowEvent id="one">{signal_ref("ping")}</bpmn:intermediateThrowEvent>'
            + f'<bpmn:intermediateCatchEvent id="two">{signal_ref("pong")}</bpmn:intermediateCatchEvent>'
            + '<bpmn:endEvent id="end_answered"/>'
            + flow("start", "one") + flow("one", "two") + flow("two", "end_answered"))
    deploy(api, "asks", definitions("asks", body, top=signal("ping") + signal("pong")))
    api.create_cadre("c1")
    api.start("pong", "c1", as_="org_dept")
    asked = api.start("asks", "c1", as_="org_dept")
    assert api.case(asked["id"])["status"] == "completed"
    assert between.MAX_HOPS >= 10
