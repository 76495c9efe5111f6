"""Personal-matters reports 家庭成员和财产变动报告 (docs/processes.md §9): records on the cadre, the late-report
rule opening an admonishment, and the reports beside vetting's org_head_review."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.api.support import ADMONISHMENT, assert_error, finish_opinions, start_vetting


def today(api) -> date:
    return api.client.application.extensions["cadreflow"].today()


def report(api, cadre_id="c1", as_="org_dept", **fields):
    day = today(api)
    body = {"kind": "property", "event_on": (day - timedelta(days=10)).isoformat(),
            "reported_on": day.isoformat(), "summary": "购买住房一套", **fields}
    return api.post(f"/api/cadres/{cadre_id}/reports", as_=as_, json=body)


def test_a_timely_report_is_recorded_on_the_cadre(api, cadre):
    """Reported within personal_report (P30D): 201, listed on the cadre, not late, no case."""
    response = report(api)
    assert response.status_code == 201, response.json
    created = response.json
    assert (created["kind"], created["late"], created["found_unreported"], created["case_id"]) == (
        "property", False, False, None)
    assert api.cadre()["personal_reports"] == [created]
    assert [c["process"] for c in api.cadre()["cases"]] == []


@pytest.mark.parametrize(("days", "late"), [(30, False), (31, True), (0, False), (400, True)])
def test_late_means_more_than_the_deadline_after_the_event(api, cadre, days, late):
    """late = reported_on − event_on > P30D; exactly 30 days is in time."""
    day = today(api)
    created = report(api, event_on=(day - timedelta(days=days)).isoformat(), reported_on=day.isoformat()).json
    assert created["late"] is late
    assert (created["case_id"] is not None) is late


def test_a_late_report_opens_a_linked_admonishment(api, cadre):
    """A late report opens an admonishment for the cadre, trigger report_violation, linked from the report."""
    day = today(api)
    created = report(api, kind="family", event_on=(day - timedelta(days=90)).isoformat(),
                     summary="子女出国定居").json
    case = api.case(created["case_id"])
    assert (case["process"], case["cadre_id"], case["status"]) == (ADMONISHMENT, "c1", "open")
    assert case["data"]["trigger"] == "report_violation" and "子女出国定居" in case["data"]["summary"]
    assert [t["element_id"] for t in case["open_tasks"]] == ["intake_review"]
    assert api.cadre()["personal_reports"][0]["case_id"] == created["case_id"]


def test_a_late_report_at_its_length_limit_still_opens_its_admonishment(api, cadre):
    """A summary of 2,000 characters (the report's limit) is shortened in the admonishment's summary, which
    takes 2,000 too, and its dates are kept; the report keeps the whole text."""
    day = today(api)
    text = "购买住房一套，面积一百二十平方米，" * 118
    text = text[:2000]
    response = report(api, event_on=(day - timedelta(days=90)).isoformat(), summary=text)
    assert response.status_code == 201, response.json
    summary = api.case(response.json["case_id"])["data"]["summary"]
    assert len(summary) == 2000 and summary.startswith("逾期报告") and "…（变动日期" in summary, summary[-60:]
    assert summary.endswith(f"报告/发现日期 {day.isoformat()}）")
    assert api.cadre()["personal_reports"][0]["summary"] == text


def test_a_change_found_unreported_opens_an_admonishment(api, cadre):
    """found_unreported: true opens an admonishment even when found soon after the change."""
    created = report(api, kind="other", found_unreported=True, summary="配偶经商未报告").json
    assert created["found_unreported"] is True and created["late"] is False
    assert api.case(created["case_id"])["data"]["trigger"] == "report_violation"


def test_only_org_dept_records_reports(api, cadre):
    """discipline, org_head → 403; a user with no role → 403; an unknown cadre → 404."""
    for role in ("discipline", "org_head", "audit", "norole"):
        assert_error(report(api, as_=role), 403)
    assert_error(report(api, cadre_id="ghost"), 404)
    assert api.cadre()["personal_reports"] == []


@pytest.mark.parametrize(("fields", "bad"), [
    ({"kind": "car"}, "kind"), ({"event_on": "2026-13-01"}, "event_on"), ({"summary": ""}, "summary"),
    ({"reported_on": None}, "reported_on"), ({"found_unreported": "yes"}, "found_unreported"),
    ({"extra": 1}, "extra"),
])
def test_bad_reports_are_422(api, cadre, fields, bad):
    """Each bad field → 422 naming it; nothing is recorded."""
    error = assert_error(report(api, **fields), 422)
    assert bad in error["fields"]
    assert api.cadre()["personal_reports"] == []


def test_dates_must_make_sense(api, cadre):
    """A report before its change, or in the future → 422 on reported_on; nothing recorded, no case."""
    day = today(api)
    error = assert_error(report(api, event_on=day.isoformat(), reported_on=(day - timedelta(days=1)).isoformat()), 422)
    assert set(error["fields"]) == {"reported_on"}
    error = assert_error(report(api, reported_on=(day + timedelta(days=1)).isoformat()), 422)
    assert set(error["fields"]) == {"reported_on"}
    assert api.cadre()["personal_reports"] == [] and api.cadre()["cases"] == []


def test_org_head_review_shows_the_reports_of_the_last_year(api, cadre):
    """Vetting's org_head_review carries context.personal_reports: the last year's reports only;
    the opinion tasks carry none."""
    day = today(api)
    recent = report(api, event_on=(day - timedelta(days=20)).isoformat()).json
    report(api, event_on=(day - timedelta(days=500)).isoformat(), reported_on=(day - timedelta(days=480)).isoformat())
    case = start_vetting(api)
    assert all("personal_reports" not in t["context"] for t in case["open_tasks"])
    case = finish_opinions(api, case["id"])
    task = api.open_task(case["id"], "org_head_review")
    assert task["context"]["personal_reports"] == [recent]
    shown = api.get(f"/api/tasks/{task['id']}", as_="org_head").json
    assert shown["context"]["personal_reports"] == [recent]


def test_org_head_review_links_no_admonishment_its_readers_may_not_read(api, cadre):
    """A late report beside org_head_review keeps its record but not the id of the admonishment it opened, which
    the vetting case's readers (org_head, org_dept, committee) may not read: the same 404-or-nothing as the cadre."""
    day = today(api)
    late = report(api, event_on=(day - timedelta(days=90)).isoformat()).json
    assert late["case_id"] is not None
    assert_error(api.get(f"/api/cases/{late['case_id']}", as_="org_head"), 404)
    case = finish_opinions(api, start_vetting(api)["id"])
    task = api.open_task(case["id"], "org_head_review")
    for role in ("org_head", "org_dept", "committee"):
        shown = api.get(f"/api/tasks/{task['id']}", as_=role).json["context"]["personal_reports"]
        assert shown == [{**late, "case_id": None}], role
        listed = next(t for t in api.get(f"/api/cases/{case['id']}", as_=role).json["open_tasks"]
                      if t["id"] == task["id"])
        assert listed["context"]["personal_reports"] == [{**late, "case_id": None}], role
    shown = api.get(f"/api/tasks/{task['id']}", as_="discipline").json["context"]["personal_reports"]
    assert shown == [late]


# Corrections 个人有关事项报告更正 (PATCH /api/cadres/<id>/reports/<report_id>): org_dept restates the report with a
# reason; `late` is recomputed, the cadre's report log takes a `correct` entry.

MISSING = object()  # a field left out of the body


def correct(api, created, cadre_id="c1", as_="org_dept", base=None, **changes):
    body = {name: created[name] for name in ("kind", "event_on", "reported_on", "summary", "found_unreported")}
    body = {**body, "reason": "录入有误，据原件更正", **changes}
    body = {name: value for name, value in body.items() if value is not MISSING}
    query = "" if base is None else f"?base_revision={base}"
    return api.patch(f"/api/cadres/{cadre_id}/reports/{created['id']}{query}", as_=as_, json=body)


def admonishments(api, cadre_id="c1"):
    return [c for c in api.cadre(cadre_id)["cases"] if c["process"] == ADMONISHMENT]


def test_a_correction_restates_the_report_and_lists_who_corrected_it_when_and_why(api, cadre):
    created = report(api).json
    assert (created["corrected"], created["corrections"], created["revision"]) == (False, [], 0)
    response = correct(api, created, kind="family", summary="配偶购买住房一套", reason="  类别和内容录入错误  ")
    assert response.status_code == 200, response.json
    corrected = response.json
    assert (corrected["id"], corrected["kind"], corrected["summary"], corrected["corrected"]) == (
        created["id"], "family", "配偶购买住房一套", True)
    assert (corrected["admonishment"], corrected["notice"]) == (None, None)
    [entry] = corrected["corrections"]
    assert (entry["by"], entry["reason"]) == ("org_dept", "类别和内容录入错误") and entry["at"]
    assert corrected["revision"] == 1
    listed = api.cadre()["personal_reports"]
    assert listed == [{k: v for k, v in corrected.items() if k not in ("admonishment", "notice")}]
    for role in ("discipline", "org_head"):  # whoever reads the cadre's reports reads their corrections
        assert api.get("/api/cadres/c1", as_=role).json["personal_reports"][0]["corrections"] == [entry]


def test_a_correction_recomputes_late(api, cadre):
    """Moving event_on 90 days back makes a timely report late (and opens its admonishment)."""
    day = today(api)
    created = report(api).json
    corrected = correct(api, created, event_on=(day - timedelta(days=90)).isoformat()).json
    assert corrected["late"] is True and corrected["admonishment"] == "opened" and corrected["case_id"]
    case = api.case(corrected["case_id"])
    assert (case["process"], case["data"]["trigger"]) == (ADMONISHMENT, "report_violation")


def test_becoming_found_unreported_opens_one_admonishment_however_often_corrected(api, cadre):
    """The correction that makes the report a violation opens its admonishment, named to org_dept as a new
    report's is; a later correction of it opens no second one."""
    created = report(api).json
    first = correct(api, created, found_unreported=True).json
    assert first["admonishment"] == "opened" and first["case_id"] is not None
    assert [c["id"] for c in admonishments(api)] == [first["case_id"]]
    second = correct(api, first, summary="配偶经商未报告", reason="补充情况").json
    assert second["admonishment"] is None and second["case_id"] is None  # org_dept may not read it, as on the cadre
    assert api.cadre()["personal_reports"][0]["case_id"] == first["case_id"]
    assert len(second["corrections"]) == 2
    assert [c["id"] for c in admonishments(api)] == [first["case_id"]]


def test_clearing_a_violation_keeps_its_admonishment_open_and_says_so(api, cadre):
    """A report corrected to on time and reported keeps its admonishment: the inspectors review it; its history
    gets nothing from the correction."""
    day = today(api)
    created = report(api, event_on=(day - timedelta(days=90)).isoformat(), found_unreported=True).json
    history = api.history(created["case_id"])
    corrected = correct(api, created, event_on=(day - timedelta(days=5)).isoformat(), found_unreported=False)
    assert corrected.status_code == 200, corrected.json
    cleared = corrected.json
    assert (cleared["late"], cleared["found_unreported"], cleared["admonishment"]) == (False, False, "stays_open")
    assert "不会自动撤销" in cleared["notice"] and "stays open" in cleared["notice"]
    assert api.case(created["case_id"])["status"] == "open" and api.history(created["case_id"]) == history
    assert cleared["case_id"] is None  # org_dept may not read the admonishment: no id, as on the cadre
    assert api.cadre()["personal_reports"][0]["case_id"] == created["case_id"]  # still linked (admin reads it)
    again = correct(api, cleared, summary="购买住房一套（已出售）", reason="补充").json
    assert again["admonishment"] == "stays_open" and again["notice"]  # said while the case runs


def test_clearing_a_violation_whose_admonishment_ended_says_nothing_of_it(api, cadre):
    created = report(api, found_unreported=True).json
    assert api.post(f"/api/cases/{created['case_id']}/cancel", json={"reason": "重复立案"}).status_code == 200
    cleared = correct(api, created, found_unreported=False).json
    assert (cleared["admonishment"], cleared["notice"]) == (None, None)


def test_only_org_dept_corrects_and_another_cadres_report_is_unknown(api, cadre):
    api.create_cadre("c2")
    created = report(api).json
    for role in ("discipline", "org_head", "audit", "norole"):  # admin may, as everywhere
        assert_error(correct(api, created, as_=role, summary="改"), 403)
    assert_error(correct(api, created, cadre_id="c2", summary="改"), 404, "not_found")
    assert_error(correct(api, {**created, "id": created["id"] + 1000}, summary="改"), 404, "not_found")
    assert_error(correct(api, created, cadre_id="ghost", summary="改"), 404, "not_found")
    assert api.cadre()["personal_reports"] == [created]


@pytest.mark.parametrize("reason", [None, "", "   ", "理" * 501, 5])
def test_a_correction_needs_a_reason_of_at_most_500_characters(api, cadre, reason):
    """No reason, an empty or blank one, 501 characters or no text → 422 on reason; nothing changes."""
    created = report(api).json
    response = correct(api, created, summary="改", reason=reason) if reason is not None else \
        correct(api, created, summary="改", reason=MISSING)
    error = assert_error(response, 422, "invalid")
    assert set(error["fields"]) == {"reason"}, error
    assert api.cadre()["personal_reports"] == [created]


def test_a_reason_of_500_characters_after_stripping_is_taken(api, cadre):
    created = report(api).json
    response = correct(api, created, summary="改", reason=f" {'理' * 500}\n")
    assert response.status_code == 200, response.json
    assert response.json["corrections"][0]["reason"] == "理" * 500


def test_a_correction_that_changes_nothing_is_refused(api, cadre):
    created = report(api).json
    error = assert_error(correct(api, created), 422, "invalid")
    assert error["message"].startswith("无更正内容")
    assert api.cadre()["personal_reports"] == [created]


@pytest.mark.parametrize(("changes", "bad"), [
    ({"kind": "car"}, "kind"), ({"event_on": "2026-13-01"}, "event_on"), ({"summary": ""}, "summary"),
    ({"found_unreported": MISSING}, "found_unreported"), ({"found_unreported": "yes"}, "found_unreported"),
    ({"extra": 1}, "extra"), ({"summary": None}, "summary"),
])
def test_bad_corrections_are_422(api, cadre, changes, bad):
    created = report(api).json
    error = assert_error(correct(api, created, **changes), 422)
    assert bad in error["fields"]
    assert api.cadre()["personal_reports"] == [created]


def test_a_corrections_dates_are_checked_as_a_reports(api, cadre):
    day = today(api)
    created = report(api).json
    error = assert_error(correct(api, created, reported_on=(day + timedelta(days=1)).isoformat()), 422)
    assert set(error["fields"]) == {"reported_on"}
    error = assert_error(correct(api, created, event_on=day.isoformat(),
                                 reported_on=(day - timedelta(days=1)).isoformat()), 422)
    assert set(error["fields"]) == {"reported_on"}


# Two clerks correcting one report at once: a correction naming the revision it was made from (`base_revision`,
# the report's `revision`: how many corrections it has had) is refused when another came first.

def test_a_correction_from_the_current_revision_is_taken(api, cadre):
    created = report(api).json
    first = correct(api, created, base=0, summary="购买住房两套")
    assert first.status_code == 200 and first.json["revision"] == 1, first.json
    second = correct(api, first.json, base=1, kind="family", reason="类别有误")
    assert second.status_code == 200 and second.json["revision"] == 2, second.json
    assert api.cadre()["personal_reports"][0]["revision"] == 2


def test_a_correction_from_an_earlier_revision_is_a_409_storing_nothing(api, cadre):
    """The later of two clerks, both starting from revision 0, is refused: no log entry, no admonishment, the first
    clerk's correction stands."""
    created = report(api).json
    assert correct(api, created, base=0, summary="购买住房两套").status_code == 200
    refused = assert_error(correct(api, created, base=0, found_unreported=True, reason="核查发现"), 409, "conflict")
    assert "已被他人更正（第 1 次）" in refused["message"] and "revision 1" in refused["message"]
    [listed] = api.cadre()["personal_reports"]
    assert (listed["summary"], listed["found_unreported"], listed["revision"]) == ("购买住房两套", False, 1)
    assert [c["reason"] for c in listed["corrections"]] == ["录入有误，据原件更正"] and admonishments(api) == []


def test_a_correction_without_a_base_is_taken_as_before(api, cadre):
    created = report(api).json
    correct(api, created, summary="购买住房两套")
    assert correct(api, created, kind="family").json["revision"] == 2


@pytest.mark.parametrize("value", ["x", "-1", "1.5", "1e3", str(2**31)])
def test_a_malformed_base_revision_is_a_400(api, cadre, value):
    created = report(api).json
    assert "base_revision" in assert_error(correct(api, created, base=value, summary="改"), 400)["fields"]
    assert api.cadre()["personal_reports"] == [created]


@pytest.mark.parametrize("body", [b"{", b"[]", b'"x"', b"null"])
def test_a_correction_that_is_no_json_object_is_400(api, cadre, body):
    created = report(api).json
    response = api.patch(f"/api/cadres/c1/reports/{created['id']}", as_="org_dept", data=body,
                         content_type="application/json")
    assert_error(response, 400)


def test_a_report_id_past_the_columns_range_is_404(api, cadre):
    assert_error(api.patch("/api/cadres/c1/reports/2147483648", as_="org_dept", json={}), 404)
