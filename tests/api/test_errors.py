"""The error contract: statuses 400/401/403/404/409/422, the error body, and never a 500 for bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from service.config import PROJECT_ROOT
from tests.api.hostile import ADMONISHMENT_START, HOSTILE_JSON, HOSTILE_RAW
from tests.api.support import (
    ACCOUNTABILITY,
    ADMONISHMENT,
    CLIENT_ERRORS,
    DEPARTURE,
    VETTING,
    app_from_template,
    assert_error,
    make_api,
    send_objection,
    start_admonishment,
    start_vetting,
    vetting_to_notice,
)

START_DATA = {
    VETTING: {"proposed_post": "局长", "selection_method": "organisation"},
    DEPARTURE: {"departure_reason": "transfer", "planned_departure_on": "2030-01-01"},
    ADMONISHMENT: ADMONISHMENT_START,
    ACCOUNTABILITY: {"source": "web", "category": "other", "allegation": "线索"},
}
STARTERS = {VETTING: {"org_dept"}, DEPARTURE: {"org_dept"}, ADMONISHMENT: {"discipline", "org_dept"},
            ACCOUNTABILITY: {"discipline"}}  # admonishment: the organisation department too (amendments)
OTHER_ROLES = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head", "designer"]


def start_raw(api, process, as_, cadre_id="c1", **overrides):
    return api.post("/api/cases", as_=as_, json={"process": process, "cadre_id": cadre_id,
                                                 "data": {**START_DATA[process], **overrides}})


def intake(api):
    """An admonishment case waiting for intake_review; (case id, task id)."""
    case_id = start_admonishment(api)["id"]
    return case_id, api.open_task(case_id, "intake_review")["id"]


# 401

@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/cases"), ("GET", "/api/tasks"), ("GET", "/api/cadres"), ("GET", "/api/processes"),
    ("GET", "/api/auth/me"), ("POST", "/api/cases"), ("POST", "/api/messages"), ("GET", "/api/cases/1"),
    ("POST", "/api/tasks/x/complete"), ("PATCH", "/api/cadres/c1"), ("POST", "/api/processes/x/versions"),
])
def test_no_token_is_401(api, method, url):
    """Every API call without a token is 401 unauthorized."""
    assert_error(api.call(method, url, None, json={}), 401, "unauthorized")


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer ", "Basic YWRtaW46cHc=", "bearer x", "Token abc",
                                    "Bearer " + "x" * 5000, "Bearer \u00e9\u00e9"])
def test_bad_token_is_401(api, header):
    """A wrong, empty or malformed Authorization header is 401."""
    assert_error(api.client.get("/api/cases", headers={"Authorization": header}), 401, "unauthorized")


def test_expired_token_is_401(template, tmp_path):
    """A token past its lifetime is 401 (its lifetime moved into the past: TOKEN_TTL_HOURS must be above 0)."""
    from sqlalchemy import update

    from service.db.models import ApiToken, utcnow

    app = app_from_template(template, tmp_path / "expiring")
    try:
        client = app.test_client()
        login = client.post("/api/auth/token", json={"username": "admin", "password": "pw-for-tests"})
        assert login.status_code == 200
        with app.extensions["cadreflow"].db.unit_of_work() as session:
            session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        response = client.get("/api/cases", headers={"Authorization": f"Bearer {login.json['token']}"})
        assert_error(response, 401, "unauthorized")
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_token_row_written_without_the_instance_key_opens_nothing(template, tmp_path):
    """An insider who can write `api_tokens` but holds no key adds a row for a secret of their choosing, hashed as
    the rows were once kept (plain SHA-256) and under a key of their own: neither logs them in as the admin, while
    the service's own token, stored under the instance key, still works."""
    import hashlib
    import hmac

    from sqlalchemy import select

    from service.db.models import ApiToken, User, utcnow

    app = app_from_template(template, tmp_path / "insider")
    try:
        client = app.test_client()
        login = client.post("/api/auth/token", json={"username": "admin", "password": "pw-for-tests"})
        assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {login.json['token']}"}).status_code == 200
        chosen = "insider-chosen-secret-0123456789abcdef"
        forged = [hashlib.sha256(chosen.encode()).hexdigest(),
                  hmac.new(b"a key of the insider's own", chosen.encode(), hashlib.sha256).hexdigest()]
        with app.extensions["cadreflow"].db.unit_of_work() as session:
            admin_id = session.scalar(select(User.id).where(User.username == "admin"))
            session.add_all(ApiToken(token_hash=digest, user_id=admin_id, expires_at=utcnow() + timedelta(hours=1))
                            for digest in forged)
        assert_error(client.get("/api/auth/me", headers={"Authorization": f"Bearer {chosen}"}), 401, "unauthorized")
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_login_errors(api):
    """Wrong password or unknown user → 401; missing fields → 422 naming them; a good login returns roles."""
    assert_error(api.client.post("/api/auth/token", json={"username": "admin", "password": "wrong"}), 401)
    assert_error(api.client.post("/api/auth/token", json={"username": "ghost", "password": "pw-for-tests"}), 401)
    error = assert_error(api.client.post("/api/auth/token", json={"username": "admin"}), 422)
    assert "password" in error["fields"]
    ok = api.client.post("/api/auth/token", json={"username": "multi", "password": "pw-for-tests"})
    assert ok.status_code == 200 and ok.json["user"] == {"username": "multi", "roles": ["audit", "discipline"]}
    me = api.get("/api/auth/me", as_="multi").json
    assert me == {"username": "multi", "roles": ["audit", "discipline"]}


