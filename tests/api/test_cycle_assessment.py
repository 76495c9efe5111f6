"""ISSUE 6 — annual_assessment (PROCESSES §5): the one-third rule, grades, child cases, handling, vetting."""

from __future__ import annotations

import pytest

from tests.api.support import ADMONISHMENT, VETTING, assert_error, start_vetting

ASSESSMENT = "annual_assessment"
STEP2 = {"solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion", "democratic_evaluation"}


def start_assessment(api, cadre_id="c1", year=2025, as_="org_dept"):
    return api.start(ASSESSMENT, cadre_id, as_=as_, year=year)


def votes(incompetent, total, basic=0):
    """Votes with `incompetent` of `total` 不称职, `basic` 基本称职, the rest split 优秀/称职."""
    rest = total - incompetent - basic
    return {"votes_excellent": rest // 2, "votes_competent": rest - rest // 2, "votes_basic": basic,
            "votes_incompetent": incompetent, "performance_summary": "年度工作表现"}


def assess(api, case_id, incompetent=0, total=10, basic=0):
    return api.complete(case_id, "democratic_assessment", **votes(incompetent, total, basic))


def graded(api, grade, cadre_id="c1", year=2025):
    """Run an assessment to grade_review and give `grade`; the case after the step."""
    case_id = start_assessment(api, cadre_id, year)["id"]
    assess(api, case_id)
    return api.complete(case_id, "grade_review", grade=grade, comment="考核意见")


def incompetent_case(api, cadre_id="c1", year=2025):
    case_id = start_assessment(api, cadre_id, year)["id"]
    assess(api, case_id, incompetent=7, total=20)
    return case_id


# The one-third rule.

@pytest.mark.parametrize(("incompetent", "total", "is_incompetent"), [
    (7, 20, True), (1, 3, False), (2, 6, False), (3, 8, True), (0, 1, False), (1, 1, True), (4, 12, False),
    (5, 12, True),
])
def test_one_third_rule_boundaries(api, cadre, incompetent, total, is_incompetent):
    """More than one third 不称职 → incompetent, grade_review skipped; exactly one third or less → grade_review."""
    case_id = start_assessment(api)["id"]
    case = assess(api, case_id, incompetent, total)
    opened = [t["element_id"] for t in case["open_tasks"]]
    if is_incompetent:
        assert opened == ["organisational_handling"]
        assert case["data"]["grade"] == "incompetent"
        assert "grade_review" not in {e.get("task") for e in api.history(case_id)}
        assert "grade_review" not in api.get(f"/api/cases/{case_id}/diagram").json["completed"]
        assert [(a["year"], a["grade"], a["case_id"]) for a in api.cadre()["assessments"]] == [
            (2025, "incompetent", case_id)]
    else:
        assert opened == ["grade_review"]
        assert api.open_task(case_id, "grade_review")["role"] == "org_head"
        assert api.cadre()["assessments"] == []


# Grades by review.

@pytest.mark.parametrize("grade", ["excellent", "competent"])
def test_reviewed_grade_is_the_outcome_and_recorded(api, cadre, grade):
    """grade_review excellent/competent → that outcome, no child, recorded on the cadre with no measure."""
    case = graded(api, grade)
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", grade, [])
    assert api.cadre()["assessments"] == [{"year": 2025, "grade": grade, "case_id": case["id"], "measure": None}]


def test_basic_grade_opens_a_linked_admonishment(api, cadre):
    """basic → outcome basic and a child admonishment (trigger assessment_basic), linked both ways."""
    case = graded(api, "basic")
    assert (case["status"], case["outcome"]) == ("completed", "basic")
    assert case["child_case_ids"] == []  # org_head completed it and may not read the admonishment
    children = api.case(case["id"])["child_case_ids"]
    assert len(children) == 1
    child = api.case(children[0])
    assert (child["process"], child["cadre_id"], child["parent_case_id"]) == (ADMONISHMENT, "c1", case["id"])
    assert child["data"]["trigger"] == "assessment_basic" and child["data"]["summary"]
    assert child["status"] == "open" and [t["element_id"] for t in child["open_tasks"]] == ["intake_review"]
    assert api.cadre()["assessments"][0]["grade"] == "basic"


