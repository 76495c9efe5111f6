"""The integrity and conduct ledgers (PROCESSES.md §10): read from the records, under the cadre's read policy."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import event

from service.db.models import Case
from service.usecases import early_warning
from service.usecases.context import SYSTEM
from tests.api.support import (
    app_from_template,
    assert_error,
    make_api,
    sanction,
    start_accountability,
    start_admonishment,
    start_departure,
)
from tests.api.test_cycle_assessment import incompetent_case
from tests.api.test_documents import pdf_text
from tests.api.test_early_warning import public_report
from tests.web.test_web_shell import login

CODE = re.compile(r"[a-z]+(_[a-z]+)*")  # what a code looks like; no summary below should hold one


def today(api) -> date:
    return api.client.application.extensions["cadreflow"].today()


def ledger(api, kind, cadre_id="c1", as_="discipline"):
    return api.get(f"/api/cadres/{cadre_id}/ledger", as_=as_, query_string={"kind": kind})


def late_report(api, days=90, **fields):
    day = today(api)
    body = {"kind": "property", "event_on": (day - timedelta(days=days)).isoformat(),
            "reported_on": day.isoformat(), "summary": "购买住房一套", **fields}
    response = api.post("/api/cadres/c1/reports", as_="org_dept", json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_an_empty_ledger_has_no_items(api, cadre):
    for kind in ("integrity", "conduct"):
        response = ledger(api, kind)
        assert response.status_code == 200, response.json
        assert response.json["items"] == [] and response.json["kind"] == kind
        assert response.json["cadre"]["id"] == "c1"


def test_integrity_ledger_has_sanctions_accountability_and_late_reports(api, cadre):
    sanctioned = sanction(api, "public_apology")
    late = late_report(api)
    api.post("/api/cadres/c1/reports", as_="org_dept", json={
        "kind": "family", "event_on": today(api).isoformat(), "reported_on": today(api).isoformat(),
        "summary": "按时报告"})
    items = ledger(api, "integrity").json["items"]
    kinds = sorted(item["kind"] for item in items)
    assert kinds == ["accountability", "personal_report", "sanction"]  # the timely report is no entry
    assert {item["case_id"] for item in items if item["kind"] != "personal_report"} == {sanctioned["id"]}
    report = next(item for item in items if item["kind"] == "personal_report")
    assert report["case_id"] == late["case_id"] and "逾期报告" in report["summary"]
    assert [item["on"] for item in items] == sorted((item["on"] for item in items), reverse=True)


def test_conduct_ledger_has_admonishments_not_integrity_entries(api, cadre):
    case = start_admonishment(api)
    start_accountability(api)
    items = ledger(api, "conduct").json["items"]
    assert [(item["kind"], item["case_id"]) for item in items] == [("admonishment", case["id"])]
    assert items[0]["summary"] == "诫勉（群众反映）：办理中"
    assert items[0]["codes"] == {"trigger": "complaint", "status": "open"}
    assert all(item["kind"] != "admonishment" for item in ledger(api, "integrity").json["items"])


def test_a_late_report_is_integrity_and_its_admonishment_conduct(api, cadre):
    late = late_report(api)
    conduct = ledger(api, "conduct").json["items"]
    assert [(i["kind"], i["case_id"]) for i in conduct] == [("admonishment", late["case_id"])]


def test_unknown_kind_is_400(api, cadre):
    assert_error(ledger(api, "finance"), 400)
    assert_error(api.get("/api/cadres/c1/ledger", as_="discipline"), 400)


def test_outsiders_get_404_like_an_unknown_cadre(api, cadre):
    assert_error(ledger(api, "integrity", as_="designer"), 404)
    assert_error(ledger(api, "integrity", cadre_id="nobody"), 404)
    assert_error(api.get("/api/cadres/c1/ledger.pdf", as_="designer", query_string={"kind": "conduct"}), 404)


def test_a_case_its_reader_may_not_read_is_no_entry(api, cadre):
    """`audit` reads c1 through a departure audit only: the ledgers tell it nothing of c1's other cases (an
    admonishment, a whistle-blower's report, an accountability case), as the case list does not; the sanction,
    part of the cadre's record it reads, stays without a link to its case."""
    departure = start_departure(api)
    start_admonishment(api)
    public_report(api)
    sanctioned = sanction(api, "public_apology")
    assert_error(api.get(f"/api/cases/{sanctioned['id']}", as_="audit"), 404)
    assert [case["id"] for case in api.get("/api/cases", as_="audit").json["items"]] == [departure["id"]]
    integrity = ledger(api, "integrity", as_="audit").json["items"]
    assert [(item["kind"], item["case_id"]) for item in integrity] == [("sanction", None)]
    assert ledger(api, "conduct", as_="audit").json["items"] == []
    printed = pdf_text(api.get("/api/cadres/c1/ledger.pdf", as_="audit", query_string={"kind": "conduct"}))
    assert "诫勉" not in printed
    everything = {item["kind"] for kind in ("integrity", "conduct") for item in ledger(api, kind).json["items"]}
    assert everything == {"sanction", "accountability", "public_report", "admonishment"}


