"""The access log: every read of a case's detail or a cadre record, and reading the log back."""

from __future__ import annotations

import re

import pytest

from tests.api.support import ACCOUNTABILITY, DEPARTURE, VETTING, assert_error
from tests.policy.world import CADRE_OF, LONE_CADRE
from tests.sql import statements_sent


@pytest.fixture
def world_app(world, tmp_path):
    app = world.app(tmp_path / "log")
    yield app
    app.extensions["cadreflow"].db.dispose()


def log(api, as_="discipline_head", **filters):
    response = api.get("/api/access-log", as_=as_, query_string=filters)
    assert response.status_code == 200, response.json
    return response.json


def test_each_read_of_a_case_or_cadre_is_logged_newest_first(world, world_app):
    """API and page reads of a case, its history, diagram, a task and a cadre each leave one entry."""
    api, web = world.api(world_app), world.web(world_app, "org_dept")
    case_id, cadre_id = world.cases[VETTING], CADRE_OF[VETTING]
    before = log(api)["total"]
    for url in (f"/api/cases/{case_id}", f"/api/cases/{case_id}/history", f"/api/cases/{case_id}/diagram",
                f"/api/tasks/{world.tasks[VETTING]}", f"/api/cadres/{cadre_id}", f"/api/cadres/{cadre_id}/learning"):
        assert api.get(url, as_="org_dept").status_code == 200, url
    for url in (f"/cases/{case_id}", f"/tasks/{world.tasks[VETTING]}", f"/cadres/{cadre_id}"):
        assert web.get(url).status_code == 200, url
    mine = log(api, username="org_dept")
    assert mine["total"] == 9 and log(api)["total"] == before + 9
    assert [e["what"] for e in mine["items"]] == ["cadre_page", "task_page", "case_page", "learning", "cadre",
                                                  "task", "diagram", "history", "case"]
    assert all(e["username"] == "org_dept" and e["at"] for e in mine["items"])
    assert {e.get("case_id") for e in mine["items"] if e["what"] in ("case", "task_page")} == {case_id}
    assert "case_id" not in mine["items"][0] and mine["items"][0]["cadre_id"] == cadre_id