def test_grade_review_refuses_incompetent_and_bad_values(api, cadre):
    """grade_review offers only excellent/competent/basic: anything else → 422 on grade; org_dept → 403."""
    case_id = start_assessment(api)["id"]
    assess(api, case_id)
    task_id = api.open_task(case_id, "grade_review")["id"]
    for bad in ("incompetent", "great", None):
        assert_error(api.complete_raw(task_id, "org_head", {"grade": bad}), 422, fields={"grade"})
    assert_error(api.complete_raw(task_id, "org_dept", {"grade": "excellent"}), 403)
    assert api.open_elements(case_id) == ["grade_review"]


# Incompetent: organisational handling.

@pytest.mark.parametrize("measure", ["deputy_post", "non_leading_post", "training", "technical_post", "removal"])
def test_incompetent_goes_to_organisational_handling(api, measure):
    """incompetent → organisational_handling (org_head); the measure is recorded on the cadre; outcome incompetent.
    (A middle-level cadre: a leading cadre's measures wait for a departure audit, see test_audit_first.py.)"""
    api.create_cadre("c1", post_level="middle")
    case_id = incompetent_case(api)
    task = api.open_task(case_id, "organisational_handling")
    assert task["role"] == "org_head"
    case = api.complete(case_id, "organisational_handling", measure=measure, comment="组织处理")
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", "incompetent", [])
    assert api.cadre()["assessments"] == [{"year": 2025, "grade": "incompetent", "case_id": case_id,
                                           "measure": measure}]


def test_organisational_handling_form_and_role(api, cadre):
    """measure must be one of the enum (422 otherwise); only org_head acts (org_dept → 403, committee → 404)."""
    case_id = incompetent_case(api)
    task_id = api.open_task(case_id, "organisational_handling")["id"]
    for data in ({"measure": "demotion"}, {}, {"measure": 3}):
        assert_error(api.complete_raw(task_id, "org_head", data), 422, fields={"measure"})
    assert_error(api.complete_raw(task_id, "org_dept", {"measure": "training"}), 403)
    assert_error(api.complete_raw(task_id, "committee", {"measure": "training"}), 404)  # owns no lane of it
    assert api.cadre()["assessments"][0]["measure"] is None


def test_assessments_of_several_years_are_all_listed(api, cadre):
    """Each year's grade is kept on the cadre with its case."""
    first = graded(api, "excellent", year=2023)
    second = graded(api, "competent", year=2024)
    shown = sorted((a["year"], a["grade"], a["case_id"]) for a in api.cadre()["assessments"])
    assert shown == [(2023, "excellent", first["id"]), (2024, "competent", second["id"])]


# Vetting eligibility.

def test_vetting_is_ineligible_after_an_incompetent_grade(api, cadre):
    """A cadre whose latest grade is incompetent: vetting ends ineligible with reason incompetent_grade."""
    incompetent_case(api)
    case = start_vetting(api)
    assert (case["status"], case["outcome"]) == ("completed", "ineligible")
    assert case["data"]["ineligible_reason"] == "incompetent_grade"


def test_vetting_is_eligible_after_a_good_grade(api, cadre):
    """After an excellent grade, vetting goes on to the opinions (control for the test above)."""
    graded(api, "excellent")
    case = start_vetting(api)
    assert case["status"] == "open" and {t["element_id"] for t in case["open_tasks"]} == STEP2


def test_vetting_uses_the_latest_grade(api, cadre):
    """Incompetent in 2023 then competent in 2024: the latest grade counts, vetting goes on."""
    case_id = incompetent_case(api, year=2023)
    api.complete(case_id, "organisational_handling", measure="training")
    graded(api, "competent", year=2024)
    case = start_vetting(api)
    assert case["status"] == "open" and case["outcome"] is None


# The democratic assessment form and its learning context.