def test_the_ledger_prints_as_pdf(api, cadre):
    start_admonishment(api)
    response = api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string={"kind": "conduct"})
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    assert "ledger-c1-conduct.pdf" in response.headers["Content-Disposition"]


def test_entries_filtered_by_period(api, cadre):
    day = today(api)
    for reported in (day - timedelta(days=40), day - timedelta(days=5)):
        api.post("/api/cadres/c1/reports", as_="org_dept", json={
            "kind": "property", "event_on": (reported - timedelta(days=90)).isoformat(),
            "reported_on": reported.isoformat(), "summary": f"购房 {reported}"})
    since = (day - timedelta(days=10)).isoformat()
    response = api.get("/api/cadres/c1/ledger", as_="discipline", query_string={"kind": "integrity", "from": since})
    assert [i["on"] for i in response.json["items"]] == [(day - timedelta(days=5)).isoformat()]
    until = (day - timedelta(days=40)).isoformat()
    response = api.get("/api/cadres/c1/ledger", as_="discipline", query_string={"kind": "integrity", "to": until})
    assert [i["on"] for i in response.json["items"]] == [until]
    assert_error(api.get("/api/cadres/c1/ledger", as_="discipline",
                         query_string={"kind": "integrity", "from": since, "to": until}), 400)
    assert_error(api.get("/api/cadres/c1/ledger", as_="discipline",
                         query_string={"kind": "integrity", "from": "yesterday"}), 400)
    pdf = api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string={"kind": "integrity", "from": since})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


# Summaries in words: every code named, the codes kept beside them.

def by_kind(items):
    return {item["kind"]: item for item in items}


def assert_no_codes(items):
    for item in items:
        assert not CODE.search(item["summary"]), item


def test_a_sanction_and_its_accountability_in_words(api, cadre):
    case = sanction(api, "public_apology")
    items = by_kind(ledger(api, "integrity").json["items"])
    assert items["sanction"]["summary"] == "处分：责令公开道歉"
    assert items["sanction"]["codes"] == {"sanction": "public_apology"}
    assert items["accountability"]["summary"] == "问责（专线举报电话，不作为、慢作为）：已办结：已问责"
    assert items["accountability"]["codes"] == {"source": "hotline", "category": "inaction", "status": "completed",
                                                "outcome": case["outcome"]}
    assert_no_codes(items.values())


def test_a_public_report_and_a_late_report_in_words(api, cadre):
    public_report(api)
    late_report(api)
    items = by_kind(ledger(api, "integrity").json["items"])
    report = items["public_report"]
    assert report["summary"].startswith("信访举报（专线举报电话，不作为、慢作为）：")
    assert report["codes"]["channel"] == "hotline" and report["codes"]["category"] == "inaction"
    assert items["personal_report"]["summary"] == "个人有关事项逾期报告（财产变动）：购买住房一套"
    assert items["personal_report"]["codes"] == {"report_kind": "property", "violation": "late"}
    assert_no_codes(items.values())