def test_the_log_filters_by_case_cadre_and_user_and_pages(world, world_app):
    """?case_id=, ?cadre_id=, ?username= narrow the log; ?page= and per_page walk it."""
    api = world.api(world_app)
    for user in ("discipline", "committee"):
        api.get(f"/api/cases/{world.cases[ACCOUNTABILITY]}", as_=user)
    api.get(f"/api/cadres/{CADRE_OF[DEPARTURE]}", as_="audit")
    by_case = log(api, case_id=world.cases[ACCOUNTABILITY])  # the world's own reads (admin) come before
    assert [e["username"] for e in by_case["items"][:2]] == ["committee", "discipline"]
    assert {e["case_id"] for e in by_case["items"]} == {world.cases[ACCOUNTABILITY]}
    assert [e["what"] for e in log(api, cadre_id=CADRE_OF[DEPARTURE], username="audit")["items"]] == ["cadre"]
    assert log(api, username="nobody") == {"items": [], "total": 0, "page": 1, "per_page": 50}
    first, second = log(api, page=1, per_page=2), log(api, page=2, per_page=2)
    assert len(first["items"]) == 2 and first["items"] != second["items"] and first["total"] == second["total"]
    beyond = -(-first["total"] // 2) + 1  # a page past the last: empty, the page asked for, no `pages`
    assert log(api, page=beyond, per_page=2) == {"items": [], "total": first["total"], "page": beyond, "per_page": 2}


def test_a_cases_comments_and_files_are_logged_like_its_detail(world, world_app):
    """GET /api/cases/<id>/comments and …/attachments are reads of the case: one entry each, naming its cadre."""
    api, case_id = world.api(world_app), world.cases[VETTING]
    for url in (f"/api/cases/{case_id}/comments", f"/api/cases/{case_id}/attachments"):
        assert api.get(url, as_="committee").status_code == 200, url
    mine = log(api, username="committee")["items"]
    assert [(e["what"], e["case_id"], e["cadre_id"]) for e in mine] == [
        ("attachments", case_id, CADRE_OF[VETTING]), ("comments", case_id, CADRE_OF[VETTING])]


def test_listing_a_cases_documents_is_logged_like_its_detail(world, world_app):
    """GET /api/cases/<id>/documents tells how far a case went (which of its documents exist): a read of the case,
    one entry naming its cadre; a refused one (404) none."""
    api, case_id = world.api(world_app), world.cases[VETTING]
    assert api.get(f"/api/cases/{case_id}/documents", as_="committee").json == []
    assert api.get(f"/api/cases/{world.cases[ACCOUNTABILITY]}/documents", as_="org_head").status_code == 404
    assert [(e["what"], e["case_id"], e["cadre_id"]) for e in log(api, username="committee")["items"]] == [
        ("documents", case_id, CADRE_OF[VETTING])]
    assert log(api, username="org_head")["total"] == 0


def test_the_cadre_list_logs_each_record_it_returns_in_one_insert(world, world_app):
    """GET /api/cadres returns full records (sanctions, audits, personal reports): one entry per cadre
    returned, written by a single INSERT however many there are; a caller's unreadable cadres are not named."""
    api = world.api(world_app)
    with statements_sent(world_app.extensions["cadreflow"].db) as sent:
        listed = api.get("/api/cadres", as_="org_dept").json
    inserts = [s for s in sent if s.starts("INSERT INTO access_log")]
    assert len(listed) == len([*CADRE_OF.values(), LONE_CADRE]) and len(inserts) == 1
    entries = log(api, username="org_dept")["items"]
    assert sorted(e["cadre_id"] for e in entries) == sorted(c["id"] for c in listed)
    assert {e["what"] for e in entries} == {"cadre_list"} and all("case_id" not in e for e in entries)
    assert [c["id"] for c in api.get("/api/cadres", as_="audit").json] == [CADRE_OF[DEPARTURE]]
    assert [e["cadre_id"] for e in log(api, username="audit")["items"]] == [CADRE_OF[DEPARTURE]]


def test_the_case_list_logs_each_case_it_returns_in_one_insert(world, world_app):
    """GET /api/cases returns each case whole (its data, as GET /api/cases/<id> does): one `case_list` entry per
    case returned, naming its cadre, written by a single INSERT; a caller's unreadable cases are not named, and a
    search that finds nothing writes nothing."""
    api = world.api(world_app)
    with statements_sent(world_app.extensions["cadreflow"].db) as sent:
        listed = api.get("/api/cases", as_="audit").json["items"]
    assert [c["id"] for c in listed] == [world.cases[DEPARTURE]] and listed[0]["data"]
    assert len([s for s in sent if s.starts("INSERT INTO access_log")]) == 1
    assert [(e["what"], e["case_id"], e["cadre_id"]) for e in log(api, username="audit")["items"]] == [
        ("case_list", world.cases[DEPARTURE], CADRE_OF[DEPARTURE])]
    assert api.get("/api/cases", as_="audit", query_string={"q": "no such words"}).json["items"] == []
    assert log(api, username="audit")["total"] == 1
    everything = api.get("/api/cases", as_="discipline", query_string={"per_page": 2}).json
    assert len(everything["items"]) == 2 < everything["total"]  # a page: what it returned, not what it counted
    assert sorted(e["case_id"] for e in log(api, username="discipline")["items"]) == sorted(
        c["id"] for c in everything["items"])


def test_a_tracker_search_logs_each_case_its_text_found(world, world_app):
    """The tracker finds cases by what their data says: a case listed for a search text tells the searcher that its
    record holds it, so the tracker's page and its CSV log each case found (`case_search`, naming its cadre); the
    same lists without a search text log nothing, and a search linked from another site answers the interstitial,
    finding and noting nothing."""
    api, web, case_id = world.api(world_app), world.web(world_app, "committee"), world.cases[ACCOUNTABILITY]
    allegation = {"q": "长期不作为"}  # what the accountability case's start data says
    assert web.get("/cases", query_string={"process": ACCOUNTABILITY}).status_code == 200
    assert log(api, username="committee")["total"] == 0
    page = web.get("/cases", query_string=allegation).get_data(as_text=True)
    assert re.findall(r'data-case-id="(\d+)"', page) == [str(case_id)]
    assert web.get("/cases.csv", query_string=allegation).status_code == 200
    assert [(e["what"], e["case_id"], e["cadre_id"]) for e in log(api, username="committee")["items"]] == [
        ("case_search", case_id, CADRE_OF[ACCOUNTABILITY])] * 2
    elsewhere = web.get("/cases", query_string=allegation, headers={"Sec-Fetch-Site": "cross-site"})
    assert "确认打开" in elsewhere.get_data(as_text=True) and 'data-case-id' not in elsewhere.get_data(as_text=True)
    assert web.get("/cases.csv", query_string=allegation, headers={"Sec-Fetch-Site": "cross-site"}).mimetype == \
        "text/html"
    assert log(api, username="committee")["total"] == 2


def test_refused_reads_and_lists_of_summaries_are_not_logged(world, world_app):
    """A 404 read leaves no entry (nothing was read), and neither do the tracker's lists of cases, its CSV or the
    cadre register's page (a line per case or cadre; opening one is the read); an empty cadre list writes nothing."""
    api = world.api(world_app)
    before = log(api)["total"]
    assert api.get(f"/api/cases/{world.cases[ACCOUNTABILITY]}", as_="audit").status_code == 404
    assert api.get(f"/api/cases/{world.cases[ACCOUNTABILITY]}/comments", as_="audit").status_code == 404
    assert api.get(f"/api/cases/{world.cases[ACCOUNTABILITY]}/attachments", as_="audit").status_code == 404
    assert api.get("/api/cases", as_="audit", query_string={"process": ACCOUNTABILITY}).json["items"] == []
    assert {world.web(world_app, "audit").get(url).status_code for url in ("/cases", "/cases.csv")} == {200}
    assert api.get("/api/cadres", as_="audit", query_string={"q": "no such cadre"}).json == []
    assert world.web(world_app, "org_dept").get("/cadres").status_code == 200
    assert log(api)["total"] == before


@pytest.mark.parametrize("user", ["org_dept", "discipline", "audit", "designer", "committee"])
def test_only_discipline_head_and_admin_read_the_log(world, world_app, user):
    """GET /api/access-log → 403 for every other role; 200 for discipline_head and admin."""
    api = world.api(world_app)
    assert_error(api.get("/api/access-log", as_=user), 403, "forbidden")
    assert log(api, as_="admin")["total"] == log(api)["total"]


def test_the_access_log_page_lists_and_filters(world, world_app):
    """/access-log for discipline_head: the entries, newest first, filtered like the API."""
    world.api(world_app).get(f"/api/cases/{world.cases[VETTING]}", as_="org_head")
    web = world.web(world_app, "discipline_head")
    page = web.get("/access-log", query_string={"username": "org_head"}).get_data(as_text=True)
    rows = re.findall(r"<tr>\s*<td data-label", page)
    assert len(rows) == 1 and f'href="/cases/{world.cases[VETTING]}"' in page and "org_head" in page
    assert web.get("/access-log", query_string={"case_id": "not-a-number"}).status_code == 200
    assert world.web(world_app, "org_dept").get("/access-log").status_code == 403
