"""述职述廉 pages: the public disclosure and rating without login (Chinese, CSRF-protected form, one rating
per address), and the staff list and detail with tallies and comments."""

from __future__ import annotations

import re
import time

from service import create_app
from service.usecases.timers import fire_due_timers
from tests.conftest import SLOW_DEADLINES, Api, copy_database, make_settings
from tests.web.test_web_shell import csrf_token, login

REPORTS = {"duty_report": "全年履职：完成重点项目十二项\n第二段", "integrity_report": "廉洁自律：无违规情况"}


def disclosed(api):
    api.create_cadre("c1")
    case_id = api.post("/api/integrity-reports", as_="org_dept", json={"year": 2026}).json["opened"][0]
    api.complete(case_id, "submit_report", **REPORTS)
    api.complete(case_id, "committee_hearing", opinion="报告客观真实")
    return case_id, api.get("/api/disclosures", as_="org_head").json["items"][0]["id"]


def test_public_list_and_page_need_no_login(client, api):
    """Anyone reads the running disclosures and their reports, in Chinese; unknown ones are a 404 page."""
    assert "目前没有正在公示" in client.get("/disclosures").get_data(as_text=True)
    _case_id, disclosure_id = disclosed(api)
    listing = client.get("/disclosures").get_data(as_text=True)
    assert "张三" in listing and "2026 年度述职述廉" in listing
    page = client.get(f"/disclosures/{disclosure_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "述职报告" in text and "第二段" in text and "满意" in text
    assert 'name="viewport"' in text
    assert client.get("/disclosures/999").status_code == 404


def test_rating_through_the_form_once_per_address(client, api):
    """The form rates once; the same address again is refused with a message (409); tallies show it."""
    _case_id, disclosure_id = disclosed(api)
    url = f"/disclosures/{disclosure_id}"
    token = csrf_token(client, url)
    assert client.post(url, data={"rating": "dissatisfied", "comment": "x"}).status_code == 400  # no CSRF token
    done = client.post(url, data={"rating": "dissatisfied", "comment": "办事拖拉", "csrf_token": token})
    assert done.status_code == 302
    assert "感谢您的评议" in client.get(done.headers["Location"]).get_data(as_text=True)
    again = client.post(url, data={"rating": "satisfied", "csrf_token": token})
    assert again.status_code == 409 and "已评议过" in again.get_data(as_text=True)
    bad = client.post(url, data={"rating": "", "csrf_token": token}, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert bad.status_code == 422
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["dissatisfied"] == 1


def test_the_public_pages_are_kept_by_no_browser_or_proxy(client, api):
    """Like the portal's other pages: a rater's comment, shown back when the form is refused, and the thanks for
    a rating are kept by no shared office PC or proxy, errors included."""
    _case_id, disclosure_id = disclosed(api)
    url = f"/disclosures/{disclosure_id}"
    token = csrf_token(client, url)
    refused = client.post(url, data={"rating": "", "comment": "办事拖拉", "csrf_token": token})
    assert refused.status_code == 422 and "办事拖拉" in refused.get_data(as_text=True)
    for answer in (refused, client.get("/disclosures"), client.get(url), client.get("/disclosures/999")):
        assert answer.headers.get("Cache-Control") == "no-store", answer.request.path


def test_a_comment_with_a_nul_is_422(client, api):
    """PostgreSQL refuses NUL in text: the form names the comment (422), nothing is stored."""
    _case_id, disclosure_id = disclosed(api)
    url = f"/disclosures/{disclosure_id}"
    token = csrf_token(client, url)
    response = client.post(url, data={"rating": "satisfied", "comment": "好\x00", "csrf_token": token})
    assert response.status_code == 422 and "无效字符" in response.get_data(as_text=True)
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 0


def test_a_form_over_a_megabyte_is_413(client, api):
    """The rating form is bounded like the portal's forms: 1.2 MB is a 413 page, and nothing is counted."""
    _case_id, disclosure_id = disclosed(api)
    url = f"/disclosures/{disclosure_id}"
    token = csrf_token(client, url)
    response = client.post(url, data={"rating": "satisfied", "comment": "很" * 400_000, "csrf_token": token})
    assert response.status_code == 413 and response.mimetype == "text/html"
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 0


def test_staff_pages_show_tallies_and_comments(client, api):
    """org_head sees the list with counts and the detail with the comments; designer may not."""
    case_id, disclosure_id = disclosed(api)
    api.client.post(f"/public/disclosures/{disclosure_id}/ratings", json={"rating": "satisfied", "comment": "好评"})
    login(client, "org_head")
    listing = client.get("/integrity-reports").get_data(as_text=True)
    assert "张三" in listing and re.search(r'data-label="满意">1<', listing) and "公示中" in listing
    detail = client.get(f"/integrity-reports/{disclosure_id}").get_data(as_text=True)
    assert "好评" in detail and f"/cases/{case_id}" in detail
    assert client.get("/integrity-reports/999").status_code == 404


def test_org_dept_opens_a_year_from_the_page(client, api):
    """The staff page's button opens the year's reports once."""
    api.create_cadre("c1")
    login(client, "org_dept")
    token = csrf_token(client, "/integrity-reports")
    response = client.post("/integrity-reports/open", data={"year": "2026", "csrf_token": token})
    assert response.status_code == 303
    assert "已启动 1 件述职述廉" in client.get("/integrity-reports").get_data(as_text=True)
    client.post("/integrity-reports/open", data={"year": "2026", "csrf_token": token})
    assert "已启动 0 件述职述廉，1 名干部本年度已有" in client.get("/integrity-reports").get_data(as_text=True)
    assert api.get("/api/cases", query_string={"process": "integrity_report"}).json["total"] == 1


def test_evaluation_summary_page_shows_the_tally_and_comments(role_users_template, tmp_path):
    """org_head's evaluation_summary task page shows the public's tally and comments beside the form."""
    copy_database(role_users_template, tmp_path)
    app = create_app(make_settings(tmp_path, DEADLINES={**SLOW_DEADLINES, "disclosure": "PT3S"}))
    services = app.extensions["cadreflow"]
    try:
        api = Api(app.test_client())
        case_id, disclosure_id = disclosed(api)
        for address, rating, comment in [("192.0.2.1", "satisfied", "踏实肯干"), ("192.0.2.2", "dissatisfied", "")]:
            api.client.post(f"/public/disclosures/{disclosure_id}/ratings",
                            json={"rating": rating, "comment": comment}, environ_base={"REMOTE_ADDR": address})
        time.sleep(3.3)
        fire_due_timers(services)
        task = api.open_task(case_id, "evaluation_summary")
        client = app.test_client()
        login(client, "org_head")
        page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
        assert 'id="disclosure-tally"' in page and "踏实肯干" in page
        assert re.search(r'data-rating="dissatisfied">1<', page) and "共 2 人评议" in page
        api.complete(case_id, "evaluation_summary", conclusion="半数不满意")  # 1 of 2: more than a third
        cadre_page = client.get("/cadres/c1").get_data(as_text=True)
        assert re.search(r'id="integrity-reviews">\s*<li>2026 · 不满意', cadre_page)
    finally:
        services.db.dispose()