# 403

@pytest.mark.parametrize("process", [VETTING, DEPARTURE, ADMONISHMENT, ACCOUNTABILITY])
def test_start_permissions_by_default(api, cadre, process):
    """Only the configured role (and admin) starts a process; every other role gets 403 and no case."""
    for role in OTHER_ROLES:
        if role not in STARTERS[process]:
            assert_error(start_raw(api, process, role), 403, "forbidden")
    assert api.get("/api/cases").json["total"] == 0
    for role in [*sorted(STARTERS[process]), "admin"]:
        assert start_raw(api, process, role).status_code == 201


def test_user_without_roles_is_403(api):
    """A logged-in user with no role may do nothing: 403."""
    assert_error(api.get("/api/tasks", as_="norole"), 403, "forbidden")
    assert_error(api.get("/api/cases", as_="norole"), 403, "forbidden")


def test_completing_another_roles_task_is_403(api, cadre):
    """A discipline task: discipline_head (who reads the case) → 403; org_dept, audit (who may not) → 404."""
    case_id, task_id = intake(api)
    for role, status, code in (("discipline_head", 403, "forbidden"), ("org_dept", 404, "not_found"),
                               ("audit", 404, "not_found")):
        assert_error(api.complete_raw(task_id, role, {"form": "dismiss", "reason": "x"}), status, code)
        assert_error(api.post(f"/api/tasks/{task_id}/claim", as_=role), status, code)
    assert api.open_elements(case_id) == ["intake_review"]
    assert not [e for e in api.history(case_id) if e["action"] in ("complete", "claim")]


def test_cancel_by_non_admin_is_403(api, cadre):
    """Only admin cancels a case."""
    case_id, _ = intake(api)
    for role in ("discipline", "org_dept", "discipline_head", "designer"):
        assert_error(api.post(f"/api/cases/{case_id}/cancel", as_=role, json={"reason": "x"}), 403, "forbidden")
    assert api.case(case_id)["status"] == "open"


def test_deploy_by_non_designer_is_403(api):
    """Only designer (or admin) deploys a process version."""
    xml = (Path(PROJECT_ROOT) / "bpmn" / "admonishment.bpmn").read_bytes()
    for role in ("org_dept", "discipline", "audit_head"):
        response = api.post(f"/api/processes/{ADMONISHMENT}/versions", as_=role, data=xml,
                            content_type="application/xml")
        assert_error(response, 403, "forbidden")
    same = api.post(f"/api/processes/{ADMONISHMENT}/versions", as_="designer", data=xml, content_type="application/xml")
    assert same.status_code in (200, 201) and same.json["version"] == 1


def test_invalid_bpmn_deploy_is_422_with_errors(api):
    """A BPMN that does not parse is 422 with a list of errors, never a 500."""
    for body in (b"<not-bpmn/>", b"<<<", "<bpmn>中文</bpmn>".encode()):
        response = api.post("/api/processes/broken/versions", as_="designer", data=body,
                            content_type="application/xml")
        error = assert_error(response, 422)
        assert error.get("errors") or error.get("fields")
    assert_error(api.post("/api/processes/broken/versions", as_="designer", data=b"",
                          content_type="application/xml"), {400, 422})
    assert api.get("/api/processes/broken").status_code == 404


