"""Never a 500, on every route that writes: each POST, PUT, PATCH and DELETE of the API and the public portal,
found in the app's URL map (a route added later is covered without being listed), gets every hostile body
from a user holding every role. A refusal carries the error body; whatever a route accepts, the case it
was pointed at stays whole and every case still passes `cadreflow check`."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from service.db.models import IdempotencyKey
from service.usecases.check import check_cases
from service.usecases.report_log import check_reports
from tests.api.hostile import HOSTILE_IDEMPOTENCY_KEYS, HOSTILE_JSON, HOSTILE_RAW
from tests.api.support import assert_error

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
BODIES = {**{f"raw:{name}": body for name, body in HOSTILE_RAW.items()},
          **{f"json:{name}": json.dumps(body).encode() for name, body in HOSTILE_JSON.items()}}
# Logging out ends the token the other routes use: it goes last, with a token of its own.
LOGOUT = ("DELETE", "/api/auth/token")
BODYLESS = {("POST", "/api/tasks/<task_id>/claim"), ("POST", "/api/tasks/<task_id>/unclaim"),
            ("POST", "/api/notifications/read-all"), ("DELETE", "/api/me/substitute"), LOGOUT}


def write_routes(app: Any) -> list[tuple[str, Any]]:
    """(method, rule) of every write route under /api/ and /public/, logout last."""
    found = [(method, rule) for rule in app.url_map.iter_rules() if rule.rule.startswith(("/api/", "/public/"))
             for method in sorted(WRITES & set(rule.methods or ()))]
    return sorted(found, key=lambda route: ((route[0], route[1].rule) == LOGOUT, route[1].rule, route[0]))


def test_every_write_route_refuses_hostile_bodies_without_a_500(hostile_world):
    world = hostile_world
    app, api = world.app, world.api
    routes = write_routes(app)
    assert len(routes) >= 40 and (routes[-1][0], routes[-1][1].rule) == LOGOUT  # the map was read, logout last
    server_errors: list[tuple[Any, ...]] = []
    bad_refusals: list[tuple[Any, ...]] = []
    accepted: set[tuple[str, str, str]] = set()
    for method, rule in routes:
        url = world.url(rule, method)
        as_ = "leaving" if (method, rule.rule) == LOGOUT else "everyone"
        for name, body in BODIES.items():
            response = api.call(method, url, as_, data=body, content_type="application/json")
            if response.status_code >= 500:
                server_errors.append((method, rule.rule, name, response.status_code, response.get_data()[:200]))
            elif response.status_code >= 400:
                try:
                    assert_error(response, response.status_code)
                except AssertionError as exc:
                    bad_refusals.append((method, rule.rule, name, str(exc)[:200]))
            else:
                accepted.add((method, rule.rule, name))
    assert not server_errors, server_errors
    assert not bad_refusals, bad_refusals
    # A route that reads no body may take any; one that reads a body takes only the empty object (a PATCH
    # changing nothing, a scan with its defaults), and refuses every other hostile body.
    assert {(method, rule) for method, rule, name in accepted if name != "json:empty"} <= BODYLESS, accepted
    for case_id in world.cases:
        case = api.case(case_id)
        assert case["status"] == "open"
        assert [task["element_id"] for task in case["open_tasks"]] == ["intake_review"]
    checked, faults = check_cases(app.extensions["cadreflow"])
    assert checked >= 1 and faults == []
    assert check_reports(app.extensions["cadreflow"])[1] == []


def test_every_post_refuses_a_hostile_idempotency_key_and_strands_no_key_after_hostile_bodies(hostile_world):
    """Each API POST a token holder sends answers a malformed or too long `Idempotency-Key` with 400 naming it
    (the login POSTs, which take no key, never a 500); and every hostile body sent with a key of its own is
    never a 500 and leaves its key either kept with an answer or given back, none stranded as still running."""
    world = hostile_world
    api, services = world.api, world.app.extensions["cadreflow"]
    posts = [rule for method, rule in write_routes(world.app) if method == "POST" and rule.rule.startswith("/api/")]
    unguarded = {"/api/auth/token", "/api/auth/password"}
    wrong: list[tuple[Any, ...]] = []
    for rule in posts:
        url = world.url(rule, "POST")
        for name, key in HOSTILE_IDEMPOTENCY_KEYS.items():
            response = api.call("POST", url, "everyone", data=b"{}", content_type="application/json",
                                headers={"Idempotency-Key": key})
            expected = response.status_code < 500 if rule.rule in unguarded else (
                response.status_code == 400 and "Idempotency-Key" in response.json["error"].get("fields", {}))
            if not expected:
                wrong.append((rule.rule, name, response.status_code, response.get_data()[:200]))
        for number, (name, body) in enumerate(BODIES.items()):
            response = api.call("POST", url, "everyone", data=body, content_type="application/json",
                                headers={"Idempotency-Key": f"hostile-{rule.endpoint}-{number}"})
            if response.status_code >= 500:
                wrong.append((rule.rule, name, response.status_code, response.get_data()[:200]))
    assert wrong == []
    with services.db.unit_of_work(write=False) as session:
        assert session.scalars(select(IdempotencyKey.key).where(IdempotencyKey.status.is_(None))).all() == []
    assert check_cases(services)[1] == [] and check_reports(services)[1] == []