def test_an_early_warning_talk_and_an_assessment_in_words(api):
    api.create_cadre("c1", post_level="middle")
    for _ in range(3):
        public_report(api)
    early_warning.scan(api.client.application.extensions["cadreflow"], SYSTEM)
    assessment = incompetent_case(api)
    api.complete(assessment, "organisational_handling", measure="deputy_post", comment="组织处理")
    items = ledger(api, "conduct").json["items"]
    talk = next(i for i in items if i["kind"] == "admonishment")
    assert talk["summary"] == "诫勉（苗头性问题预警（提醒谈话））：办理中"
    assert talk["codes"]["trigger"] == "early_warning"
    grade = next(i for i in items if i["kind"] == "assessment")
    assert grade["summary"] == "2025 年度考核：不称职，组织处理：改任副职"
    assert grade["codes"] == {"grade": "incompetent", "measure": "deputy_post"}
    assert_no_codes(items)


def test_a_learning_shortfall_names_its_kind(api, cadre):
    response = api.post("/api/cadres/c1/learning", as_="org_dept", json={
        "kind": "online_hours", "date": f"{today(api).year}-03-01", "amount": 10, "source": "网络学院"})
    assert response.status_code == 201, response.json
    item = by_kind(ledger(api, "conduct").json["items"])["learning"]
    assert item["summary"] == (f"{today(api).year} 年度学习：未达标：集中学习（天）差 12、社会化选学（学时）差 40、"
                               "在线学习（小时）差 50")
    assert item["codes"] == {"result": "shortfall", "shortfalls": ["elective_hours", "group_study_days",
                                                                   "online_hours"]}
    assert_no_codes([item])


def test_the_printed_ledger_shows_the_words(api, cadre):
    sanction(api, "public_apology")
    api.client.set_cookie("lang", "en")  # a document is Chinese whatever the client's language
    text = pdf_text(api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string={"kind": "integrity"}))
    assert "处分：责令公开道歉" in text and "问责（专线举报电话，不作为、慢作为）" in text
    assert "public_apology" not in text and "hotline" not in text and "Public" not in text


# The entry-type filter.

def kinds_of(response):
    assert response.status_code == 200, response.json
    return sorted(item["kind"] for item in response.json["items"])


def test_entries_filtered_by_type(api, cadre):
    sanction(api, "public_apology")  # a sanction and its accountability case
    public_report(api)
    late_report(api)
    assert kinds_of(ledger(api, "integrity")) == ["accountability", "personal_report", "public_report", "sanction"]
    get = lambda **query: api.get("/api/cadres/c1/ledger", as_="discipline",  # noqa: E731
                                  query_string={"kind": "integrity", **query})
    assert kinds_of(get(type=["sanction", "public_report"])) == ["public_report", "sanction"]
    assert kinds_of(get(type="sanction,personal_report")) == ["personal_report", "sanction"]
    assert kinds_of(get(type=["accountability", "sanction,"])) == ["accountability", "sanction"]
    assert get(type="public_report").json["types"] == ["public_report"]
    assert get().json["types"] is None
    tomorrow = (today(api) + timedelta(days=1)).isoformat()
    assert kinds_of(get(type="sanction", **{"from": tomorrow})) == []


def test_an_unknown_or_other_ledgers_type_is_400(api, cadre):
    get = lambda kind, types: api.get("/api/cadres/c1/ledger", as_="discipline",  # noqa: E731
                                      query_string={"kind": kind, "type": types})
    error = assert_error(get("integrity", "sanction,bribery"), 400, fields={"type"})
    assert "bribery" in error["message"] and "sanction" in error["fields"]["type"]
    assert_error(get("integrity", "admonishment"), 400, fields={"type"})  # a conduct entry
    assert_error(api.get("/api/cadres/c1/ledger.pdf", as_="discipline",
                         query_string={"kind": "conduct", "type": "sanction"}), 400, fields={"type"})
    assert kinds_of(get("conduct", "admonishment")) == []


