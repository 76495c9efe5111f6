"""Personal-matters reports in the browser: the cadre page's section and form, and the reports beside
vetting's org_head_review task page."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.web.test_web_shell import csrf_token, login


def _cadre(api):
    api.create_cadre("c1")


def test_org_dept_records_a_report_on_the_cadre_page(client, api, services):
    """The section lists reports; org_dept sees the form, posts a late one and is told an admonishment began."""
    _cadre(api)
    login(client, "org_dept")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "家庭成员和财产变动报告" in page and 'id="add-report"' in page
    today = services.today()
    response = client.post("/cadres/c1/reports", data={
        "kind": "property", "event_on": (today - timedelta(days=60)).isoformat(), "reported_on": today.isoformat(),
        "summary": "购买商铺一间", "csrf_token": csrf_token(client, "/cadres/c1")})
    assert response.status_code == 302 and response.headers["Location"] == "/cadres/c1"
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "购买商铺一间" in page and "逾期报告" in page and "已启动诫勉" in page
    assert api.get("/api/cadres/c1").json["personal_reports"][0]["late"] is True


def test_a_bad_report_shows_the_errors_and_records_nothing(client, api, services):
    """A report dated before its change → 422 with the form open and the message; nothing recorded."""
    _cadre(api)
    login(client, "org_dept")
    today = services.today()
    response = client.post("/cadres/c1/reports", data={
        "kind": "family", "event_on": today.isoformat(), "reported_on": (today - timedelta(days=3)).isoformat(),
        "summary": "子女结婚", "csrf_token": csrf_token(client, "/cadres/c1")})
    assert response.status_code == 422
    assert "不能早于变动发生日期" in response.get_data(as_text=True)
    assert api.get("/api/cadres/c1").json["personal_reports"] == []


def test_other_roles_see_the_reports_but_no_form(client, api):
    """discipline reads the section but gets no form, and posting is 403."""
    _cadre(api)
    response = api.post("/api/cadres/c1/reports", as_="org_dept", json={
        "kind": "other", "event_on": "2020-01-01", "reported_on": "2020-01-10", "summary": "兼职情况"})
    assert response.status_code == 201
    login(client, "discipline")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "兼职情况" in page and 'id="add-report"' not in page
    response = client.post("/cadres/c1/reports", data={"kind": "other", "event_on": "2020-01-01",
                                                      "reported_on": "2020-01-02", "summary": "x",
                                                      "csrf_token": csrf_token(client, "/cadres/c1")})
    assert response.status_code == 403


def test_org_head_review_page_shows_the_last_years_reports(client, api, services):
    """The org_head_review task page has the reports section beside the form."""
    _cadre(api)
    today = services.today()
    api.post("/api/cadres/c1/reports", as_="org_dept", json={
        "kind": "family", "event_on": (today - timedelta(days=5)).isoformat(), "reported_on": today.isoformat(),
        "summary": "配偶调动工作"})
    case = api.start("pre_appointment_vetting", "c1", as_="org_dept", proposed_post="局长",
                     selection_method="competitive")
    for element in ("solicit_family_opinion", "solicit_colleague_opinion", "solicit_public_opinion"):
        api.complete(case["id"], element, opinion="positive")
    api.complete(case["id"], "democratic_evaluation", votes_approve=3, votes_basic=0, votes_disapprove=0)
    task = api.open_task(case["id"], "org_head_review")
    login(client, "org_head")
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "近一年个人有关事项报告" in page and "配偶调动工作" in page


def _report(api, **fields):
    response = api.post("/api/cadres/c1/reports", as_="org_dept", json={
        "kind": "property", "event_on": "2020-01-01", "reported_on": "2020-01-10", "summary": "购置住房一套", **fields})
    assert response.status_code == 201, response.json
    return response.json


def _correction(report, token, **changes):
    form = {"kind": report["kind"], "event_on": report["event_on"], "reported_on": report["reported_on"],
            "summary": report["summary"], "found_unreported": "true" if report["found_unreported"] else "false",
            "reason": "据原件更正", "csrf_token": token}
    return {**form, **changes}


def test_org_dept_corrects_a_report_on_the_cadre_page(client, api):
    """Each report has a 更正 form prefilled with its values; a correction making it found unreported opens an
    admonishment and says so; the page lists the correction with when, who and why."""
    _cadre(api)
    report = _report(api)
    login(client, "org_dept")
    page = client.get("/cadres/c1").get_data(as_text=True)
    action = f'action="/cadres/c1/reports/{report["id"]}/correct"'
    assert action in page and 'name="reason"' in page and ">购置住房一套</textarea>" in page
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct", data=_correction(
        report, csrf_token(client, "/cadres/c1"), found_unreported="true", reason="核查发现系应报未报"))
    assert response.status_code == 302 and response.headers["Location"] == "/cadres/c1#personal-reports"
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "已更正个人有关事项报告" in page and "已启动诫勉" in page
    assert "核查发现系应报未报" in page and "应报未报" in page
    shown = api.get("/api/cadres/c1").json["personal_reports"][0]
    assert shown["found_unreported"] is True and shown["case_id"] and shown["corrections"][0]["by"] == "org_dept"


def assert_ids_sound(page: str) -> None:
    """Every id once on the page, and every label's `for` and aria-describedby naming one of them."""
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    named = re.findall(r'\bfor="([^"]+)"', page) + [
        name for names in re.findall(r'aria-describedby="([^"]+)"', page) for name in names.split()]
    assert set(named) <= set(ids), set(named) - set(ids)


