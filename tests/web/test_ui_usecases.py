"""The read models and admin use cases the UI adds: inbox, tracker, CSV, dashboard, designs, users."""

from __future__ import annotations

import pytest

from service.errors import Conflict, DeploymentRejected, Forbidden, Invalid, Unauthorized
from service.usecases import designs, inbox, logins, processes, reports, tasks, tracker, users
from tests.conftest import actor


@pytest.fixture
def vetting(api):
    api.create_cadre("c1")
    api.create_cadre("c2", name="李四")
    first = api.start("pre_appointment_vetting", "c1", as_="org_dept", proposed_post="局长",
                      selection_method="competitive")
    api.start("accountability", "c2", as_="discipline", source="hotline", category="inaction", allegation="举报")
    return first


def test_inbox_names_cadres_and_filters_by_cadre_and_sorts(services, vetting):
    org = actor("org_dept")
    every = inbox.inbox(services, org, {})
    assert every["total"] == 4 and {t["cadre_name"] for t in every["items"]} == {"张三"}
    assert inbox.inbox(services, org, {"cadre_id": "c2"})["total"] == 0
    by_process = inbox.inbox(services, org, {"sort": "process"})["items"]
    assert [t["process_name"] for t in by_process] == ["任前监督"] * 4
    assert inbox.inbox(services, org, {"due": "overdue"})["total"] == 0


def test_task_page_tells_what_the_actor_may_do(services, vetting):
    task = inbox.inbox(services, actor("org_dept"), {})["items"][0]
    assert inbox.task_page(services, actor("org_dept"), task["id"])["may"] == {
        "claim": True, "unclaim": False, "complete": True, "assign": False, "extend": False, "return": False}
    assert inbox.task_page(services, actor("committee"), task["id"])["may"]["complete"] is False
    head = inbox.task_page(services, actor("org_head"), task["id"])["may"]  # head of the org_dept lane
    assert (head["assign"], head["extend"], head["complete"]) == (True, False, False)  # no deadline to extend


def test_tracker_marks_names_and_exports_csv_without_formulas(services, api, vetting):
    api.create_cadre("c3", name="=HYPERLINK()")
    api.start("accountability", "c3", as_="discipline", source="web", category="other", allegation="x")
    page = tracker.track_cases(services, actor("discipline"), {"page": 1, "per_page": 2})
    assert page["total"] == 3 and page["pages"] == 2 and page["items"][0]["cadre_name"] == "=HYPERLINK()"
    csv_text = tracker.cases_csv(services, actor("discipline"), {})
    assert csv_text.startswith("\ufeff案件编号,流程代码") and len(csv_text.strip().splitlines()) == 4
    assert "'=HYPERLINK()" in csv_text
    beyond = tracker.track_cases(services, actor("discipline"), {"page": 9, "per_page": 2})
    assert (beyond["items"], beyond["total"], beyond["page"], beyond["pages"]) == ([], 3, 9, 2)  # past the end: empty


def test_case_file_has_diagram_history_and_links(services, vetting):
    file = tracker.case_file(services, actor("discipline"), vetting["id"])
    assert file["diagram"]["active"] and file["history"][0]["action"] == "start"
    assert file["links"] == {"parent": None, "children": []} and file["cadre"]["name"] == "张三"


def test_dashboard_counts_open_cases_and_months(services, vetting):
    board = reports.dashboard(services, actor("discipline"))
    assert {r["process"]: r["count"] for r in board["open_by_process"]} == {
        "pre_appointment_vetting": 1, "accountability": 1}
    assert len(board["per_month"]) == 12 and board["per_month"][-1]["opened"] == 2


