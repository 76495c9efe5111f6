"""Never a 500 from a page's form: every POST route of the browser UI and the portal, found in the app's URL
map, gets hostile form bodies from a signed-in user holding every role. Field names are every `name="..."`
in the templates plus the ones forms render from a schema; whatever the routes accept, every case still
passes `cadreflow check` afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from service.config import PROJECT_ROOT
from service.usecases import users
from service.usecases.check import check_cases
from service.usecases.forms import TEXT_LIMIT
from tests.api.support import ADMONISHMENT, app_from_template, make_api, start_admonishment
from tests.conftest import PASSWORD, ROLES
from tests.web.test_web_shell import csrf_token

# Forms drawn from a schema (cadre fields, process forms) name their inputs at run time.
SCHEMA_FIELDS = {"id", "name", "post", "post_level", "post_started_on", "proposed_post", "selection_method",
                 "trigger", "summary", "form", "data", "bpmn", "minutes", "plan", "talk_date", "amount", "date"}
# Ending the session goes last: after it the other routes would only redirect to the login page.
LAST = ("/account/password", "/logout")


def field_names() -> set[str]:
    templates = (PROJECT_ROOT / "service").rglob("*.html")
    found = {name for path in templates for name in re.findall(r'name="([a-z_]+)"', path.read_text("utf-8"))}
    return (found | SCHEMA_FIELDS) - {"csrf_token"}


def hostile_forms(fields: set[str]) -> dict[str, dict[str, Any]]:
    every = sorted(fields)
    return {
        "empty": {},
        "long-text": {name: "长" * (TEXT_LIMIT + 1) for name in every},  # past every field's limit, under the body's
        "nul": {name: "\x00" for name in every},
        "negative": {name: "-1" for name in every},
        "huge-number": {name: "9" * 400 for name in every},
        "nan": {name: "nan" for name in every},
        "bad-date": {name: "2026-02-30" for name in every},
        "markup": {name: '<script>alert(1)</script>"\'' for name in every},
        "repeated": {name: ["a", "b", "c"] for name in every},
    }


def form_routes(app: Any) -> list[Any]:
    rules = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())
             and not rule.rule.startswith(("/api/", "/public/"))]
    return sorted(rules, key=lambda rule: (rule.rule in LAST, LAST.index(rule.rule) if rule.rule in LAST else 0,
                                           rule.rule))


@pytest.fixture(scope="module")
def target(template, tmp_path_factory) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    app = app_from_template(template, tmp_path_factory.mktemp("hostile-forms"))
    api = make_api(app, template)
    api.create_cadre("c1")
    case_id, task_case_id = start_admonishment(api)["id"], start_admonishment(api)["id"]  # a cancel spares the task
    users.create_user(app.extensions["cadreflow"], "everyone", PASSWORD, list(ROLES))
    values = {"case_id": case_id, "task_id": api.open_task(task_case_id, "intake_review")["id"], "cadre_id": "c1",
              "key": ADMONISHMENT, "code": "org_dept", "username": "norole", "notification_id": 1,
              "disclosure_id": 1}
    yield app, app.test_client(), values
    app.extensions["cadreflow"].db.dispose()


def signed_in(client: Any) -> str:
    """Sign in as `everyone` unless the session still holds; the session's CSRF token."""
    if client.get("/account/password").status_code != 200:
        response = client.post("/login", data={"username": "everyone", "password": PASSWORD,
                                               "csrf_token": csrf_token(client)})
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return csrf_token(client, "/account/password")


def test_every_form_route_answers_hostile_forms_without_a_500(target):
    app, client, values = target
    routes = form_routes(app)
    assert len(routes) >= 35 and routes[-1].rule == "/logout"  # the map was read, logout last
    forms = hostile_forms(field_names())
    server_errors = []
    for rule in routes:
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: give this test a value for {sorted(missing)}"
        url = app.url_map.bind("localhost").build(rule.endpoint, {name: values[name] for name in rule.arguments},
                                                  method="POST")
        for name, form in forms.items():
            token = signed_in(client)
            response = client.post(url, data={**form, "csrf_token": token})
            if response.status_code >= 500:
                server_errors.append((rule.rule, name, response.status_code))
        bad_bytes = client.post(url, data=b"reason=%FF%FE&comment=%C0%AF&csrf_token=" + signed_in(client).encode(),
                                content_type="application/x-www-form-urlencoded")
        if bad_bytes.status_code >= 500:
            server_errors.append((rule.rule, "bad-utf8", bad_bytes.status_code))
    assert server_errors == []
    checked, faults = check_cases(app.extensions["cadreflow"])
    assert checked >= 1 and faults == []
