"""Limits on every input (issue 13): lengths from the forms, plausible dates told in Chinese, nothing typed lost."""

from __future__ import annotations

import re
from datetime import date

import pytest

from service.usecases.forms import TEXT_LIMIT, date_range, fit_text
from tests.api.support import sanction, start_admonishment, start_vetting
from tests.engine.bpmn_builder import KEY, form_schema, script_process
from tests.web.test_web_shell import csrf_token, login

CADRE = {"id": "c9", "name": "王五", "unit": "县财政局", "post": "科长", "post_level": "middle",
         "post_started_on": "2020-01-01"}


def test_usernames_are_letters_digits_and_dot_dash_underscore_up_to_32(api):
    for name in ["a" * 33, "张三", "bad name", "x/y", ".."]:
        response = api.post("/api/users", as_="admin", json={"username": name, "password": "a-long-passw0rd",
                                                             "roles": ["audit"]})
        assert response.status_code == 422 and "username" in response.json["error"]["fields"], name
    ok = api.post("/api/users", as_="admin", json={"username": "a" * 32, "password": "a-long-passw0rd",
                                                   "roles": ["audit"]})
    assert ok.status_code == 201


def test_a_too_long_proposed_post_is_refused_and_the_input_says_its_limit(api, client):
    api.create_cadre("c1")
    response = api.post("/api/cases", as_="org_dept", json={"process": "pre_appointment_vetting", "cadre_id": "c1",
                                                           "data": {"proposed_post": "局" * 600,
                                                                    "selection_method": "competitive"}})
    assert response.status_code == 422
    assert response.json["error"]["fields"]["proposed_post"].startswith("最多 200 个字符")
    login(client, "org_dept")
    html = client.get("/cases/new?process=pre_appointment_vetting").get_data(as_text=True)
    assert re.search(r'name="proposed_post"[^>]*maxlength="200"', html)


def test_a_text_field_without_maxlength_gets_the_default_limit(api):
    api.create_cadre("c1")
    case_id = start_admonishment(api)["id"]
    case = api.get(f"/api/cases/{case_id}").json
    task = case["open_tasks"][0]
    field = next(n for n, p in task["form"]["properties"].items() if p.get("type") == "string"
                 and "enum" not in p and "format" not in p)
    response = api.post(f"/api/tasks/{task['id']}/complete", as_=task["role"],
                        json={"data": {field: "x" * (TEXT_LIMIT + 1)}})
    assert response.status_code == 422
    assert response.json["error"]["fields"][field] == f"最多 {TEXT_LIMIT} 个字符 (at most {TEXT_LIMIT} characters)"


@pytest.mark.parametrize(("value", "message"), [
    ("2099-01-01", "日期应在"), ("1900-05-05", "日期应在"), ("2026-13-01", "日期格式应为 年-月-日"),
    ("01/02/2026", "日期格式应为 年-月-日")])
def test_implausible_or_malformed_dates_are_refused_in_chinese(api, value, message):
    body = {**CADRE, "post_started_on": value}
    response = api.post("/api/cadres", as_="org_dept", json=body)
    assert response.status_code == 422
    assert response.json["error"]["fields"]["post_started_on"].startswith(message)
    assert "格式应为 date" not in response.json["error"]["fields"]["post_started_on"]


def test_date_inputs_offer_only_plausible_dates(client):
    login(client, "org_dept")
    html = client.get("/cadres/new").get_data(as_text=True)
    first, last = date_range()
    assert f'min="{first.isoformat()}"' in html and f'max="{last.isoformat()}"' in html
    assert last.year == date.today().year + 10


