"""Readable records (issue 13): labelled timelines, local times, Chinese CSV, what a case waits for, why it ended."""

from __future__ import annotations

import csv
import io
import re

from service.usecases import tracker
from tests.api.support import finish_opinions, sanction, start_vetting, vetting_to_notice
from tests.conformance.bpmn import chain, definitions, end, error, error_ref, start, user
from tests.conftest import actor
from tests.web.test_web_shell import csrf_token, login


def text_of(html: str) -> str:
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_timeline_shows_form_titles_and_option_labels_not_codes(client, api):
    api.create_cadre("c1")
    case_id = start_vetting(api)["id"]
    finish_opinions(api, case_id)
    login(client, "discipline")
    page = text_of(client.get(f"/cases/{case_id}").get_data(as_text=True))
    assert "opinion positive" not in page and "votes_approve" not in page
    timeline = page[page.index("办理记录"):]
    assert "意见 肯定 备注 无异议" in timeline and "同意票数 30 基本同意票数 2" in timeline
    assert "拟任职务" in timeline and "县发改局局长" in timeline  # the start's data, labelled too
    assert "selection_method" not in timeline


def test_times_are_local_beijing_time(client, api, services):
    api.create_cadre("c1")
    case = start_vetting(api)
    login(client, "discipline")
    page = client.get(f"/cases/{case['id']}").get_data(as_text=True)
    created = tracker.datetime.fromisoformat(case["created_at"])
    local = created.astimezone(tracker.reminders.local_zone(services)).strftime("%Y-%m-%d %H:%M")
    assert local in page
    csv_text = client.get("/cases.csv").get_data(as_text=True)
    assert local in csv_text


def test_csv_has_chinese_headers_labels_and_what_each_case_waits_for(client, api):
    api.create_cadre("c1")
    start_vetting(api)
    login(client, "discipline")
    rows = list(csv.DictReader(io.StringIO(client.get("/cases.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert list(rows[0])[:5] == ["案件编号", "流程代码", "流程", "干部编号", "干部姓名"]
    assert rows[0]["状态"] == "办理中" and rows[0]["是否逾期"] == "否"
    assert "向家属征求意见（组织部干部科）" in rows[0]["当前环节"]


def test_case_in_its_public_notice_says_what_it_waits_for_and_until_when(client, api, services):
    api.create_cadre("c1")
    case_id = vetting_to_notice(api)
    file = tracker.case_file(services, actor("discipline"), case_id)
    waits = {(w["kind"], w["event"]) for w in file["waiting"]}
    assert waits == {("timer", "公示期满"), ("message", "收到举报")}
    login(client, "discipline")
    html = client.get(f"/cases/{case_id}").get_data(as_text=True)
    section = text_of(html[html.index('id="waiting"'):html.index('id="timeline-title"')])
    assert "没有待办任务" not in section
    assert "任前公示" in section and "等待公示期满" in section and "等待收到举报" in section
    assert 'class="wait-until"' in html
    tracker_page = text_of(client.get("/cases").get_data(as_text=True))
    assert "等待公示期满" in tracker_page


def test_open_task_says_step_holder_and_due(client, api):
    api.create_cadre("c1")
    case_id = start_vetting(api)["id"]
    finish_opinions(api, case_id)
    login(client, "discipline")
    section = text_of(client.get(f"/cases/{case_id}").get_data(as_text=True))
    assert "部长审核" in section and "待 组织部部长 认领办理" in section


def test_a_vetting_of_a_banned_cadre_says_why_it_ended(client, api, services):
    api.create_cadre("c1")
    sanction(api, "removal")
    login(client, "org_dept")
    response = client.post("/cases/new", data={"process": "pre_appointment_vetting", "cadre_id": "c1",
                                              "proposed_post": "局长", "selection_method": "competitive",
                                              "csrf_token": csrf_token(client, "/cases/new")})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "flash-success" not in page and "随即结束" in page
    ending = text_of(page[page.index('id="ending"'):])
    assert "不符合任职资格" in ending and "处于受处分影响期内，不得提拔" in ending and "不得提拔至" in ending
    case_id = int(re.search(r"/cases/(\d+)", response.headers["Location"]).group(1))
    file = tracker.case_file(services, actor("org_dept"), case_id)
    assert file["ending"]["reasons"] == ["promotion_ban"] and file["waiting"] == []


def test_a_completed_task_shows_what_was_submitted(client, api):
    api.create_cadre("c1")
    case = start_vetting(api)
    task = next(t for t in case["open_tasks"] if t["element_id"] == "solicit_family_opinion")
    api.complete(case["id"], "solicit_family_opinion", opinion="positive", notes="家属支持")
    login(client, "org_dept")
    html = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "disabled" not in html[html.index("form-title"):html.index("cadre-title")]
    submitted = text_of(html[html.index('id="submitted"'):])
    assert "家属支持" in submitted and "positive" not in submitted.split("全部记录")[0]


def test_timeline_says_how_a_called_case_ended_and_the_error_it_ended_with(client, api):
    """call_done showed as its code with nothing beside it; a called case's error end now reaches its caller."""
    lane = {"org_dept": ["c"]}
    child = definitions("err_child", start() + user("c") + end("end_x", error_ref("E1")) + chain("start", "c", "end_x"),
                        lane, error("E1"))
    caller = definitions("err_caller", start() + '<bpmn:callActivity id="call" calledElement="err_child"/>'
                         + f'<bpmn:boundaryEvent id="b" attachedToRef="call">{error_ref("E1")}</bpmn:boundaryEvent>'
                         + user("c") + end() + end("e2") + chain("start", "call", "end") + chain("b", "c", "e2"),
                         lane, error("E1"))
    for key, document in (("err_child", child), ("err_caller", caller)):
        deployed = api.post(f"/api/processes/{key}/versions", as_="designer", content_type="application/xml",
                            data=document)
        assert deployed.status_code == 201, deployed.json
    api.create_cadre("c1")
    case_id = api.start("err_caller", "c1")["id"]
    api.complete(api.get(f"/api/cases/{case_id}").json["child_case_ids"][0], "c", as_="admin", ok=True)
    login(client, "org_dept")
    timeline = text_of(client.get(f"/cases/{case_id}").get_data(as_text=True))
    timeline = timeline[timeline.index("办理记录"):]
    assert "call_done" not in timeline
    assert "被调用的关联案件结束" in timeline and "结果：x" in timeline and "错误代码 E1" in timeline, timeline
