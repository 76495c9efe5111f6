"""Printable case documents: which a case has so far, the PDFs' Chinese text and data, and who may read them."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from service.config import PROJECT_ROOT
from tests.api.support import (
    accountability_to_review,
    admonishment_to_follow_up,
    assert_error,
    departure_to_fieldwork,
    finish_opinions,
    start_accountability,
    start_admonishment,
    start_vetting,
    vetting_to_notice,
)
from tests.web.test_web_shell import csrf_token, login


def documents(api, case_id, as_="admin"):
    response = api.get(f"/api/cases/{case_id}/documents", as_=as_)
    assert response.status_code == 200, response.json
    return response.json


def pdf_text(response) -> str:
    """The text of a PDF answer, without the line breaks and spaces layout puts into it."""
    assert response.status_code == 200, response.get_data()[:300]
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.data))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def test_vetting_notice_once_the_head_approved(api, cadre):
    """任前公示公告: none while opinions are gathered; after approval, the notice with the cadre and post."""
    case_id = start_vetting(api, post="县发改局局长")["id"]
    finish_opinions(api, case_id)
    assert documents(api, case_id) == []
    api.complete(case_id, "org_head_review", decision="approve")
    assert documents(api, case_id) == [{"kind": "vetting_notice", "title": "任前公示公告"}]
    text = pdf_text(api.get(f"/api/cases/{case_id}/documents/vetting_notice.pdf", as_="org_dept"))
    for expected in ("任前公示公告", "张三", "县发改局", "副局长", "县发改局局长", "竞争上岗", "中共盐亭县委组织部",
                     "公示期自", f"#{case_id}"):
        assert expected in text, expected


def test_admonishment_record_after_the_talk(api, cadre):
    """诫勉谈话记录: the talk's date and minutes, the cause and the rectification plan."""
    case_id = admonishment_to_follow_up(api)
    assert documents(api, case_id) == [{"kind": "admonishment_record", "title": "诫勉谈话记录"}]
    text = pdf_text(api.get(f"/api/cases/{case_id}/documents/admonishment_record.pdf", as_="discipline"))
    for expected in ("诫勉谈话记录", "张三", "2024-05-01", "谈话记录", "群众反映", "群众反映工作作风问题", "情况属实",
                     "整改措施", "中共盐亭县纪委"):
        assert expected in text, expected


def test_accountability_decision_once_the_committee_approved(api, services, cadre):
    """问责决定书: the facts, the sanction the committee approved, the date and the promotion ban."""
    case_id = accountability_to_review(api, "serious", "none")
    assert documents(api, case_id) == []
    api.complete(case_id, "committee_review", decision="approve")
    assert documents(api, case_id) == [{"kind": "accountability_decision", "title": "问责决定书"}]
    text = pdf_text(api.get(f"/api/cases/{case_id}/documents/accountability_decision.pdf", as_="committee"))
    ban = api.cadre()["promotion_ban_until"]
    for expected in ("问责决定书", "张三", "专线举报电话", "不作为、慢作为", "对群众诉求长期不作为", "查实", "情节较重",
                     "停职检查", services.today().isoformat(), ban, "中共盐亭县委"):
        assert expected in text, expected


def test_rejected_sanction_has_no_decision(api, cadre):
    case_id = accountability_to_review(api, "minor", "none")
    api.complete(case_id, "committee_review", decision="reject")
    assert documents(api, case_id) == []
    assert_error(api.get(f"/api/cases/{case_id}/documents/accountability_decision.pdf"), 404)


def test_departure_audit_conclusion_after_fieldwork(api, services, cadre):
    """离任审计结论: the team, the report, the findings and the day the audit cleared."""
    case_id = departure_to_fieldwork(api)
    assert documents(api, case_id) == []
    api.complete(case_id, "audit_fieldwork", as_="audit2", findings="none", amount_involved=0,
                 report_ref="盐审〔2025〕7号")
    assert documents(api, case_id) == [{"kind": "departure_audit_conclusion", "title": "离任审计结论"}]
    text = pdf_text(api.get(f"/api/cases/{case_id}/documents/departure_audit_conclusion.pdf", as_="audit_head"))
    for expected in ("离任审计结论", "张三", "提拔", "audit2", "李四、王五", "盐审〔2025〕7号", "未发现问题",
                     services.today().isoformat(), "盐亭县审计局"):
        assert expected in text, expected


