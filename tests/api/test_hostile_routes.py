"""Never a 500, on every route that writes: each POST, PUT, PATCH and DELETE of the API and the public portal,
found in the app's URL map (a route added later is covered without being listed), gets every hostile body
from a user holding every role. A refusal carries the error body; whatever a route accepts, the case it
was pointed at stays whole and every case still passes `cadreflow check`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from service.usecases import logins, users
from service.usecases.check import check_cases
from tests.api.hostile import HOSTILE_JSON, HOSTILE_RAW
from tests.api.support import ADMONISHMENT, app_from_template, assert_error, make_api, start_admonishment
from tests.conftest import PASSWORD, ROLES

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


@pytest.fixture(scope="module")
def target(template, tmp_path_factory) -> Iterator[tuple[Any, Any, dict[str, Any], str]]:
    """An app with a cadre, an admonishment case waiting for intake_review, and a user holding every role."""
    app = app_from_template(template, tmp_path_factory.mktemp("hostile-routes"))
    api = make_api(app, template)
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    services = app.extensions["cadreflow"]
    users.create_user(services, "everyone", PASSWORD, list(ROLES))
    api.tokens["everyone"] = logins.issue_token(services, "everyone", PASSWORD)["token"]
    api.tokens["leaving"] = logins.issue_token(services, "everyone", PASSWORD)["token"]
    values = {"case_id": case_id, "task_id": api.open_task(case_id, "intake_review")["id"], "cadre_id": "c1",
              "key": ADMONISHMENT, "code": "org_dept", "username": "norole", "notification_id": 1,
              "disclosure_id": 1}
    yield app, api, values, str(case_id)
    services.db.dispose()


def url_for_route(app: Any, method: str, rule: Any, values: dict[str, Any]) -> str:
    missing = set(rule.arguments) - set(values)
    assert not missing, f"{rule.rule}: give this test a value for {sorted(missing)}"
    return str(app.url_map.bind("localhost").build(rule.endpoint, {name: values[name] for name in rule.arguments},
                                                   method=method))


def test_every_write_route_refuses_hostile_bodies_without_a_500(target):
    app, api, values, case_id = target
    routes = write_routes(app)
    assert len(routes) >= 40 and (routes[-1][0], routes[-1][1].rule) == LOGOUT  # the map was read, logout last
    server_errors: list[tuple[Any, ...]] = []
    bad_refusals: list[tuple[Any, ...]] = []
    accepted: set[tuple[str, str, str]] = set()
    for method, rule in routes:
        url = url_for_route(app, method, rule, values)
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
    assert server_errors == []
    assert bad_refusals == []
    # A route that reads no body may take any; one that reads a body takes only the empty object (a PATCH
    # changing nothing, a scan with its defaults), and refuses every other hostile body.
    assert {(method, rule) for method, rule, name in accepted if name != "json:empty"} <= BODYLESS, accepted
    case = api.case(int(case_id))
    assert case["status"] == "open"
    assert [task["element_id"] for task in case["open_tasks"]] == ["intake_review"]
    checked, faults = check_cases(app.extensions["cadreflow"])
    assert checked >= 1 and faults == []