def test_deploy_edited_keeps_the_dmn_tables_and_reports_problems(services):
    designer = actor("designer")
    xml = processes.get_bpmn(services, designer, "pre_appointment_vetting", None)
    version, created = designs.deploy_edited(services, designer, "pre_appointment_vetting",
                                             xml.replace("资格审查", "资格审核").encode(), {})
    assert created and version["version"] == 2
    with pytest.raises(DeploymentRejected) as rejected:
        designs.deploy_edited(services, designer, "pre_appointment_vetting", b"<bpmn", {})
    assert rejected.value.errors
    catalog = {p["key"]: p for p in designs.process_catalog(services, designer)}
    assert [v["version"] for v in catalog["pre_appointment_vetting"]["versions"]] == [2, 1]


def test_admin_manages_users_and_nobody_else_may(services):
    """An admin creates users (policy applies), changes roles and deactivates; nobody else may."""
    admin = actor("admin")
    users.add_user(services, admin, "newbie", "long-enough", ["audit"])
    with pytest.raises(Conflict):
        users.add_user(services, admin, "newbie", "long-enough", ["audit"])
    with pytest.raises(Invalid):
        users.add_user(services, admin, "other", "too-short", ["audit"])
    assert users.update_user(services, admin, "newbie", roles=["audit", "audit_head"])["roles"] == [
        "audit", "audit_head"]
    assert users.update_user(services, admin, "newbie", active=False)["active"] is False
    with pytest.raises(Unauthorized):
        logins.verify_password(services, "newbie", "long-enough")
    with pytest.raises(Conflict):
        users.update_user(services, admin, "admin", active=False)
    with pytest.raises(Forbidden):
        users.list_users(services, actor("discipline"))
    assert "audit" in users.usernames_with_role(services, "audit")


def test_inbox_pages_filters_and_sorts_in_sql(services, api):
    """Three vetting cases give org_dept twelve tasks: pages of five cover each once, in the API's order."""
    for cadre_id, name in (("c1", "张三"), ("c2", "李四"), ("c3", "王五")):
        api.create_cadre(cadre_id, name=name)
        api.start("pre_appointment_vetting", cadre_id, as_="org_dept", proposed_post="局长",
                  selection_method="competitive")
    org = actor("org_dept")
    pages = [inbox.inbox(services, org, {"page": n, "per_page": 5}) for n in (1, 2, 3)]
    assert [p["total"] for p in pages] == [12] * 3 and pages[0]["pages"] == 3
    assert [len(p["items"]) for p in pages] == [5, 5, 2]
    ids = [t["id"] for p in pages for t in p["items"]]
    assert ids == [t["id"] for t in tasks.list_tasks(services, org, {})]
    assert inbox.inbox(services, org, {"page": 9, "per_page": 5})["page"] == 3  # past the end: the last page
    assert "cadres" not in pages[0] and pages[0]["cadre_chosen"] == ""  # cadres are picked by typing, not listed
    only = inbox.inbox(services, org, {"cadre_id": "c2", "per_page": 5})
    assert only["total"] == 4 and only["all_total"] == 12 and {t["cadre_name"] for t in only["items"]} == {"李四"}
    assert only["cadre_chosen"] == "李四 · 县发改局"
    unknown = inbox.inbox(services, org, {"cadre_id": "nobody"})
    assert unknown["total"] == 0 and unknown["all_total"] == 12 and unknown["cadre_chosen"] == ""
    by_cadre = inbox.inbox(services, org, {"sort": "cadre", "per_page": 50})["items"]
    runs = [c for n, c in enumerate(t["cadre_id"] for t in by_cadre) if n == 0 or by_cadre[n - 1]["cadre_id"] != c]
    assert sorted(runs) == ["c1", "c2", "c3"]  # each cadre's tasks together (the order is the database's collation)
    tasks.claim_task(services, org, ids[0])
    mine = inbox.inbox(services, org, {"mine": True})
    assert [t["id"] for t in mine["items"]] == [ids[0]] and mine["total"] == 1
    assert inbox.inbox(services, org, {"due": "none"})["total"] + inbox.inbox(
        services, org, {"due": "soon"})["total"] <= 12