def test_a_duplicate_cadre_id_keeps_the_typed_form(client, api):
    api.create_cadre("c9")
    login(client, "org_dept")
    token = csrf_token(client, "/cadres/new")
    response = client.post("/cadres/new", data={**CADRE, "name": "赵六", "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert 'value="赵六"' in html and 'value="县财政局"' in html and "干部编号已存在" in html
    assert 'id="f-name"' in html  # the form, not an error page


def test_starting_without_a_process_says_so(client):
    login(client, "org_dept")
    token = csrf_token(client, "/cases/new")
    response = client.post("/cases/new", data={"csrf_token": token, "cadre_id": "c1"})
    assert response.status_code == 422 and "请选择要发起的流程" in response.get_data(as_text=True)
    response = client.get("/cases/new?process=nothing")
    assert response.status_code == 422 and "没有此流程" in response.get_data(as_text=True)


def test_a_page_answering_a_post_turns_into_a_get_entry_and_cancel_asks_first(client, api):
    api.create_cadre("c1")
    case_id = start_vetting(api)["id"]
    login(client, "org_dept")
    response = client.post("/cadres/new", data={"csrf_token": csrf_token(client, "/cadres/new")})
    assert response.status_code == 422 and 'data-posted="1"' in response.get_data(as_text=True)
    assert 'data-posted' not in client.get("/cadres/new").get_data(as_text=True)
    login(client, "admin")
    html = client.get(f"/cases/{case_id}").get_data(as_text=True)
    assert re.search(r'action="/cases/\d+/cancel"[^>]*data-confirm="确定撤销此案件', html)


def test_a_too_long_cancel_reason_is_refused(api):
    api.create_cadre("c1")
    case_id = start_vetting(api)["id"]
    response = api.post(f"/api/cases/{case_id}/cancel", as_="admin", json={"reason": "x" * (TEXT_LIMIT + 1)})
    assert response.status_code == 422 and "reason" in response.json["error"]["fields"]


@pytest.mark.parametrize("team_lead", ["audit", "audit2"])
def test_no_link_an_audit_user_sees_leads_to_a_refusing_page(client, api, services, team_lead):
    """`audit` on its own task (or on a colleague's case it reads): every link it is shown opens."""
    from service.usecases import users
    from tests.api.support import departure_to_fieldwork
    from tests.conftest import PASSWORD
    users.create_user(services, "audit2", PASSWORD, ["audit"])
    api.create_cadre("c1")
    departure_to_fieldwork(api, team_lead=team_lead)
    login(client, "audit")
    seen, todo = set(), ["/inbox", "/cases"]
    while todo:
        url = todo.pop()
        if url in seen or url.endswith(".csv") or url.startswith("/static"):
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        if response.status_code == 200 and response.mimetype == "text/html":
            todo += re.findall(r'href="(/[^"#?]*)"', response.get_data(as_text=True))
    assert any(u.startswith("/cadres/") for u in seen) or team_lead == "audit2"


def test_a_start_rules_refusal_comes_back_on_the_start_form(client, api):
    """A second 述职述廉 for a cadre and year (a start rule's 409) shows the form again, the refusal beside the
    year, and keeps what was typed, rather than an error page."""
    api.create_cadre("c1", post_level="leading")
    first = api.post("/api/cases", as_="org_dept", json={"process": "integrity_report", "cadre_id": "c1",
                                                         "data": {"year": 2026}})
    assert first.status_code == 201, first.json
    login(client, "org_dept")
    token = csrf_token(client, "/cases/new?process=integrity_report")
    response = client.post("/cases/new", data={"csrf_token": token, "process": "integrity_report", "cadre_id": "c1",
                                               "year": "2026"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert re.search(r'name="year"[^>]*value="2026"', html) and "field-error" in html


def test_a_case_handed_to_other_lanes_is_announced_without_opening_it(client, api):
    """org_dept starts an admonishment for discipline: told it was started, and sent back to the start page,
    not to a case page it may not read (which would be a 404)."""
    api.create_cadre("c1")
    login(client, "org_dept")
    token = csrf_token(client, "/cases/new?process=admonishment")
    response = client.post("/cases/new", data={"csrf_token": token, "process": "admonishment", "cadre_id": "c1",
                                               "trigger": "inspection", "summary": "组织部门谈话发现"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/cases/new")
    assert "已交由承办部门办理" in client.get("/cases/new").get_data(as_text=True)


def test_a_field_of_a_list_of_types_shows_on_the_task_page_and_a_wrong_value_is_a_422(api, client):
    """`"type": ["integer", "null"]` deploys, its task page renders the number input, a text value is refused."""
    form = {"type": "object", "properties": {"votes": {"type": ["integer", "null"], "title": "票数"}}}
    bpmn = script_process("x = 1").replace(form_schema().encode(), form_schema(form).encode())
    deployed = api.post(f"/api/processes/{KEY}/versions", as_="designer", data=bpmn, content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    api.create_cadre("c1")
    case = api.post("/api/cases", json={"process": KEY, "cadre_id": "c1", "data": {}})
    assert case.status_code == 201, case.json
    task = api.get(f"/api/cases/{case.json['id']}").json["open_tasks"][0]
    login(client, "org_dept")
    page = client.get(f"/tasks/{task['id']}")
    assert page.status_code == 200 and re.search(r'name="votes"[^>]*type="number"|type="number"[^>]*name="votes"',
                                                 page.get_data(as_text=True))
    refused = api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"votes": "many"}})
    assert refused.status_code == 422 and refused.json["error"]["fields"]["votes"].startswith("类型应为整数或空值")


def test_fit_text_shortens_only_free_text_past_its_limit():
    schema = {"type": "object", "properties": {
        "free": {"type": "string"}, "short": {"type": "string", "maxLength": 5},
        "choice": {"type": "string", "enum": ["x" * 3000]}, "count": {"type": "integer"}}}
    data = {"free": "长" * (TEXT_LIMIT + 1), "short": "abcdef", "choice": "x" * 3000, "count": 10 ** 30,
            "unknown": "y" * 5000}
    assert fit_text(schema, data) == {"free": "长" * (TEXT_LIMIT - 1) + "…", "short": "abcd…", "choice": "x" * 3000,
                                      "count": 10 ** 30, "unknown": "y" * 5000}
    at_limit = {"free": "长" * TEXT_LIMIT, "short": "abcde"}
    assert fit_text(schema, at_limit) == at_limit


def test_a_completion_its_automatic_step_fails_on_keeps_what_was_typed(api, client):
    """A form rule fails to evaluate on the submitted data (an incident, nothing saved, the task still open): the
    form comes back with the input kept and the failure above it, not the page saying someone else handled it."""
    form = {"type": "object", "properties": {"votes": {"type": "integer", "title": "票数"},
                                             "note": {"type": "string", "title": "备注"}},
            "x-validate": [{"expr": "1 / votes > 0", "field": "votes", "message": "票数应为正 (votes > 0)"}]}
    bpmn = script_process("x = 1").replace(form_schema().encode(), form_schema(form).encode())
    deployed = api.post(f"/api/processes/{KEY}/versions", as_="designer", data=bpmn, content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    api.create_cadre("c1")
    case = api.post("/api/cases", json={"process": KEY, "cadre_id": "c1", "data": {}})
    task = api.get(f"/api/cases/{case.json['id']}").json["open_tasks"][0]
    login(client, "org_dept")
    token = csrf_token(client, f"/tasks/{task['id']}")
    response = client.post(f"/tasks/{task['id']}/complete", data={"csrf_token": token, "votes": "0",
                                                                  "note": "谈话记录已核对"})
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and "此任务刚刚已由他人办理" not in html
    assert "谈话记录已核对" in html and re.search(r'name="votes" value="0"', html) and "自动步骤执行失败" in html
    assert api.get(f"/api/cases/{case.json['id']}").json["open_tasks"][0]["id"] == task["id"]


def test_a_case_that_ended_at_once_for_a_starter_who_may_not_read_it_is_announced_without_its_outcome(client, api):
    """audit, made a starter of vetting (it owns no lane there), starts one for a banned cadre: the case ends at once.
    It is told the case was started and handed on, not the outcome it may not read, nor sent to its page."""
    api.create_cadre("c1")
    sanction(api, "removal")
    roles = ["org_dept", "audit"]
    assert api.put("/api/processes/pre_appointment_vetting/starters", json={"roles": roles}).status_code == 200
    login(client, "audit")
    response = client.post("/cases/new", data={"process": "pre_appointment_vetting", "cadre_id": "c1",
                                              "proposed_post": "局长", "selection_method": "competitive",
                                              "csrf_token": csrf_token(client, "/cases/new")})
    assert response.status_code == 302 and response.headers["Location"].endswith("/cases/new")
    page = client.get("/cases/new").get_data(as_text=True)
    assert "已交由承办部门办理" in page and "随即结束" not in page and "不符合" not in page
