"""Search (issue 13): cadres by name, unit or id for the picker; cases by number or by what their data says;
never a case or cadre the caller may not read."""

from __future__ import annotations

import re

from service.usecases import search
from tests.api.support import start_accountability, start_vetting
from tests.conftest import actor
from tests.web.test_web_shell import csrf_token, login


def ids(response) -> set[int]:
    return {c["id"] for c in response.json["items"]}


def test_search_text_holds_every_value_of_the_data():
    text = search.search_text("任前监督", "c1", {"a": "县发改局局长", "n": 3, "b": True, "l": [{"x": "深层"}]})
    assert text == "任前监督 c1 县发改局局长 3 深层"


def test_cases_are_found_by_number_data_cadre_name_and_process(api):
    api.create_cadre("c1")
    api.create_cadre("c2", name="李四", unit="县水利局")
    vetting = start_vetting(api, post="县档案馆馆长")["id"]
    other = start_vetting(api, "c2", post="县水利局局长")["id"]

    def found(q: str) -> set[int]:
        response = api.get(f"/api/cases?q={q}", as_="org_dept")
        assert response.status_code == 200
        return ids(response)
    assert found("档案馆") == {vetting}
    assert found(f"%23{other}") == {other} and found(str(vetting)) >= {vetting}
    assert found("李四") == {other} and found("水利") == {other}
    assert found("任前监督") == {vetting, other}
    assert found("100%25") == set() and found("_") == set()  # LIKE wildcards are taken literally


def test_search_text_follows_the_steps(api):
    api.create_cadre("c1")
    case_id = start_vetting(api)["id"]
    api.complete(case_id, "solicit_colleague_opinion", opinion="negative", notes="群众反映作风粗暴")
    assert ids(api.get("/api/cases?q=作风粗暴", as_="org_dept")) == {case_id}


def test_search_never_reveals_unreadable_cases(api):
    api.create_cadre("c1")
    accountability = start_accountability(api)["id"]
    case = api.get(f"/api/cases/{accountability}", as_="discipline").json
    word = case["data"].get("allegation", "hotline")
    assert accountability in ids(api.get(f"/api/cases?q={word}", as_="discipline"))
    for user in ("audit", "org_dept", "committee"):
        if api.get(f"/api/cases/{accountability}", as_=user).status_code == 404:
            assert accountability not in ids(api.get(f"/api/cases?q={word}", as_=user))
            assert accountability not in ids(api.get(f"/api/cases?q=%23{accountability}", as_=user))


def test_cadre_search_by_name_unit_or_id_in_the_api_and_the_picker(api, client, services):
    api.create_cadre("c1")
    api.create_cadre("w7", name="王小明", unit="县审计局")
    assert [c["id"] for c in api.get("/api/cadres?q=小明", as_="org_dept").json] == ["w7"]
    assert [c["id"] for c in api.get("/api/cadres?q=审计", as_="org_dept").json] == ["w7"]
    assert [c["id"] for c in api.get("/api/cadres?q=w7", as_="org_dept").json] == ["w7"]
    login(client, "org_dept")
    assert client.get("/search/cadres?q=王").json == [{"id": "w7", "name": "王小明", "unit": "县审计局",
                                                      "post": "副局长"}]
    assert {c["id"] for c in client.get("/search/cadres").json} == {"c1", "w7"}
    # audit reads no cadre without a case of its own: the picker offers none
    assert search.find_cadres(services, actor("audit"), "王") == []


def test_the_start_page_and_the_tracker_pick_cadres_by_typing(api, client):
    api.create_cadre("c1")
    login(client, "org_dept")
    html = client.get("/cases/new?process=pre_appointment_vetting").get_data(as_text=True)
    assert re.search(r'<input type="search" id="f-cadre_id" name="cadre_id"[^>]*list="f-cadre_id-options"', html)
    assert "<select id=\"f-cadre_id\"" not in html
    response = client.post("/cases/new", data={"process": "pre_appointment_vetting", "cadre_id": "c1",
                                              "csrf_token": csrf_token(client, "/cases/new")})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'value="c1"' in html and "张三 · 县发改局" in html  # kept, named
    start_vetting(api)
    page = client.get("/cases?cadre=c1&q=发改局").get_data(as_text=True)
    assert 'data-picker="/search/cadres"' in page and "张三 · 县发改局" in page
    assert len(re.findall(r'data-case-id="\d+"', page)) == 1
    assert len(re.findall(r'data-case-id="\d+"', client.get("/cases?q=没有这种内容").get_data(as_text=True))) == 0


