"""A form sent twice (a double click, a resend, two tabs of one page) is acted on once."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from sqlalchemy import func, select

from service.db.models import Cadre, Case
from tests.api.support import ADMONISHMENT, start_admonishment
from tests.web.test_web_shell import login

START = {"process": ADMONISHMENT, "cadre_id": "c1", "trigger": "inspection", "summary": "巡察发现作风问题"}


def _start_form(client) -> dict[str, str]:
    """The start form's hidden fields as the page gives them (its CSRF token and submission id)."""
    page = client.get(f"/cases/new?process={ADMONISHMENT}").get_data(as_text=True)
    return _hidden(page)


def _hidden(html: str) -> dict[str, str]:
    """A form's CSRF token and submission id, as a browser sends them back."""
    return dict(re.findall(r'type="hidden" name="(csrf_token|_submission)" value="([^"]*)"', html))


def _cases(services) -> int:
    with services.db.unit_of_work(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Case)))


def test_a_start_form_sent_twice_starts_one_case(client, api, services):
    """The second post of one start form starts nothing and says so; a new form (a new page) starts again."""
    api.create_cadre("c1")
    login(client, "discipline")
    form = {**START, **_start_form(client)}
    first = client.post("/cases/new", data=form)
    assert first.status_code == 302 and re.fullmatch(r"/cases/\d+", first.headers["Location"])
    again = client.post("/cases/new", data=form)
    assert again.status_code == 303 and again.headers["Location"] == "/cases/new"
    assert _cases(services) == 1
    assert "此表单已提交过，未重复发起案件" in client.get("/cases/new").get_data(as_text=True)
    assert client.post("/cases/new", data={**START, **_start_form(client)}).status_code == 302
    assert _cases(services) == 2


def test_a_refused_start_can_be_corrected_and_sent_again(client, api, services):
    """A start refused (422) comes back with a new submission id, and the refused page's id stays unused (sent
    again after Back): either, sent corrected, starts the case, once."""
    api.create_cadre("c1")
    login(client, "discipline")
    first = _start_form(client)
    refused = client.post("/cases/new", data={**START, **first, "summary": ""})
    assert refused.status_code == 422
    assert client.post("/cases/new", data={**START, **first}).status_code == 302
    page = refused.get_data(as_text=True)
    form = _hidden(page)
    assert client.post("/cases/new", data={**START, **form}).status_code == 302
    assert client.post("/cases/new", data={**START, **first}).status_code == 303
    assert _cases(services) == 2


def _report_form(page: str) -> dict[str, str]:
    """The report form's hidden fields (its CSRF token and submission id) on a cadre page."""
    form = page[page.index('id="add-report"') - 3000:page.index('id="add-report"')]
    return _hidden(form)


def test_a_late_report_sent_twice_is_recorded_once_and_opens_one_admonishment(client, api, services):
    """A report's log keeps every entry for good and a late report opens an admonishment: the second post of one
    report form records nothing, opens nothing, and says so."""
    api.create_cadre("c1")
    login(client, "org_dept")
    today = services.today()
    report = {"kind": "property", "event_on": (today - timedelta(days=60)).isoformat(),
              "reported_on": today.isoformat(), "summary": "购买商铺一间",
              **_report_form(client.get("/cadres/c1").get_data(as_text=True))}
    assert client.post("/cadres/c1/reports", data=report).status_code == 302
    again = client.post("/cadres/c1/reports", data=report)
    assert again.status_code == 303 and again.headers["Location"] == "/cadres/c1"
    assert len(api.get("/api/cadres/c1").json["personal_reports"]) == 1 and _cases(services) == 1
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "此表单已提交过，未重复登记报告" in page
    assert client.post("/cadres/c1/reports", data={**report, **_report_form(page)}).status_code == 302
    assert len(api.get("/api/cadres/c1").json["personal_reports"]) == 2


def test_a_cadre_form_sent_twice_registers_one_cadre(client, services):
    """Without an id typed the register makes one up, so a second post of one form was a second cadre."""
    login(client, "org_dept")
    page = client.get("/cadres/new").get_data(as_text=True)
    form = {"name": "张三", "unit": "县发改局", "post": "局长", "post_level": "leading",
            "post_started_on": "2020-01-01", **_hidden(page)}
    first = client.post("/cadres/new", data=form)
    assert first.status_code == 302 and first.headers["Location"].startswith("/cadres/")
    again = client.post("/cadres/new", data=form)
    assert again.status_code == 303 and again.headers["Location"] == "/cadres"
    assert _cadres(services) == 1
    assert "此表单已提交过，未重复登记干部" in client.get("/cadres").get_data(as_text=True)