def test_the_printed_ledger_honours_the_type_filter(api, cadre):
    sanction(api, "public_apology")
    query = {"kind": "integrity", "type": "sanction"}
    text = pdf_text(api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string=query))
    assert "处分：责令公开道歉" in text and "类别处分" in text
    assert "问责（" not in text
    everything = pdf_text(api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string={"kind": "integrity"}))
    assert "问责（" in everything and "类别处分" not in everything


def test_a_printed_ledger_past_pdf_max_rows_is_refused_whole(template, tmp_path):
    """A printed ledger holds at most PDF_MAX_ROWS entries: past it, a 422 asking to narrow the filter, never a
    PDF (3,001 entries held the one printer 53 s and 300 MB); the JSON ledger and a narrower PDF still answer."""
    app = app_from_template(template, tmp_path / "few", PDF_MAX_ROWS=2)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        for _ in range(3):
            start_admonishment(api)
        wide = api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string={"kind": "conduct"})
        message = assert_error(wide, 422)["message"]
        assert "3" in message and "2" in message and "缩小" in message and "narrow" in message, message
        assert not wide.data.startswith(b"%PDF")
        assert len(ledger(api, "conduct").json["items"]) == 3
        narrow = api.get("/api/cadres/c1/ledger.pdf", as_="discipline",
                         query_string={"kind": "integrity"})
        assert narrow.status_code == 200 and narrow.data.startswith(b"%PDF")
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_ledger_past_ledger_max_rows_is_refused_whole(template, tmp_path):
    """One answer holds at most LEDGER_MAX_ROWS entries (10,000 admonishments took 1.9 s and 1.5 MB of JSON, the
    cadre page reading them twice): past it a 422 asking to narrow the filter, never part of a ledger; a narrower
    ledger, or the other one, still answers, and the cadre page says why it shows no entries."""
    app = app_from_template(template, tmp_path / "few", LEDGER_MAX_ROWS=2)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        for _ in range(3):
            start_admonishment(api)
        message = assert_error(ledger(api, "conduct"), 422)["message"]
        assert "3" in message and "2" in message and "缩小" in message and "narrow" in message, message
        narrow = api.get("/api/cadres/c1/ledger", as_="discipline",
                         query_string={"kind": "conduct", "type": "assessment"})
        assert narrow.status_code == 200 and narrow.json["items"] == [], narrow.json
        assert ledger(api, "integrity").status_code == 200
        client = app.test_client()
        login(client, "discipline")
        page = client.get("/cadres/c1")
        assert page.status_code == 200 and "缩小" in page.get_data(as_text=True)
        assert "诫勉（" not in page.get_data(as_text=True)
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_ledger_past_its_limit_is_refused_before_reading_every_case(template, tmp_path):
    """The size limits bound the work, not only the answer: past LEDGER_MAX_ROWS (PDF_MAX_ROWS printed) the ledger
    stops reading once it has one entry more than the limit. Before, all of the cadre's cases were read first (10,000
    admonishments, 1.9 s), then refused."""
    app = app_from_template(template, tmp_path / "few", LEDGER_MAX_ROWS=3, PDF_MAX_ROWS=2)
    loaded: list[int] = []

    def note(case, _context):
        loaded.append(case.id)

    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        for _ in range(10):
            start_admonishment(api)
        event.listen(Case, "load", note)
        try:
            message = assert_error(ledger(api, "conduct"), 422)["message"]
            read_for_answer, loaded[:] = len(loaded), []
            printed = api.get("/api/cadres/c1/ledger.pdf", as_="discipline", query_string={"kind": "conduct"})
            assert "缩小" in assert_error(printed, 422)["message"]
            read_for_print = len(loaded)
        finally:
            event.remove(Case, "load", note)
        assert (read_for_answer, read_for_print) == (4, 3)
        assert "4" in message and "3" in message and "narrow" in message, message  # at least 4: more than 3
    finally:
        app.extensions["cadreflow"].db.dispose()