def task_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-task-id="([^"]+)"', html)


def test_the_inbox_picks_its_cadre_filter_by_typing(api, client):
    """Issue 13: the inbox's cadre filter is the typeahead picker (no list of every cadre); any cadre id filters."""
    api.create_cadre("c1")
    api.create_cadre("c2", name="李四", unit="县水利局")
    api.create_cadre("c3", name="王五", unit="县林业局")  # no case: never listed, still a filter
    start_vetting(api)
    start_vetting(api, "c2", post="县水利局局长")
    login(client, "org_dept")
    everything = client.get("/inbox").get_data(as_text=True)
    assert re.search(r'<input type="search" id="flt-cadre" name="cadre" value=""[^>]*list="flt-cadre-options"',
                     everything)
    assert 'data-picker="/search/cadres"' in everything and '<select id="flt-cadre"' not in everything
    assert '<option value="c1"' not in everything and '<option value="c2"' not in everything
    every = task_rows(everything)
    assert len(every) >= 2
    page = client.get("/inbox?cadre=c2").get_data(as_text=True)
    assert 'id="flt-cadre" name="cadre" value="c2"' in page and "李四 · 县水利局" in page  # the filter, named
    only = task_rows(page)
    assert only and set(only) < set(every) and "张三" not in page.split('id="inbox-table"')[1]
    assert task_rows(client.get("/inbox?cadre=c1&cadre=c2").get_data(as_text=True)) == task_rows(
        client.get("/inbox?cadre=c1").get_data(as_text=True))  # the first value counts, as with every filter
    none = client.get("/inbox?cadre=c3").get_data(as_text=True)
    assert task_rows(none) == [] and "王五 · 县林业局" in none and "没有符合筛选条件的任务。" in none
    unknown = client.get("/inbox?cadre=%E6%B2%A1%E6%9C%89").get_data(as_text=True)  # typed, never picked
    assert task_rows(unknown) == [] and 'value="没有"' in unknown and "没有符合筛选条件的任务。" in unknown


def test_the_triage_form_picks_the_reported_cadre_by_typing(api, client):
    """The triage's `x-cadre` field is the picker too; a page shown again names the cadre chosen."""
    api.create_cadre("c1")
    report = {"channel": "hotline", "subject_name": "张三", "subject_unit": "县发改局", "category": "inaction",
              "content": "对群众反映的问题长期不予处理"}
    response = api.post("/api/cases", as_="discipline", json={"process": "public_report", "cadre_id": None,
                                                               "data": report})
    assert response.status_code == 201, response.json
    case_id = response.json["id"]
    task = api.open_task(case_id, "triage_report")
    login(client, "discipline")
    url = f"/tasks/{task['id']}"
    html = client.get(url).get_data(as_text=True)
    assert re.search(r'<input type="search" id="f-cadre_id" name="cadre_id" value=""[^>]*list="f-cadre_id-options"',
                     html)
    assert '<select id="f-cadre_id"' not in html and '<option value="c1"' not in html
    token = csrf_token(client, url)
    response = client.post(f"{url}/complete", data={"decision": "transfer", "cadre_id": "c1", "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'name="cadre_id" value="c1"' in html and "张三 · 县发改局" in html
    response = client.post(f"{url}/complete", data={"decision": "accountability", "cadre_id": "nobody",
                                                    "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'aria-describedby="f-cadre_id-chosen err-cadre_id"' in html
    assert re.search(r'<p class="field-error" id="err-cadre_id"', html)
    response = client.post(f"{url}/complete", data={"decision": "accountability", "cadre_id": "c1",
                                                    "csrf_token": token})
    assert response.status_code == 302
    assert api.get(f"/api/cases/{case_id}", as_="discipline").json["cadre_id"] == "c1"


def test_the_cadre_register_searches(api, client):
    api.create_cadre("c1")
    api.create_cadre("w7", name="王小明", unit="县审计局")
    login(client, "org_dept")
    page = client.get("/cadres?q=审计局").get_data(as_text=True)
    assert "王小明" in page and "张三" not in page