def test_cadre_writes_need_org_dept(api, cadre):
    """Registering or editing a cadre needs org_dept (or admin): others get 403."""
    body = {"name": "赵六", "unit": "县委", "post": "科长", "post_level": "middle", "post_started_on": "2020-01-01"}
    assert_error(api.post("/api/cadres", as_="discipline", json=body), 403, "forbidden")
    assert_error(api.patch("/api/cadres/c1", as_="audit", json={"name": "改"}), 403, "forbidden")
    assert api.cadre()["name"] == "张三"


def test_message_role_not_allowed_is_403(api, cadre):
    """Only the configured roles deliver vetting_objection: others get 403 and the case still waits."""
    case_id = vetting_to_notice(api)
    assert_error(send_objection(api, case_id, as_="audit"), 403, "forbidden")
    assert_error(send_objection(api, case_id, as_="committee"), 403, "forbidden")
    assert send_objection(api, case_id).status_code == 202


# 404

@pytest.mark.parametrize(("method", "url"), [
    ("GET", "/api/cases/987654"), ("GET", "/api/cases/987654/history"), ("GET", "/api/cases/987654/diagram"),
    ("POST", "/api/cases/987654/cancel"), ("GET", "/api/tasks/no-such-task"), ("POST", "/api/tasks/no-such-task/claim"),
    ("POST", "/api/tasks/no-such-task/unclaim"), ("POST", "/api/tasks/no-such-task/complete"),
    ("GET", "/api/cadres/nobody"), ("PATCH", "/api/cadres/nobody"), ("GET", "/api/processes/no_such"),
    ("GET", "/api/processes/no_such/bpmn"), ("GET", "/api/nothing-here"), ("GET", "/api/cases/abc"),
    ("POST", "/api/nothing-here"), ("GET", "/api/tasks/x/y/z"),
])
def test_unknown_things_are_404(api, method, url):
    """Unknown case, task, cadre, process or route → 404 with the error body."""
    body = {"reason": "x"} if url.endswith("cancel") else {"data": {}} if url.endswith("complete") else \
        {"name": "x"} if method == "PATCH" else None
    response = api.call(method, url, "admin", json=body) if body is not None else api.call(method, url, "admin")
    assert_error(response, 404)


@pytest.mark.parametrize("case_id", [9_223_372_036_854_775_808, 10**30])
def test_huge_case_ids_are_404_not_500(api, case_id):
    """Case ids beyond any stored id are simply unknown: 404, not a database overflow."""
    assert_error(api.get(f"/api/cases/{case_id}"), 404)
    assert_error(api.get(f"/api/cases/{case_id}/history"), 404)
    assert_error(api.get(f"/api/cases/{case_id}/diagram"), 404)
    assert_error(api.post(f"/api/cases/{case_id}/cancel", json={"reason": "x"}), 404)
    assert_error(send_objection(api, case_id), {404, 422})


def test_wrong_method_has_error_body(api):
    """A method a route does not take is 405 with the error body."""
    assert_error(api.call("DELETE", "/api/cases", "admin"), 405)


# 409

def test_second_completion_is_409(api, cadre):
    """Completing a task twice → 409 conflict; the case moved once."""
    case_id, task_id = intake(api)
    assert api.complete_raw(task_id, "discipline", {"form": "talk", "reason": "属实"}).status_code == 200
    assert_error(api.complete_raw(task_id, "discipline", {"form": "talk", "reason": "属实"}), 409, "conflict")
    assert_error(api.complete_raw(task_id, "admin", {"form": "dismiss", "reason": "改"}), 409, "conflict")
    assert api.open_elements(case_id) == ["conduct_talk"]
    assert sum(e["action"] == "complete" for e in api.history(case_id)) == 1


def test_claim_of_task_claimed_by_another_is_409(api, cadre):
    """A task claimed by one discipline user cannot be claimed by another: 409."""
    _, task_id = intake(api)
    assert api.post(f"/api/tasks/{task_id}/claim", as_="discipline").status_code == 200
    assert_error(api.post(f"/api/tasks/{task_id}/claim", as_="discipline2"), 409, "conflict")
    assert api.get(f"/api/tasks/{task_id}").json["assignee"] == "discipline"


