"""信访举报 (public_report, docs/processes.md §7) over the staff API: triage into each branch, linked cases,
the reply, deadlines and escalations, and the reporter's contact kept from everyone but discipline."""

from __future__ import annotations

import pytest

from service.db.models import Case
from service.usecases.policy import note_participant
from tests.api.support import assert_error, fire_after_deadline

REPORT = {"channel": "hotline", "subject_name": "张三", "subject_unit": "县交通局", "category": "inaction",
          "content": "对群众反映的道路问题长期不予处理", "contact": "13800000000"}


def start_report(api, **data):
    response = api.post("/api/cases", as_="discipline",
                        json={"process": "public_report", "cadre_id": None, "data": {**REPORT, **data}})
    assert response.status_code == 201, response.json
    return response.json


def test_a_report_starts_without_a_cadre_and_waits_for_triage(api, cadre):
    case = start_report(api)
    assert case["cadre_id"] is None and case["status"] == "open"
    assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("triage_report", "discipline")]


@pytest.mark.parametrize(("decision", "extra", "child", "outcome"), [
    ("accountability", {"cadre_id": "c1"}, "accountability", "accountability"),
    ("admonishment", {"cadre_id": "c1"}, "admonishment", "admonishment"),
    ("transfer", {"transfer_to": "县信访局"}, None, "transferred"),
    ("not_accepted", {"reason": "不属于受理范围"}, None, "not_accepted"),
])
def test_triage_branches_and_the_reply(api, cadre, decision, extra, child, outcome):
    case_id = start_report(api)["id"]
    case = api.complete(case_id, "triage_report", decision=decision, **extra)
    assert [t["element_id"] for t in case["open_tasks"]] == ["reply_to_reporter"]
    if child:
        assert case["cadre_id"] == "c1" and len(case["child_case_ids"]) == 1
        linked = api.case(case["child_case_ids"][0])
        assert linked["process"] == child and linked["cadre_id"] == "c1" and linked["parent_case_id"] == case_id
        assert "contact" not in linked["data"] and "13800000000" not in str(linked["data"])
        if child == "accountability":
            assert (linked["data"]["source"], linked["data"]["category"]) == ("hotline", "inaction")
        else:
            assert linked["data"]["trigger"] == "complaint"
    else:
        assert case["child_case_ids"] == []
    case = api.complete(case_id, "reply_to_reporter", reply="已按规定处理。")
    assert (case["status"], case["outcome"]) == ("completed", outcome)


@pytest.mark.parametrize("decision", ["accountability", "admonishment"])
def test_a_long_report_is_passed_on_shortened_and_kept_whole(api, cadre, decision):
    """A report takes 20,000 characters, an allegation or a summary 2,000: the child gets 群众举报： and as
    much of the report as fits, ending in …; the report keeps all of it."""
    content = "反映某局长违规收受礼金。" * 1000
    case_id = start_report(api, content=content)["id"]
    case = api.complete(case_id, "triage_report", decision=decision, cadre_id="c1")
    child = api.case(case["child_case_ids"][0])["data"]
    passed = child["allegation" if decision == "accountability" else "summary"]
    assert len(passed) == 2000 and passed == "群众举报：" + content[:1994] + "…"
    assert api.case(case_id)["data"]["content"] == content


@pytest.mark.parametrize(("data", "field"), [
    ({"decision": "accountability"}, "cadre_id"),
    ({"decision": "admonishment", "cadre_id": "nobody"}, "cadre_id"),
    ({"decision": "transfer"}, "transfer_to"),
    ({"decision": "not_accepted"}, "reason"),
    ({"decision": "maybe"}, "decision"),
])
def test_triage_refuses_incomplete_decisions(api, cadre, data, field):
    case_id = start_report(api)["id"]
    task = api.open_task(case_id, "triage_report")
    assert_error(api.complete_raw(task["id"], "discipline", data), 422, fields={field})
    assert api.open_elements(case_id) == ["triage_report"]


def test_a_cadre_named_on_any_decision_links_the_report(api, cadre):
    case_id = start_report(api)["id"]
    case = api.complete(case_id, "triage_report", decision="not_accepted", reason="重复举报", cadre_id="c1")
    assert case["cadre_id"] == "c1"
    assert any(c["id"] == case_id for c in api.cadre("c1")["cases"])


