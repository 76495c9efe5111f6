"""Issue 11, item 3 — roles and who may start each process are data an admin manages over the API, and a
designer-built process with a new role runs end to end without touching settings or code."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from service.db.models import ProcessStarter, Role
from service.usecases import bulk, roles, search, users
from service.usecases.context import Actor
from service.usecases.policy import note_participant
from tests.api.support import ADMONISHMENT, VETTING, assert_error, sanction
from tests.conformance.bpmn import chain, definitions, end, start, terminate, user
from tests.conftest import PASSWORD

NOT_ADMINS = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head",
              "designer", "norole"]
INSPECTION = {"code": "inspection", "name_zh": "巡察组", "name_en": "Inspection team", "head_role": "discipline_head"}


def create_role(api, **body):
    return api.post("/api/roles", json={**INSPECTION, **body})


def set_starters(api, key, codes, as_="admin"):
    return api.put(f"/api/processes/{key}/starters", as_=as_, json={"roles": codes})


def add_user(api, username, codes):
    response = api.post("/api/users", json={"username": username, "password": PASSWORD, "roles": codes})
    assert response.status_code == 201, response.json
    return response.json


class TestRoles:
    def test_the_shipped_roles_are_listed_with_names_heads_and_what_they_start(self, api):
        """Seeded from settings at init: the nine roles, Chinese and English names, head roles, START_ROLES."""
        listed = {r["code"]: r for r in api.get("/api/roles").json}
        assert set(listed) == {"org_dept", "org_head", "committee", "discipline", "discipline_head", "audit",
                               "audit_head", "designer", "admin"}
        assert listed["org_dept"] == {"code": "org_dept", "name_zh": "组织部干部科",
                                      "name_en": "Organisation dept. (cadres)", "head_role": "org_head",
                                      "starts": [ADMONISHMENT, "annual_assessment", "departure_audit",
                                                 "integrity_report", VETTING, "rotation_review"]}
        assert listed["discipline"]["head_role"] == "discipline_head" and ADMONISHMENT in listed["discipline"]["starts"]
        assert listed["committee"]["head_role"] is None and listed["committee"]["starts"] == []

    def test_admin_creates_a_role_and_users_may_then_hold_it(self, api):
        """POST /api/roles → 201; the role is listed, and a user can be given it (not before: 422)."""
        assert_error(api.post("/api/users", json={"username": "inspector1", "password": PASSWORD,
                                                  "roles": ["inspection"]}), 422, fields={"roles"})
        response = create_role(api)
        assert response.status_code == 201, response.json
        assert response.json == {**INSPECTION, "starts": []}
        assert "inspection" in {r["code"] for r in api.get("/api/roles").json}
        assert add_user(api, "inspector1", ["inspection"])["roles"] == ["inspection"]

    def test_admin_renames_a_role_and_changes_or_clears_its_head(self, api):
        assert create_role(api).status_code == 201
        renamed = api.put("/api/roles/inspection", json={"name_zh": "县委巡察组", "head_role": None})
        assert renamed.status_code == 200, renamed.json
        assert (renamed.json["name_zh"], renamed.json["name_en"], renamed.json["head_role"]) == (
            "县委巡察组", "Inspection team", None)
        again = api.put("/api/roles/inspection", json={"head_role": "committee"}).json
        assert (again["name_zh"], again["head_role"]) == ("县委巡察组", "committee")
        assert api.put("/api/roles/committee", json={"name_en": "Standing Committee"}).json["name_zh"] == "县委常委会"

    @pytest.mark.parametrize("body, field", [
        ({"code": "Inspection"}, "code"), ({"code": "1team"}, "code"), ({"code": "x" * 41}, "code"),
        ({"code": 7}, "code"), ({"name_zh": ""}, "name_zh"), ({"name_zh": "名" * 101}, "name_zh"),
        ({"name_en": " "}, "name_en"), ({"head_role": "nobody"}, "head_role"),
        ({"head_role": "inspection"}, "head_role"), ({"head_role": 3}, "head_role"),
    ])
    def test_bad_role_data_is_a_422_naming_the_field_and_nothing_is_created(self, api, body, field):
        assert_error(create_role(api, **body), 422, fields={field})
        assert "inspection" not in {r["code"] for r in api.get("/api/roles").json}

    def test_a_taken_code_is_a_409_and_unknown_fields_or_roles_are_refused(self, api):
        assert_error(create_role(api, code="audit"), 409)
        assert_error(create_role(api, colour="red"), 422, fields={"colour"})
        assert_error(api.put("/api/roles/nobody", json={"name_zh": "无"}), 404)
        assert_error(api.put("/api/roles/audit", json={"code": "audit2"}), 422, fields={"code"})
        assert_error(api.put("/api/roles/audit", json={"head_role": "audit"}), 422, fields={"head_role"})
        assert_error(api.post("/api/roles", data=b"{not json", content_type="application/json"), 400)

    def test_only_admin_manages_roles(self, api):
        """Every other role gets 403, a caller without a token 401; nothing is created."""
        for who in NOT_ADMINS:
            assert_error(api.get("/api/roles", as_=who), 403)
            assert_error(api.post("/api/roles", as_=who, json=INSPECTION), 403)
            assert_error(api.put("/api/roles/audit", as_=who, json={"name_zh": "改"}), 403)
            assert_error(api.get(f"/api/processes/{ADMONISHMENT}/starters", as_=who), 403)
            assert_error(set_starters(api, ADMONISHMENT, ["audit"], as_=who), 403)
        assert_error(api.call("GET", "/api/roles"), 401)
        assert "inspection" not in {r["code"] for r in api.get("/api/roles").json}


class TestStarters:
    def test_starters_come_seeded_from_settings(self, api):
        assert api.get(f"/api/processes/{ADMONISHMENT}/starters").json == {"process": ADMONISHMENT,
                                                                            "roles": ["discipline", "org_dept"]}

    def test_admin_changes_who_may_start_a_process(self, api, cadre):
        """committee may not start an admonishment; once a starter it may; with no starters only admin may."""
        data = {"process": ADMONISHMENT, "cadre_id": "c1",
                "data": {"trigger": "complaint", "summary": "群众反映工作作风问题"}}
        assert_error(api.post("/api/cases", as_="committee", json=data), 403)
        changed = set_starters(api, ADMONISHMENT, ["discipline", "committee", "discipline"])
        assert changed.status_code == 200 and changed.json == {"process": ADMONISHMENT,
                                                               "roles": ["committee", "discipline"]}
        assert api.post("/api/cases", as_="committee", json=data).status_code == 201
        assert set_starters(api, ADMONISHMENT, []).json["roles"] == []
        assert_error(api.post("/api/cases", as_="discipline", json=data), 403)
        assert api.post("/api/cases", as_="admin", json=data).status_code == 201
        assert api.get(f"/api/processes/{ADMONISHMENT}/starters").json["roles"] == []

    def test_a_starter_finds_any_cadre_but_reads_only_the_files_of_its_cases(self, api, services, cadre):
        """Starting lets a role choose whom its case is about (the picker's id, name, unit, post), not read every
        cadre's file (sanctions, audits, ledgers), nor the case it hands over: audit owns no lane of an
        admonishment, so it reads neither the case nor c1's file, until it holds one of its tasks."""
        api.create_cadre("c2")
        auditor = Actor("audit", frozenset({"audit"}))
        assert search.find_cadres(services, auditor, "c") == []
        assert set_starters(api, ADMONISHMENT, ["discipline", "org_dept", "audit"]).status_code == 200
        assert {"c1", "c2"} <= {found["id"] for found in search.find_cadres(services, auditor, "c")}
        assert_error(api.get("/api/cadres/c1", as_="audit"), 404)
        assert_error(api.get("/api/cadres/c1/ledger?kind=integrity", as_="audit"), 404)
        case_id = api.start(ADMONISHMENT, "c1", as_="audit", trigger="complaint", summary="反映")["id"]
        assert_error(api.get(f"/api/cases/{case_id}", as_="audit"), 404)
        assert_error(api.get("/api/cadres/c1", as_="audit"), 404)
        with services.db.unit_of_work() as session:  # as if it were assigned one of the case's tasks
            note_participant(session, case_id, "audit")
        assert api.get("/api/cadres/c1", as_="audit").status_code == 200
        assert_error(api.get("/api/cadres/c2", as_="audit"), 404)
        assert "c2" not in {found["id"] for found in api.get("/api/cadres", as_="audit").json}

    def test_a_starters_bulk_filter_sees_of_each_cadre_only_what_the_picker_shows(self, api, services, cadre):
        """A bulk start's filter runs over every cadre: for a starter that reads no cadre's file it sees what the
        picker shows (id, name, unit, post), so it cannot sort cadres by the file's fields, such as the promotion ban
        a sanction set (a job over it failed or settled exactly for the banned cadres; its check told of the first
        cadre). A reader of every file (org_dept) still filters on them."""
        sanction(api, "public_apology", cadre_id="c1")  # c1 is under a promotion ban now; c2 is not
        api.create_cadre("c2")
        assert set_starters(api, ADMONISHMENT, ["discipline", "org_dept", "audit"]).status_code == 200
        body = {"process": ADMONISHMENT, "data": {"trigger": "complaint", "summary": "反映"}, "dedupe": "open"}
        for probe in ("1/0 if promotion_ban_until else False", "id == 'c1' and promotion_ban_until is not None",
                      "post_started_on > '2000-01-01' and False", "post_level == 'leading' and False"):
            assert_error(api.post("/api/bulk-starts", as_="audit", json={**body, "filter": probe}), 422,
                         fields={"filter"})
        job = api.post("/api/bulk-starts", as_="audit", json={**body, "filter": "id == 'c2' and bool(name)"})
        assert job.status_code == 202, job.json
        bulk.run_jobs(services)
        done = api.get(f"/api/bulk-starts/{job.json['id']}", as_="audit").json
        assert (done["status"], done["settled"], done["failed"]) == ("done", 1, 0)
        banned = api.post("/api/bulk-starts", as_="org_dept", json={**body, "filter": "promotion_ban_until != None"})
        assert banned.status_code == 202, banned.json
        bulk.run_jobs(services)
        done = api.get(f"/api/bulk-starts/{banned.json['id']}", as_="org_dept").json
        assert (done["status"], done["settled"], done["failed"]) == ("done", 1, 0)
        opened = api.get("/api/cases", query_string={"process": ADMONISHMENT}).json["items"]
        assert sorted(case["cadre_id"] for case in opened) == ["c1", "c2"]

    def test_bad_starters_are_refused_and_change_nothing(self, api):
        for body, status in (({"roles": ["nobody"]}, 422), ({"roles": "discipline"}, 422), ({"roles": [1]}, 422),
                             ({"who": []}, 422)):
            assert_error(api.put(f"/api/processes/{ADMONISHMENT}/starters", json=body), status)
        assert_error(set_starters(api, "no_such_process", ["audit"]), 404)
        assert_error(api.get("/api/processes/no_such_process/starters"), 404)
        assert api.get(f"/api/processes/{ADMONISHMENT}/starters").json["roles"] == ["discipline", "org_dept"]

    def test_an_install_whose_tables_are_empty_keeps_the_settings(self, api, services, cadre):
        """An upgraded database, before init fills the tables: roles and starters are those of settings."""
        with services.db.unit_of_work() as session:
            session.execute(delete(ProcessStarter))
            session.execute(delete(Role))
        assert roles.catalog(services).starters[ADMONISHMENT] == ("discipline", "org_dept")
        assert api.start(ADMONISHMENT, "c1", as_="discipline", trigger="complaint", summary="反映")["id"]
        assert_error(api.post("/api/cases", as_="audit", json={"process": ADMONISHMENT, "cadre_id": "c1",
                                                               "data": {}}), 403)
        assert set_starters(api, ADMONISHMENT, ["discipline", "audit"]).status_code == 200  # fills them first
        assert len(api.get("/api/roles").json) == 9


# The "done when": a designer-built process with a subprocess, a call activity, a plain end event and
# a new role, validated, deployed, started by a holder of the new role, finished, and migrated to version 2.

KEY = "inspection_visit"
CHILD = "inspection_check"
TEAM = "inspection"


def child_process() -> bytes:
    body = start() + user("verify") + terminate("confirmed") + chain("start", "verify", "end_confirmed")
    return definitions(CHILD, body, {TEAM: ["verify"]})


def visit_process(extra_step: bool = False) -> bytes:
    """start → embedded subprocess `fieldwork` (task `survey`) → call activity `check` (calls CHILD) →
    `report` [→ `follow_up` in version 2] → plain end event; every task in the new role's lane."""
    sub = ('<bpmn:subProcess id="fieldwork" name="实地巡察">' + start("s0") + user("survey") + end("s1")
           + chain("s0", "survey", "s1") + "</bpmn:subProcess>")
    call = f'<bpmn:callActivity id="check" name="核实" calledElement="{CHILD}"/>'
    tail = ["report", "follow_up"] if extra_step else ["report"]
    body = (start() + sub + call + "".join(user(t) for t in tail) + end()
            + chain("start", "fieldwork", "check", *tail, "end"))
    return definitions(KEY, body, {TEAM: ["survey", *tail]})


def xml(api, url, body, as_="designer"):
    return api.post(url, as_=as_, data=body, content_type="application/xml")


def work(api, case_id, element_id, user="inspector1"):
    """The inspector finds the task in its inbox and completes it."""
    found = [t for t in api.inbox(user) if t["case_id"] == case_id and t["element_id"] == element_id]
    assert found, api.inbox(user)
    done = api.post(f"/api/tasks/{found[0]['id']}/complete", as_=user, json={"data": {"ok": True}})
    assert done.status_code == 200, done.json
    return done.json


def test_a_designer_built_process_with_a_new_role_runs_end_to_end_and_migrates(api, services, cadre):
    # The new role does not exist yet: validate refuses the lane, naming it and listing the roles.
    assert xml(api, f"/api/processes/{CHILD}/versions", child_process()).status_code == 422
    refused = xml(api, f"/api/processes/{KEY}/validate", visit_process())
    assert refused.status_code == 422
    lane_problems = [e for e in refused.json["error"]["errors"] if e.get("element_id") == f"lane_{TEAM}"]
    assert lane_problems and "org_dept" in lane_problems[0]["message"] and TEAM in lane_problems[0]["message"]

    # The admin adds the role and a user holding it, over the API.
    assert create_role(api).status_code == 201
    add_user(api, "inspector1", [TEAM])
    api.tokens["inspector1"] = api.post("/api/auth/token", as_=None, json={"username": "inspector1",
                                                                          "password": PASSWORD}).json["token"]

    # The designer validates and deploys the called process, then the visit.
    assert xml(api, f"/api/processes/{CHILD}/versions", child_process()).status_code == 201
    valid = xml(api, f"/api/processes/{KEY}/validate", visit_process())
    assert valid.status_code == 200 and (valid.json["valid"], valid.json["change"]) == (True, "new")
    assert xml(api, f"/api/processes/{KEY}/versions", visit_process()).status_code == 201

    # Only once the admin makes the role a starter may its holder start the process (and find the cadres; it
    # reads the file of the one its case is about).
    body = {"process": KEY, "cadre_id": "c1", "data": {}}
    inspector = Actor("inspector1", frozenset({TEAM}))
    assert_error(api.post("/api/cases", as_="inspector1", json=body), 403)
    assert search.find_cadres(services, inspector, "c1") == []
    assert set_starters(api, KEY, [TEAM]).status_code == 200
    assert [found["id"] for found in search.find_cadres(services, inspector, "c1")] == ["c1"]
    assert_error(api.get("/api/cadres/c1", as_="inspector1"), 404)
    first = api.post("/api/cases", as_="inspector1", json=body)
    assert first.status_code == 201, first.json
    assert api.get("/api/cadres/c1", as_="inspector1").status_code == 200
    case_id = first.json["id"]

    # Worked through by the holder of the new role: subprocess task, the child case, the last task, plain end.
    assert [t["role"] for t in first.json["open_tasks"]] == [TEAM]
    surveyed = work(api, case_id, "survey")
    parent = api.case(case_id)
    assert parent["open_tasks"] == [] and len(parent["child_case_ids"]) == 1
    child_id = parent["child_case_ids"][0]
    assert surveyed["child_case_ids"] == [child_id]  # the completion's answer names the child its step opened
    assert api.get(f"/api/cases/{child_id}", as_="inspector1").json["parent_case_id"] == case_id
    work(api, child_id, "verify")
    assert api.case(case_id)["data"]["check_outcome"] == "confirmed"
    finished = work(api, case_id, "report")
    assert (finished["status"], finished["outcome"]) == ("completed", None)
    assert finished["child_case_ids"] == [child_id]  # and, on a later step, the child the case already had
    assert api.get("/api/cadres/c1", as_="inspector1").status_code == 200

    # A second case is left open at the report; version 2 adds a follow-up; the open case migrates to it.
    second = api.post("/api/cases", as_="inspector1", json=body).json["id"]
    work(api, second, "survey")
    work(api, api.case(second)["child_case_ids"][0], "verify")
    assert xml(api, f"/api/processes/{KEY}/versions", visit_process(extra_step=True)).status_code == 201
    report = api.post(f"/api/processes/{KEY}/migrate", as_="admin").json
    assert (report["moved"], report["refused"]) == (1, 0), report
    assert api.case(second)["process_version"] == 2
    work(api, second, "report")
    done = work(api, second, "follow_up")
    assert (done["status"], done["outcome"], done["process_version"]) == ("completed", None, 2)


@pytest.mark.parametrize(("method", "url", "body"), [
    ("POST", "/api/roles", INSPECTION),
    ("PUT", "/api/roles/audit", {"name_zh": "审计"}),
    ("PUT", f"/api/processes/{ADMONISHMENT}/starters", {"roles": ["audit"]}),
])
def test_an_admins_change_in_flight_when_it_lost_the_role_is_refused(api, monkeypatch, method, url, body):
    """multi2's request read its token as an admin just before another admin left it with audit alone: it writes
    nothing (403), so a demoted admin cannot, say, let its new role start discipline cases."""
    add_user(api, "multi2", ["admin", "audit"])
    api.tokens["multi2"] = api.client.post("/api/auth/token", json={"username": "multi2", "password": PASSWORD}
                                           ).json["token"]
    services, before = api.client.application.extensions["cadreflow"], api.get("/api/roles").json
    starters = api.get(f"/api/processes/{ADMONISHMENT}/starters").json

    def demoted_first(use_case):
        def run(services_, actor, *args, **kwargs):
            users.update_user(services, Actor("admin", frozenset({"admin"})), "multi2", roles=["audit"])
            return use_case(services_, actor, *args, **kwargs)
        return run

    for name in ("create_role", "update_role", "set_starters"):
        monkeypatch.setattr(roles, name, demoted_first(getattr(roles, name)))
    assert_error(api.call(method, url, "multi2", json=body), 403)
    monkeypatch.undo()
    assert api.get("/api/roles").json == before
    assert api.get(f"/api/processes/{ADMONISHMENT}/starters").json == starters