def test_outsiders_unknown_kinds_and_other_processes_get_404(api, cadre):
    """A user who may not read the case gets 404 like an unknown id; so do unknown or not-yet kinds."""
    case_id = vetting_to_notice(api)
    for outsider in ("audit", "audit_head", "designer"):
        assert_error(api.get(f"/api/cases/{case_id}/documents", as_=outsider), {403, 404})
        assert_error(api.get(f"/api/cases/{case_id}/documents/vetting_notice.pdf", as_=outsider), {403, 404})
    assert_error(api.get(f"/api/cases/{case_id}/documents", as_="audit"), 404)
    assert_error(api.get(f"/api/cases/{case_id}/documents/vetting_notice.pdf", as_="audit"), 404)
    for kind in ("nothing", "accountability_decision", "vetting_notice.html"):
        assert_error(api.get(f"/api/cases/{case_id}/documents/{kind}.pdf"), 404)
    assert_error(api.get("/api/cases/999999/documents"), 404)
    assert_error(api.get("/api/cases/999999/documents/vetting_notice.pdf"), 404)
    other = start_accountability(api)["id"]
    assert_error(api.get(f"/api/cases/{other}/documents/accountability_decision.pdf"), 404)


def test_reading_a_document_is_logged(api, cadre):
    case_id = vetting_to_notice(api)
    pdf_text(api.get(f"/api/cases/{case_id}/documents/vetting_notice.pdf", as_="org_head"))
    log = api.get("/api/access-log", as_="discipline_head", query_string={"case_id": case_id}).json["items"]
    assert {"username": "org_head", "what": "document"} in [{k: e[k] for k in ("username", "what")} for e in log]


@pytest.fixture
def browser(app):
    return app.test_client()


def test_case_page_links_its_documents_and_prints(api, cadre, browser):
    """The web case page lists each document as a PDF link; the link serves it; outsiders get 404."""
    case_id = vetting_to_notice(api)
    login(browser, "org_head")
    page = browser.get(f"/cases/{case_id}").get_data(as_text=True)
    link = f"/cases/{case_id}/documents/vetting_notice.pdf"
    assert f'href="{link}"' in page and "任前公示公告" in page and "data-print" in page
    response = browser.get(link)
    assert "张三" in pdf_text(response) and response.headers["Cache-Control"] == "no-store"
    assert browser.get(f"/cases/{case_id}/documents/nothing.pdf").status_code == 404
    outsider = browser.application.test_client()
    login(outsider, "audit")
    assert outsider.get(link).status_code == 404


def test_print_stylesheet_hides_the_controls(browser):
    response = browser.get("/assets/style.css")
    css = response.get_data(as_text=True)
    response.close()
    assert "@media print" in css and ".topbar" in css.split("@media print", 1)[1]


def test_documents_stay_chinese_in_the_english_ui(api, cadre, browser):
    """A document is an official paper: the UI's language does not change it."""
    case_id = vetting_to_notice(api)
    login(browser, "org_head")
    browser.post("/lang", data={"lang": "en", "next": "/inbox", "csrf_token": csrf_token(browser, "/inbox")})
    assert "Documents" in browser.get(f"/cases/{case_id}").get_data(as_text=True)
    text = pdf_text(browser.get(f"/cases/{case_id}/documents/vetting_notice.pdf"))
    assert "任前公示公告" in text and "竞争上岗" in text and "competitive" not in text


def test_markup_in_case_data_is_printed_as_text_and_fetches_nothing(api, cadre):
    """Case data is escaped: a tag in the minutes is printed literally, and no URL is ever fetched."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="情况属实")
    minutes = '<img src="file:///etc/passwd"><b>谈话要点</b>'
    api.complete(case_id, "conduct_talk", talk_date="2024-05-01", minutes=minutes)
    text = pdf_text(api.get(f"/api/cases/{case_id}/documents/admonishment_record.pdf"))
    assert '<imgsrc="file:///etc/passwd"><b>谈话要点</b>' in text


def test_a_text_at_its_limit_is_printed_whole_inside_its_cell(api, cadre):
    """Minutes of 2,000 characters, a third of them one unbroken word: every character is printed, the word
    wrapped inside its cell."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="情况属实")
    minutes = "x" * 700 + ("谈话指出其存在的问题，要求限期整改。" * 80)[:1300]
    api.complete(case_id, "conduct_talk", talk_date="2024-05-01", minutes=minutes)
    text = pdf_text(api.get(f"/api/cases/{case_id}/documents/admonishment_record.pdf"))
    assert minutes in re.sub(r"第\d+页共\d+页", "", text)  # the cell runs over pages: their footers cut it