def test_message_not_awaited_is_409(api, cadre):
    """A vetting case still gathering opinions waits for no message: 409."""
    case_id = start_vetting(api)["id"]
    assert_error(send_objection(api, case_id), 409, "conflict")


def test_cancel_of_closed_case_is_409(api, cadre):
    """Cancelling a completed or an already cancelled case → 409."""
    done_id, task_id = intake(api)
    api.complete_raw(task_id, "discipline", {"form": "dismiss", "reason": "x"})
    assert_error(api.post(f"/api/cases/{done_id}/cancel", json={"reason": "x"}), 409, "conflict")
    assert api.case(done_id)["status"] == "completed"
    open_id, _ = intake(api)
    assert api.post(f"/api/cases/{open_id}/cancel", json={"reason": "x"}).status_code == 200
    assert_error(api.post(f"/api/cases/{open_id}/cancel", json={"reason": "again"}), 409, "conflict")


def test_duplicate_cadre_id_is_409(api, cadre):
    """Registering a cadre id that exists → 409."""
    body = {"id": "c1", "name": "重名", "unit": "县委", "post": "科长", "post_level": "middle",
            "post_started_on": "2020-01-01"}
    assert_error(api.post("/api/cadres", as_="org_dept", json=body), 409, "conflict")
    assert api.cadre()["name"] == "张三"


# 422

@pytest.mark.parametrize(("data", "bad"), [
    ({"form": "talk"}, {"reason"}),                                     # missing required
    ({}, {"form", "reason"}),                                           # everything missing
    ({"form": "shout", "reason": "x"}, {"form"}),                       # enum
    ({"form": 3, "reason": "x"}, {"form"}),                             # type
    ({"form": "talk", "reason": ""}, {"reason"}),                       # empty required text
    ({"form": "talk", "reason": "x", "hack": True}, {"hack"}),          # extra field
    ({"form": None, "reason": None}, {"form", "reason"}),               # nulls
])
def test_intake_form_errors_name_each_field(api, cadre, data, bad):
    """Form errors → 422 with `fields` naming exactly the bad fields; the task stays open."""
    case_id, task_id = intake(api)
    assert_error(api.complete_raw(task_id, "discipline", data), 422, "invalid", bad)
    assert api.open_elements(case_id) == ["intake_review"]


def test_completion_without_data_key_is_422(api, cadre):
    """A completion body without `data` is an empty form: 422 naming the required fields."""
    case_id, task_id = intake(api)
    assert_error(api.post(f"/api/tasks/{task_id}/complete", as_="discipline", json={}), 422, "invalid",
                 {"form", "reason"})
    assert_error(api.post(f"/api/tasks/{task_id}/complete", as_="discipline", json={"data": None}), 422, "invalid")
    assert api.open_elements(case_id) == ["intake_review"]


def test_wrong_types_and_sums_on_democratic_evaluation(api, cadre):
    """Votes: string or bool for integer, negative, or all zero → 422 on those fields."""
    case_id = start_vetting(api)["id"]
    task_id = api.open_task(case_id, "democratic_evaluation")["id"]
    good = {"votes_approve": 1, "votes_basic": 0, "votes_disapprove": 0}
    for override, bad in (({"votes_approve": "1"}, {"votes_approve"}), ({"votes_basic": True}, {"votes_basic"}),
                          ({"votes_disapprove": -1}, {"votes_disapprove"}),
                          ({"votes_approve": 1.5}, {"votes_approve"})):
        assert_error(api.complete_raw(task_id, "org_dept", {**good, **override}), 422, "invalid", bad)
    error = assert_error(api.complete_raw(task_id, "org_dept", {"votes_approve": 0, "votes_basic": 0,
                                                                "votes_disapprove": 0}), 422, "invalid")
    assert set(error["fields"]) & {"votes_approve", "votes_basic", "votes_disapprove"}
    assert api.complete_raw(task_id, "org_dept", good).status_code == 200