def test_a_report_started_with_a_cadre_is_422(api, cadre):
    """A report has no cadre until triage links one (§7): staff cannot name one at the start."""
    response = api.post("/api/cases", as_="discipline",
                        json={"process": "public_report", "cadre_id": "c1", "data": REPORT})
    assert_error(response, 422, fields={"cadre_id"})
    assert api.get("/api/cases", query_string={"process": "public_report"}).json["total"] == 0


def test_triage_names_the_cadre_even_over_one_named_before(api, services, cadre):
    """A report opened with a cadre before the start refused one: triage's cadre wins, and the history says so."""
    api.create_cadre("c2")
    case_id = start_report(api)["id"]
    with services.db.unit_of_work() as session:
        session.get(Case, case_id).cadre_id = "c1"
    case = api.complete(case_id, "triage_report", decision="accountability", cadre_id="c2")
    assert case["cadre_id"] == "c2" and api.case(case["child_case_ids"][0])["cadre_id"] == "c2"
    linked = [e["detail"] for e in api.history(case_id) if e["action"] == "link_cadre"]
    assert linked == [{"cadre_id": "c2", "previous_cadre_id": "c1"}]


def test_overdue_triage_and_reply_escalate_to_discipline_head(fast_api, fast_services):
    fast_api.create_cadre("c1")
    case_id = start_report(fast_api)["id"]
    fire_after_deadline(fast_services)
    assert fast_api.open_elements(case_id) == ["supervise_triage_report", "triage_report"]
    assert fast_api.open_task(case_id, "triage_report")["overdue"] is True
    assert fast_api.open_task(case_id, "supervise_triage_report")["role"] == "discipline_head"
    fast_api.complete(case_id, "supervise_triage_report", instruction="限期分流")
    fast_api.complete(case_id, "triage_report", decision="transfer", transfer_to="县信访局")
    fire_after_deadline(fast_services)
    assert fast_api.open_elements(case_id) == ["reply_to_reporter", "supervise_reply_to_reporter"]
    case = fast_api.complete(case_id, "reply_to_reporter", reply="已转县信访局办理。")
    assert (case["status"], case["outcome"]) == ("completed", "transferred")


@pytest.mark.parametrize("role", ["org_dept", "org_head", "committee", "audit", "designer"])
def test_only_discipline_roles_read_a_report(api, cadre, role):
    case_id = start_report(api)["id"]
    assert_error(api.get(f"/api/cases/{case_id}", as_=role), 404)
    listed = api.get("/api/cases", as_=role, query_string={"process": "public_report"})
    assert listed.status_code in (200, 403)
    if listed.status_code == 200:
        assert listed.json["total"] == 0


def test_the_contact_is_kept_out_of_the_history_of_a_reader_who_may_not_see_it(api, services, cadre):
    """A reader of a report case without `reporter.contact` (here org_dept, made a participant) gets the start
    entry without the contact and told what was taken out; the discipline roles read the entry whole."""
    case_id = start_report(api)["id"]
    with services.db.unit_of_work() as session:
        note_participant(session, case_id, "org_dept")
    shown = api.get(f"/api/cases/{case_id}/history", as_="org_dept")
    assert shown.status_code == 200, shown.json
    start = next(e for e in shown.json if e["action"] == "start")
    assert start["detail"]["redacted"] == ["contact"] and "contact" not in start["detail"]["data"]
    assert "13800000000" not in shown.get_data(as_text=True)
    assert start["detail"]["data"]["subject_name"] == "张三"
    whole = next(e for e in api.history(case_id) if e["action"] == "start")
    assert whole["detail"]["data"]["contact"] == "13800000000" and "redacted" not in whole["detail"]


def test_search_cannot_tell_a_reader_the_contact_they_may_not_read(api, services, cadre):
    """Searching digit by digit would spell out the contact for a reader without `reporter.contact`: search does
    not index it (for anyone), while the rest of the report stays findable."""
    case_id = start_report(api)["id"]
    with services.db.unit_of_work() as session:
        note_participant(session, case_id, "org_dept")

    def found(query, as_):
        response = api.get("/api/cases", as_=as_, query_string={"q": query})
        assert response.status_code == 200, response.json
        return [c["id"] for c in response.json["items"]]
    assert found("13800000000", "org_dept") == [] and found("1380", "org_dept") == []
    assert found("13800000000", "discipline") == []
    assert found("道路问题", "org_dept") == [case_id]
    with services.db.unit_of_work(write=False) as session:
        assert "13800000000" not in session.get(Case, case_id).search_text