def test_document_tables_are_laid_out_fixed():
    """WeasyPrint measures every cell of an automatic table in time growing with the square of its text (a
    ledger of 10 entries of 2,000 characters: 58 s, against 0.65 s fixed; bench/bench_documents.py): the
    documents' tables take their widths from the first row, and no template undoes that."""
    folder = PROJECT_ROOT / "service" / "web" / "templates" / "documents"
    base = (folder / "_base.html").read_text("utf-8")
    assert re.search(r"\btable \{[^}]*table-layout: fixed;", base)
    others = [path for path in folder.glob("*.html") if path.name != "_base.html"]
    assert others and all("table-layout" not in path.read_text("utf-8") for path in others)


def test_line_breaks_cannot_stretch_a_document_over_pages(api, cadre):
    """Audit finding: minutes of 2,000 bare line breaks printed as 189 pages, seconds of a web process each time.
    A run of blank lines prints as one, and past MAX_PRINTED_LINES lines the rest runs on: the record fits on a
    page or two, every character of the text still printed."""
    case_id = start_admonishment(api)["id"]
    api.complete(case_id, "intake_review", form="talk", reason="\n" * 1998 + "受理")
    minutes = "".join(f"第{n}点\n" for n in range(400))[:2000]
    api.complete(case_id, "conduct_talk", talk_date="2024-05-01", minutes=minutes)
    response = api.get(f"/api/cases/{case_id}/documents/admonishment_record.pdf")
    assert len(PdfReader(io.BytesIO(response.data)).pages) <= 8  # 100 lines of minutes take about three
    text = pdf_text(response)
    listed = [line for line in minutes.split("\n") if line]  # the lines past the 100th run on, wrapped anywhere
    assert len(listed) > 200 and "受理" in text and all(line in text for line in listed[:99] + listed[-1:])


def test_a_busy_printer_answers_503_and_prints_again_once_free(api, cadre):
    """A process prints PDF_RENDERS_AT_ONCE documents at a time: a request that cannot get a turn within
    PDF_WAIT_SECONDS is a 503 (nothing else waits on it), and the next one, with the printer free, prints."""
    from service.printing import _PRINTER, _printer_turn

    case_id = admonishment_to_follow_up(api)
    app = api.client.application
    app.extensions["cadreflow"].settings["PDF_WAIT_SECONDS"] = 0.05
    url = f"/api/cases/{case_id}/documents/admonishment_record.pdf"
    with app.test_request_context(), _printer_turn():  # someone else is printing
        assert app.extensions[_PRINTER]._value == 0
        assert_error(api.get(url, as_="discipline"), 503)
    assert app.extensions[_PRINTER]._value == 1
    assert "诫勉谈话记录" in pdf_text(api.get(url, as_="discipline"))


def test_a_text_longer_than_any_shipped_form_takes_prints_only_its_start(api, cadre, services):
    """Audit finding: a printed field's length is bounded only by its form, and a designer's version may raise
    `maxLength` (or add a `format`, which gets no default limit): minutes of 100,000 characters took the one
    printer nine seconds, again at every download. A printed text stops after MAX_PRINTED_CHARS characters (more
    than any shipped form takes) and says how many more the case's record holds."""
    from sqlalchemy import select

    from service.db.models import Case
    from service.usecases.documents import MAX_PRINTED_CHARS

    case_id = admonishment_to_follow_up(api)
    minutes = "谈话中本人承认存在问题表示将认真整改" * 5_000  # 90,000 characters
    with services.db.unit_of_work() as session:
        case = session.scalar(select(Case).where(Case.id == case_id))
        case.data = {**case.data, "minutes": minutes}
    response = api.get(f"/api/cases/{case_id}/documents/admonishment_record.pdf", as_="discipline")
    text = re.sub(r"第\d+页共\d+页", "", pdf_text(response))  # the page footers, between a text's pages
    assert minutes[:MAX_PRINTED_CHARS] in text and minutes[: MAX_PRINTED_CHARS + 20] not in text
    assert f"以下{len(minutes) - MAX_PRINTED_CHARS}字未打印" in text
    assert len(PdfReader(io.BytesIO(response.data)).pages) <= 12