def test_wrong_types_for_booleans(api, cadre):
    """An int or a string where a boolean is expected → 422 on that field."""
    case_id = api.start(ACCOUNTABILITY, as_="discipline", **START_DATA[ACCOUNTABILITY])["id"]
    task_id = api.open_task(case_id, "preliminary_verification")["id"]
    for value in (1, 0, "true", "false", None, [True]):
        assert_error(api.complete_raw(task_id, "discipline", {"founded": value}), 422, "invalid", {"founded"})
    assert api.open_elements(case_id) == ["preliminary_verification"]


@pytest.mark.parametrize("value", ["2024-13-01", "01/05/2024", "2024-02-30", "yesterday", "", "2024-5-1"])
def test_bad_dates_are_422(api, cadre, value):
    """A date that is not YYYY-MM-DD (or not a real day) → 422 on that field, in tasks and at start."""
    case_id, task_id = intake(api)
    api.complete_raw(task_id, "discipline", {"form": "talk", "reason": "属实"})
    talk = api.open_task(case_id, "conduct_talk")["id"]
    assert_error(api.complete_raw(talk, "discipline", {"talk_date": value, "minutes": "记录"}), 422, "invalid",
                 {"talk_date"})
    assert_error(start_raw(api, DEPARTURE, "org_dept", planned_departure_on=value), 422, "invalid",
                 {"planned_departure_on"})


def test_start_errors(api, cadre):
    """At start: unknown cadre, missing or bad start data, extra fields, unknown process → 422 per field."""
    assert_error(start_raw(api, ADMONISHMENT, "discipline", cadre_id="ghost"), 422, "invalid", {"cadre_id"})
    response = api.post("/api/cases", as_="discipline", json={"process": ADMONISHMENT, "cadre_id": "c1",
                                                              "data": {"trigger": "complaint"}})
    assert_error(response, 422, "invalid", {"summary"})
    assert_error(start_raw(api, ADMONISHMENT, "discipline", trigger="rumour"), 422, "invalid", {"trigger"})
    assert_error(start_raw(api, ADMONISHMENT, "discipline", extra="x"), 422, "invalid", {"extra"})
    assert_error(start_raw(api, VETTING, "org_dept", proposed_post=""), 422, "invalid", {"proposed_post"})
    response = api.post("/api/cases", json={"process": "no_such_process", "cadre_id": "c1", "data": {}})
    assert_error(response, {404, 422})
    assert_error(api.post("/api/cases", json={"cadre_id": "c1", "data": {}}), 422, "invalid", {"process"})
    response = api.post("/api/cases", json={"process": ADMONISHMENT, "cadre_id": "c1", "data": [1]})
    assert_error(response, 422, "invalid", {"data"})
    assert api.get("/api/cases").json["total"] == 0


def test_departure_form_errors(api, cadre):
    """Negative amount, unknown findings, missing report_ref → 422 on those fields."""
    case_id = api.start(DEPARTURE, as_="org_dept", **START_DATA[DEPARTURE])["id"]
    api.complete(case_id, "assign_audit_team", team_lead="audit")
    task_id = api.open_task(case_id, "audit_fieldwork")["id"]
    assert_error(api.complete_raw(task_id, "audit", {"findings": "none", "report_ref": "R", "amount_involved": -5}),
                 422, "invalid", {"amount_involved"})
    assert_error(api.complete_raw(task_id, "audit", {"findings": "huge", "report_ref": "R"}), 422, "invalid",
                 {"findings"})
    assert_error(api.complete_raw(task_id, "audit", {"findings": "none"}), 422, "invalid", {"report_ref"})
    assert_error(api.complete_raw(task_id, "audit", {"findings": "none", "report_ref": "R",
                                                     "amount_involved": "100"}), 422, "invalid", {"amount_involved"})


def test_cadre_form_errors(api):
    """Registering a cadre with missing, mistyped or badly formatted fields → 422 per field."""
    good = {"name": "赵六", "unit": "县委", "post": "科长", "post_level": "middle", "post_started_on": "2020-01-01"}
    cases = [({k: v for k, v in good.items() if k != "name"}, {"name"}),
             ({**good, "post_level": "boss"}, {"post_level"}),
             ({**good, "post_started_on": "2020/01/01"}, {"post_started_on"}), ({**good, "unit": 5}, {"unit"}),
             ({**good, "promotion_ban_until": "2030-01-01"}, {"promotion_ban_until"}), ({**good, "id": ""}, {"id"})]
    for body, bad in cases:
        assert_error(api.post("/api/cadres", as_="org_dept", json=body), 422, "invalid", bad)
    assert api.get("/api/cadres").json == []