def test_each_reports_correction_form_is_its_schemas_with_its_own_ids(client, api):
    """The 更正 forms come from CORRECT_FORM (its kinds, its limits), each prefilled with its report's values and
    its ids prefixed by the report's id."""
    _cadre(api)
    first, second = _report(api), _report(api, kind="family", summary="子女结婚", found_unreported=True)
    login(client, "org_dept")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert_ids_sound(page)
    for report in (first, second):
        assert f'id="correct-{report["id"]}-f-reason"' in page and f'>{report["summary"]}</textarea>' in page
    assert 'maxlength="2000"' in page and 'maxlength="500"' in page and "其他事项" in page
    assert page.count('value="true" checked') == 1 and page.count('value="family" checked') == 1


def test_a_correction_clearing_a_violation_says_the_admonishment_stays_open(client, api):
    _cadre(api)
    report = _report(api, found_unreported=True)
    login(client, "org_dept")
    client.post(f"/cadres/c1/reports/{report['id']}/correct",
                data=_correction(report, csrf_token(client, "/cadres/c1"), found_unreported="false"))
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "不会自动撤销" in page and "请纪检人员审查" in page
    assert api.get(f"/api/cases/{report['case_id']}").json["status"] == "open"


def test_a_refused_correction_shows_its_form_again_with_what_was_typed(client, api):
    """No reason → 422: the page again, that report's form open with the summary as typed and the problem beside
    the reason; another report's form stays closed with its stored values; the report is unchanged."""
    _cadre(api)
    report, other = _report(api), _report(api, kind="family", summary="子女结婚")
    login(client, "org_dept")
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct",
                           data=_correction(report, csrf_token(client, "/cadres/c1"), summary="购置住房两套",
                                            event_on="2020-01-02", reason="  "))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert page.count('<details class="report-correct"') == 2
    assert page.count('<details class="report-correct" open>') == 1
    assert ">购置住房两套</textarea>" in page and 'value="2020-01-02"' in page and ">子女结婚</textarea>" in page
    reason_error = re.search(rf'<p class="field-error" id="correct-{report["id"]}-err-reason"[^>]*>([^<]*)</p>', page)
    assert reason_error and reason_error.group(1) == "必填"  # an empty input is left out: required
    assert f'aria-describedby="correct-{report["id"]}-err-reason"' in page and "已更正" not in page
    assert_ids_sound(page)
    assert api.get("/api/cadres/c1").json["personal_reports"] == [other, report]