def test_a_refused_cadre_or_report_form_can_be_corrected_and_sent_again(client, api, services):
    """A registration refused for a taken id (409), or a report refused for a missing field (422), recorded
    nothing: the same form, corrected, is acted on once."""
    api.create_cadre("c1")
    login(client, "org_dept")
    form = {"id": "c1", "name": "张三", "unit": "县发改局", "post": "局长", "post_level": "leading",
            "post_started_on": "2020-01-01", **_hidden(client.get("/cadres/new").get_data(as_text=True))}
    assert client.post("/cadres/new", data=form).status_code == 409
    assert client.post("/cadres/new", data={**form, "id": "c2"}).status_code == 302
    assert client.post("/cadres/new", data={**form, "id": "c3"}).status_code == 303
    assert _cadres(services) == 2
    today = services.today().isoformat()
    report = {"kind": "property", "event_on": today, "reported_on": today, "summary": "",
              **_report_form(client.get("/cadres/c1").get_data(as_text=True))}
    assert client.post("/cadres/c1/reports", data=report).status_code == 422
    assert client.post("/cadres/c1/reports", data={**report, "summary": "购买商铺一间"}).status_code == 302
    assert client.post("/cadres/c1/reports", data={**report, "summary": "再报一次"}).status_code == 303
    assert len(api.get("/api/cadres/c1").json["personal_reports"]) == 1


def _cadres(services) -> int:
    with services.db.unit_of_work(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(Cadre)))


def _case_forms(client, case_id: int) -> dict[str, dict[str, str]]:
    """The case page's comment and upload forms' hidden fields, by the field each form sends."""
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    forms = re.findall(r'(<form method="post" action="/cases/\d+/(comments|attachments)".*?</form>)', page, re.S)
    return {name: _hidden(body) for body, name in forms}


def test_a_comment_or_a_file_sent_twice_is_added_to_the_case_once(client, api):
    """Nothing on a case's record is ever removed: a repeat of one comment or upload form adds nothing, says so."""
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    login(client, "discipline")
    forms = _case_forms(client, case_id)
    comment = {**forms["comments"], "text": "建议约谈"}
    for _ in range(2):  # back to the case page each time
        assert client.post(f"/cases/{case_id}/comments", data=comment).status_code == 302
        upload = {**forms["attachments"], "file": (io.BytesIO("谈话记录".encode()), "记录.txt")}
        assert client.post(f"/cases/{case_id}/attachments", data=upload,
                           content_type="multipart/form-data").status_code == 302
    assert len(api.get(f"/api/cases/{case_id}/comments").json) == 1
    assert len(api.get(f"/api/cases/{case_id}/attachments").json) == 1
    assert "此表单已提交过，未重复保存" in client.get(f"/cases/{case_id}").get_data(as_text=True)
    refused = {**_case_forms(client, case_id)["comments"], "text": ""}
    assert client.post(f"/cases/{case_id}/comments", data=refused).status_code == 302  # refused, flashed
    assert client.post(f"/cases/{case_id}/comments", data={**refused, "text": "补充意见"}).status_code == 302
    assert len(api.get(f"/api/cases/{case_id}/comments").json) == 2
    assert forms["comments"]["_submission"] != forms["attachments"]["_submission"]  # each form its own


def test_my_own_task_form_sent_twice_is_not_someone_elses_completion(client, api):
    """A double click on 提交办理 completes the task once; the repeat is told the task is done by this user (not
    'someone else just completed it', which had the approver believe their decision was lost). Another user's
    late completion still gets that 409 page."""
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    task_id = api.get(f"/api/cases/{case_id}").json["open_tasks"][0]["id"]
    login(client, "discipline")
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    form = {"csrf_token": _hidden(page)["csrf_token"], "form": "talk", "reason": "情况属实"}
    assert client.post(f"/tasks/{task_id}/complete", data=form).status_code == 302
    again = client.post(f"/tasks/{task_id}/complete", data=form)
    assert again.status_code == 303 and again.headers["Location"] == "/inbox"
    shown = client.get("/inbox").get_data(as_text=True)
    assert "此任务您已办理，本次提交未重复保存" in shown and "已由他人办理" not in shown
    login(client, "admin")
    late = client.post(f"/tasks/{task_id}/complete", data={**form, "csrf_token": _hidden(
        client.get(f"/tasks/{task_id}").get_data(as_text=True))["csrf_token"]})
    assert late.status_code == 409 and "此任务刚刚已由他人办理" in late.get_data(as_text=True)