def test_cancel_needs_reason(api, cadre):
    """Cancel without a reason → 422 on reason; the case stays open."""
    case_id, _ = intake(api)
    assert_error(api.post(f"/api/cases/{case_id}/cancel", json={}), 422, "invalid", {"reason"})
    assert_error(api.post(f"/api/cases/{case_id}/cancel", json={"reason": "  "}), 422, "invalid", {"reason"})
    assert api.case(case_id)["status"] == "open"


def test_message_body_errors(api, cadre):
    """A message with no name, a non-integer case_id or non-object data → 422 naming the field."""
    case_id = start_vetting(api)["id"]
    assert_error(api.post("/api/messages", json={"case_id": case_id}), 422, "invalid", {"name"})
    assert_error(api.post("/api/messages", json={"name": "vetting_objection", "case_id": str(case_id)}), 422,
                 "invalid", {"case_id"})
    assert_error(api.post("/api/messages", json={"name": "vetting_objection", "case_id": case_id, "data": [1]}),
                 422, "invalid", {"data"})


# 400

JSON_ENDPOINTS = ["/api/cases", "/api/tasks/{task}/complete", "/api/messages", "/api/cadres", "/api/auth/token",
                  "/api/auth/password", "/api/users",
                  "/api/cases/{case}/cancel"]


@pytest.mark.parametrize("body", [b"{", b"not json", b"[]", b"[1, 2]", b"", b"null", b"42", b'"text"'],
                         ids=["truncated", "garbage", "empty-array", "array", "empty", "null", "number", "string"])
def test_malformed_or_non_object_bodies_are_400(api, cadre, body):
    """Malformed JSON, a JSON array, an empty body or any non-object → 400 bad_request."""
    case_id, task_id = intake(api)
    for url in JSON_ENDPOINTS:
        response = api.post(url.format(task=task_id, case=case_id), data=body, content_type="application/json")
        assert_error(response, 400, "bad_request")
    assert api.open_elements(case_id) == ["intake_review"]


def test_json_with_wrong_content_type_is_400(api, cadre):
    """A JSON object sent as text/plain is not taken as JSON: 400."""
    response = api.post("/api/cadres", as_="org_dept", data=json.dumps({"name": "x"}), content_type="text/plain")
    assert_error(response, 400, "bad_request")


# Never a 500: hostile payloads against every JSON endpoint.

@pytest.fixture(scope="module")
def hostile(template, tmp_path_factory):
    """One app for the hostile payloads (none may change anything): a cadre and an open intake task."""
    app = app_from_template(template, tmp_path_factory.mktemp("hostile"))
    api = make_api(app, template)
    api.create_cadre("c1")
    case_id, task_id = intake(api)
    yield api, case_id, task_id
    app.extensions["cadreflow"].db.dispose()


def check_hostile(hostile, url, **kwargs):
    api, case_id, task_id = hostile
    as_ = None if url == "/api/auth/token" else "admin"
    response = api.call("POST", url.format(task=task_id, case=case_id), as_, **kwargs)
    assert_error(response, CLIENT_ERRORS)
    assert api.open_elements(case_id) == ["intake_review"]
    assert api.case(case_id)["status"] == "open"


@pytest.mark.parametrize("url", JSON_ENDPOINTS)
@pytest.mark.parametrize("name", list(HOSTILE_RAW))
def test_hostile_raw_bodies_never_500(hostile, url, name):
    """Hostile raw bodies get a 4xx with the error body, and change nothing."""
    check_hostile(hostile, url, data=HOSTILE_RAW[name], content_type="application/json")


@pytest.mark.parametrize("url", JSON_ENDPOINTS)
@pytest.mark.parametrize("name", list(HOSTILE_JSON))
def test_hostile_json_objects_never_500(hostile, url, name):
    """Hostile JSON objects get a 4xx with the error body, and change nothing."""
    body = json.dumps(HOSTILE_JSON[name]).encode()
    check_hostile(hostile, url, data=body, content_type="application/json")