def test_democratic_assessment_task_carries_that_years_learning(api, cadre):
    """The task (GET /api/tasks/<id> and the case's open_tasks) has context.learning for the assessed year only."""
    for kind, day, amount in (("group_study_days", "2025-03-01", 12), ("elective_hours", "2025-05-01", 40),
                              ("online_hours", "2025-06-01", 59.5), ("online_hours", "2024-06-01", 100)):
        response = api.post("/api/cadres/c1/learning", as_="org_dept",
                            json={"kind": kind, "date": day, "amount": amount, "source": "党校"})
        assert response.status_code == 201, response.json
    case = start_assessment(api, year=2025)
    in_case = case["open_tasks"][0]["context"]["learning"]
    task = api.get(f"/api/tasks/{case['open_tasks'][0]['id']}")
    assert task.status_code == 200
    assert task.json["context"]["learning"] == in_case
    assert [entry["year"] for entry in in_case] == [2025]
    year = in_case[0]
    assert year["totals"] == {"group_study_days": 12, "elective_hours": 40, "online_hours": 59.5}
    assert year["compliant"] is False and year["shortfalls"] == {"online_hours": 0.5}
    assert api.case(case["id"])["open_tasks"][0]["context"]["learning"] == in_case


def test_learning_context_for_a_year_without_records(api, cadre):
    """A year with no study records shows zero totals, not compliant, every kind short."""
    case = start_assessment(api, year=2021)
    learning = case["open_tasks"][0]["context"]["learning"]
    assert [(y["year"], y["compliant"]) for y in learning] == [(2021, False)]
    assert learning[0]["shortfalls"] == {"group_study_days": 12, "elective_hours": 40, "online_hours": 60}


@pytest.mark.parametrize(("data", "bad"), [
    ({**votes(0, 0)}, {"votes_excellent", "votes_competent", "votes_basic", "votes_incompetent"}),
    ({**votes(0, 10), "votes_basic": -1}, {"votes_basic"}),
    ({**votes(0, 10), "votes_incompetent": "3"}, {"votes_incompetent"}),
    ({**votes(0, 10), "performance_summary": ""}, {"performance_summary"}),
    ({k: v for k, v in votes(0, 10).items() if k != "votes_competent"}, {"votes_competent"}),
])
def test_democratic_assessment_form_errors(api, cadre, data, bad):
    """Votes must be integers ≥ 0 summing to more than 0, with a summary: otherwise 422 on those fields."""
    case_id = start_assessment(api)["id"]
    task_id = api.open_task(case_id, "democratic_assessment")["id"]
    error = assert_error(api.complete_raw(task_id, "org_dept", data), 422)
    assert bad <= set(error["fields"]), error
    assert api.open_elements(case_id) == ["democratic_assessment"]


def test_who_may_start_and_start_data(api, cadre):
    """org_dept starts an assessment; discipline → 403; year missing or not an integer → 422; unknown cadre → 422."""
    assert start_assessment(api)["open_tasks"][0]["role"] == "org_dept"
    body = {"process": ASSESSMENT, "cadre_id": "c1", "data": {"year": 2025}}
    assert_error(api.post("/api/cases", as_="discipline", json=body), 403)
    for data in ({}, {"year": "2025"}, {"year": 2025.5}):
        assert_error(api.post("/api/cases", as_="org_dept", json={**body, "data": data}), 422, fields={"year"})
    assert_error(api.post("/api/cases", as_="org_dept", json={**body, "cadre_id": "ghost"}), 422)


def test_admonishment_child_of_basic_is_the_cadres_case(api):
    """The child admonishment of a basic grade shows in the cadre's cases next to the assessment."""
    api.create_cadre("c7", post_level="middle")
    case = graded(api, "basic", cadre_id="c7")
    cases = {(c["process"], c["status"]) for c in api.cadre("c7")["cases"]}
    assert cases == {(ASSESSMENT, "completed"), (ADMONISHMENT, "open")}
    assert api.get("/api/cases", query_string={"process": ADMONISHMENT, "cadre_id": "c7"}).json["total"] == 1
    assert api.case(case["id"])["child_case_ids"]
    assert VETTING not in {c["process"] for c in api.cadre("c7")["cases"]}