def test_a_correction_that_changes_nothing_says_so_above_its_form(client, api):
    _cadre(api)
    report = _report(api)
    login(client, "org_dept")
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct",
                           data=_correction(report, csrf_token(client, "/cadres/c1"), reason="核对"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and '<details class="report-correct" open>' in page
    errors = page[page.index('<details class="report-correct" open>'):page.index(">核对</textarea>")]
    assert '<div class="form-errors" role="alert">' in errors and "所填内容与原报告相同" in errors
    assert api.get("/api/cadres/c1").json["personal_reports"] == [report]


def test_a_correction_in_english_shows_english_labels(client, api):
    _cadre(api)
    report = _report(api)
    login(client, "org_dept")
    token = csrf_token(client, "/cadres/c1")
    client.post("/lang", data={"lang": "en", "csrf_token": token})
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "Reason for the correction" in page and "Property change" in page
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct", data=_correction(report, token, reason=""))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<p class="field-error" id="correct-{report["id"]}-err-reason" role="alert">required</p>' in page


def test_an_unknown_reports_refused_correction_is_a_404_page(client, api):
    """Refused or not, a correction of a report not on the cadre's page is unknown, as when it is accepted."""
    _cadre(api)
    report = _report(api)
    login(client, "org_dept")
    response = client.post(f"/cadres/c1/reports/{report['id'] + 1000}/correct",
                           data=_correction(report, csrf_token(client, "/cadres/c1"), reason=""))
    assert response.status_code == 404


def _corrected_through_the_api(api, report, query="", **changes):
    body = {**_correction(report, None, **changes), "found_unreported": report["found_unreported"]}
    return api.patch(f"/api/cadres/c1/reports/{report['id']}{query}", as_="org_dept",
                     json={name: value for name, value in body.items() if name != "csrf_token"})


def test_a_correction_made_meanwhile_by_another_clerk_is_a_409_keeping_what_was_typed(client, api):
    """Two clerks open the page on revision 0; the first corrects the report. The second's correction is refused
    (409): the page shows the report as the first left it, the second's form open with what they typed and the
    refusal, based now on revision 1, so sending it again after reading is taken."""
    _cadre(api)
    report = _report(api)
    login(client, "org_dept")
    token = csrf_token(client, "/cadres/c1")
    assert '<input type="hidden" name="base_revision" value="0">' in client.get("/cadres/c1").get_data(as_text=True)
    assert _corrected_through_the_api(api, report, "?base_revision=0", summary="购置住房两套").status_code == 200
    mine = _correction(report, token, summary="购置商铺一间", reason="据房产证更正", base_revision="0")
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct", data=mine)
    page = response.get_data(as_text=True)
    assert response.status_code == 409 and '<details class="report-correct" open>' in page
    assert "该报告已被他人更正（第 1 次），请查看最新内容后再更正" in page and "personal report" not in page
    assert "未保存：该报告在您填写期间已被他人更正。" in page and "表单填写有误" not in page
    assert ">购置商铺一间</textarea>" in page and ">据房产证更正</textarea>" in page and "<td>购置住房两套" in page
    assert '<input type="hidden" name="base_revision" value="1">' in page
    assert_ids_sound(page)
    assert api.get("/api/cadres/c1").json["personal_reports"][0]["summary"] == "购置住房两套"
    again = client.post(f"/cadres/c1/reports/{report['id']}/correct", data={**mine, "base_revision": "1"})
    assert again.status_code == 302
    assert api.get("/api/cadres/c1").json["personal_reports"][0]["revision"] == 2


def test_a_refused_correction_keeps_the_revision_it_was_made_from(client, api):
    """A 422 keeps the form's base: a report corrected meanwhile still refuses the resubmitted form."""
    _cadre(api)
    report = _report(api)
    login(client, "org_dept")
    data = _correction(report, csrf_token(client, "/cadres/c1"), summary="改", reason="", base_revision="0")
    assert _corrected_through_the_api(api, report, summary="购置住房两套").status_code == 200
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct", data=data)
    assert response.status_code == 422
    assert '<input type="hidden" name="base_revision" value="0">' in response.get_data(as_text=True)
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct", data={**data, "reason": "补正"})
    assert response.status_code == 409


def test_other_roles_see_corrections_but_no_correction_form(client, api):
    """discipline reads the report and its correction, has no 更正 form, and posting one is 403."""
    _cadre(api)
    report = _report(api)
    corrected = api.patch(f"/api/cadres/c1/reports/{report['id']}", as_="org_dept", json={
        "kind": "other", "event_on": "2020-01-01", "reported_on": "2020-01-10", "summary": "购置住房一套",
        "found_unreported": False, "reason": "类别录入有误"})
    assert corrected.status_code == 200, corrected.json
    login(client, "discipline")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "类别录入有误" in page and "/correct" not in page
    response = client.post(f"/cadres/c1/reports/{report['id']}/correct",
                           data=_correction(report, csrf_token(client, "/cadres/c1"), summary="改"))
    assert response.status_code == 403
    assert api.get("/api/cadres/c1").json["personal_reports"][0]["summary"] == "购置住房一套"


def test_another_cadres_report_is_a_404_page(client, api):
    _cadre(api)
    api.create_cadre("c2")
    report = _report(api)
    login(client, "org_dept")
    response = client.post(f"/cadres/c2/reports/{report['id']}/correct",
                           data=_correction(report, csrf_token(client, "/cadres/c1"), summary="改"))
    assert response.status_code == 404