def test_oversized_body_is_413(hostile):
    """A body past the upload limit is refused with the error body, not a 500."""
    api, _, _ = hostile
    limit = api.client.application.config["MAX_CONTENT_LENGTH"]
    response = api.post("/api/cases", data=b'{"data": "' + b"x" * limit + b'"}', content_type="application/json")
    assert_error(response, 413)


def test_cadre_ids_that_cannot_be_part_of_a_url_are_refused(api):
    """A cadre id with a slash or a space is a 422 on `id`: it could never be read back at /api/cadres/<id>."""
    for bad in ("a/b", "a b", "../x", "-x"):
        response = api.post("/api/cadres", as_="org_dept", json={
            "id": bad, "name": "n", "unit": "u", "post": "p", "post_level": "staff", "post_started_on": "2020-01-01"})
        assert response.status_code == 422 and "id" in response.json["error"]["fields"], (bad, response.json)
    good = api.create_cadre("ok-1.a_b")
    assert api.get("/api/cadres/ok-1.a_b").json["id"] == good["id"]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "field"), [
    ("POST", "/api/cadres", {"json": {"id": "c2", "name": "张\u0000三", "unit": "u", "post": "p", "post_level": "staff",
                                      "post_started_on": "2020-01-01"}}, 422, "name"),
    ("POST", "/api/cadres", {"json": {"id": "c2", "name": "张三", "unit": "u", "post": "p", "post_level": "staff",
                                      "post_started_on": "2020-01-01", "x\u0000": 1}}, 422, "x\ufffd"),
    ("POST", "/api/cases", {"json": {"process": ADMONISHMENT, "cadre_id": "c1",
                                     "data": {"trigger": "complaint", "summary": ["ok", {"deep": "a\u0000"}]}}},
     422, "deep"),
    ("GET", "/api/cases", {"query_string": {"q": "a\u0000"}}, 400, "q"),
    ("GET", "/api/cadres/c1%00", {}, 404, None),
    ("POST", "/public/reports", {"json": {"subject_name": "a\u0000", "content": "x"}}, 422, "subject_name"),
], ids=["json-value", "json-key", "json-deep", "query", "path", "portal"])
def test_a_nul_character_anywhere_is_refused_and_stores_nothing(api, cadre, method, url, kwargs, status, field):
    """PostgreSQL cannot store a NUL (it was a 500 there, and SQLite kept it): refused at the door like the
    part of the request it is in, the field named: a path like an unknown id, a query parameter as malformed,
    a body's field as data that fails its form."""
    error = assert_error(api.call(method, url, "admin", **kwargs), status, fields={field} if field else None)
    if field:
        assert "NUL" in error["message"] and "空字符" in error["fields"][field]
    assert api.get("/api/cadres/c2").status_code == 404
    assert api.get("/api/cases").json["total"] == 0


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "field"), [
    ("POST", "/api/early-warning-scan", {"json": {"on": "9999-12-31"}}, 422, "on"),
    ("POST", "/api/rotation-scan", {"json": {"on": "0001-01-01"}}, 422, "on"),
    ("PUT", "/api/me/substitute", {"json": {"username": "audit2", "until": "9999-12-31"}}, 422, "until"),
    ("PUT", "/api/me/substitute", {"json": {"username": "audit2", "until": "9999-12-31T23:59:59"}}, 422, "until"),
    ("GET", "/api/cases", {"query_string": {"created_to": "9999-12-31"}}, 400, "created_to"),
    ("GET", "/api/cadres/c1/ledger", {"query_string": {"kind": "integrity", "from": "0001-01-01"}}, 400, "from"),
], ids=["scan-on", "rotation-on", "substitute-until", "substitute-moment", "cases-created-to", "ledger-from"])
def test_dates_no_one_can_mean_are_refused_before_any_arithmetic_overflows(api, cadre, method, url, kwargs,
                                                                            status, field):
    """9999-12-31 plus a day overflowed into a 500: a date given to a scan, a filter, a deadline or an
    absence lies between 1949-10-01 and 2999-12-31 (a form's date, within ten years from today)."""
    error = assert_error(api.call(method, url, "audit" if "substitute" in url else "admin", **kwargs), status,
                         fields={field})
    assert "1949-10-01" in error["fields"][field] and "2999-12-31" in error["fields"][field]
