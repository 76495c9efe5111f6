"""The portal's pages through Flask's test client: report and follow it without login (CSRF and proof of
work as a browser sends them), objections on the notices page, and the staff's report pages."""

from __future__ import annotations

import re

from service.usecases import proof
from tests.api.support import vetting_to_notice
from tests.conftest import PASSWORD
from tests.sql import statements_sent

FORM = {"subject_name": "张三", "subject_unit": "县交通局局长", "category": "inaction",
        "content": "道路问题长期不予处理。", "contact": "13800000000"}


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def browser_fields(client, url: str) -> dict[str, str]:
    """The hidden fields of the page's form, the challenge solved as its script would."""
    html = client.get(url).get_data(as_text=True)
    challenge, bits = hidden(html, "pow_challenge"), int(re.search(r'data-bits="(\d+)"', html).group(1))
    return {"csrf_token": hidden(html, "csrf_token"), "pow_challenge": challenge,
            "pow_nonce": proof.solve(challenge, bits)}


def login(client, username: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": hidden(html, "csrf_token")})
    assert response.status_code == 302


def submit(client) -> tuple[str, str]:
    response = client.post("/report", data={**FORM, **browser_fields(client, "/report")})
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    code = re.search(r'id="tracking-code">([^<]+)<', html).group(1)
    key = re.search(r'id="query-key">([^<]+)<', html).group(1)
    return code, key


def test_report_page_submit_and_follow(api, cadre):
    client = api.client.application.test_client()
    page = client.get("/report")
    assert page.status_code == 200 and "网络举报平台" in page.get_data(as_text=True)
    code, key = submit(client)
    tracked = track(client, code, key)
    assert tracked.status_code == 200
    assert "已受理，待分流" in tracked.get_data(as_text=True) and "13800000000" not in tracked.get_data(as_text=True)
    unknown, wrong = track(client, "JBNOSUCHCODE", key), track(client, code, "wrong")
    assert unknown.status_code == wrong.status_code == 404
    assert "查询码或查询密钥不正确。" in wrong.get_data(as_text=True)
    assert page_text(unknown).replace("JBNOSUCHCODE", code) == page_text(wrong)  # no hint which one was wrong


def page_text(response) -> str:
    """The page without its CSRF tokens, which carry a timestamp and so differ across a second's edge."""
    html = response.get_data(as_text=True)
    return re.sub(r'(name="csrf[-_]token" (?:value|content)=)"[^"]*"', r"\1", html)


def track(client, code: str, key: str):
    """The track page's form as a browser posts it: code and key in the body, with the page's CSRF token."""
    token = hidden(client.get("/report/track").get_data(as_text=True), "csrf_token")
    return client.post("/report/track", data={"csrf_token": token, "code": code, "key": key})


def test_the_pages_that_show_a_code_key_or_reply_are_kept_by_no_browser_or_proxy(api, cadre):
    """A shared office PC or a proxy must not keep the confirmation (code and key) or the track result."""
    client = api.client.application.test_client()
    response = client.post("/report", data={**FORM, **browser_fields(client, "/report")})
    assert response.status_code == 200 and 'id="query-key"' in response.get_data(as_text=True)
    assert response.headers.get("Cache-Control") == "no-store"
    code, key = submit(client)
    for answer in (track(client, code, key), track(client, code, "wrong"), client.get("/report/track"),
                   client.get("/report"), client.get("/notices"),
                   client.post("/report", data={**FORM, "content": "<b>x</b>", **browser_fields(client, "/report")})):
        assert answer.headers.get("Cache-Control") == "no-store", answer.request.path
    script = client.get("/portal-static/portal.js")
    script.close()
    assert script.status_code == 200 and "no-store" not in script.headers.get("Cache-Control", "")  # may be kept


def test_the_track_form_posts_so_the_key_is_never_in_a_url(api, cadre):
    client = api.client.application.test_client()
    code, key = submit(client)
    html = client.get("/report/track").get_data(as_text=True)
    form = re.search(r"<form [^>]*>", html.split('class="public-nav"')[1]).group(0)
    assert 'method="post"' in form and 'action="/report/track"' in form and 'name="csrf_token"' in html
    assert track(client, code, key).status_code == 200
    no_token = client.post("/report/track", data={"code": code, "key": key})
    assert no_token.status_code == 400 and "已受理，待分流" not in no_token.get_data(as_text=True)


def test_a_code_and_key_in_the_query_show_nothing_of_the_report(api, cadre):
    """An old link or bookmark with the key in its URL no longer works: it is sent to the empty form."""
    client = api.client.application.test_client()
    code, key = submit(client)
    response = client.get("/report/track", query_string={"code": code, "key": key})
    assert response.status_code == 302 and response.headers["Location"] == "/report/track"
    followed = client.get("/report/track", query_string={"code": code, "key": key}, follow_redirects=True)
    html = followed.get_data(as_text=True)
    assert followed.status_code == 200 and followed.request.path == "/report/track" and not followed.request.args
    assert "已受理，待分流" not in html and "track-status" not in html and code not in html and key not in html
    handed = client.post("/report", data={**FORM, **browser_fields(client, "/report")}).get_data(as_text=True)
    assert 'href="/report/track"' in handed and "/report/track?" not in handed


def test_report_page_keeps_values_and_names_the_bad_field(api):
    client = api.client.application.test_client()
    response = client.post("/report", data={**FORM, "content": "<a href=x>看这里</a>",
                                            **browser_fields(client, "/report")})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "只接受纯文本" in html and "县交通局局长" in html


def test_a_report_page_post_without_the_work_is_refused(api):
    client = api.client.application.test_client()
    fields = browser_fields(client, "/report")
    response = client.post("/report", data={**FORM, "csrf_token": fields["csrf_token"]})
    assert response.status_code == 400


def test_objection_from_the_notices_page(api, cadre):
    case_id = vetting_to_notice(api)
    client = api.client.application.test_client()
    html = client.get("/notices").get_data(as_text=True)
    assert f"notice-{case_id}" in html and "县发改局局长" in html
    response = client.post(f"/notices/{case_id}/objections",
                           data={"content": "反映问题", "contact": "13700000000", **browser_fields(client, "/notices")})
    assert response.status_code == 200 and "异议已提交" in response.get_data(as_text=True)
    again = client.post(f"/notices/{case_id}/objections",
                        data={"content": "再次反映", **browser_fields(client, "/report")})
    assert again.status_code == 409 and "公示期已结束" in again.get_data(as_text=True)
    staff = api.client.application.test_client()
    login(staff, "discipline")
    listed = staff.get("/reports").get_data(as_text=True)
    assert "反映问题" in listed and "13700000000" in listed
    org = api.client.application.test_client()
    login(org, "org_dept")
    assert "13700000000" not in org.get(f"/cases/{case_id}").get_data(as_text=True)


def test_staff_pages_show_the_report_and_its_contact_to_discipline_only(api, cadre):
    submit(api.client.application.test_client())
    case_id = api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["items"][0]["id"]
    staff = api.client.application.test_client()
    login(staff, "discipline")
    inbox = staff.get("/reports").get_data(as_text=True)
    assert "张三" in inbox and "分流" in inbox
    for page in ("/inbox", "/cases", "/cases.csv", "/dashboard", "/cases?process=public_report"):
        assert staff.get(page).status_code == 200, page
    file = staff.get(f"/reports/{case_id}").get_data(as_text=True)
    assert "13800000000" in file and "已受理，待分流" in file
    assert staff.get(f"/cases/{case_id}").status_code == 200
    api.complete(case_id, "triage_report", decision="accountability", cadre_id="c1")
    api.complete(case_id, "reply_to_reporter", reply="已立案问责。")
    file = staff.get(f"/reports/{case_id}").get_data(as_text=True)
    assert "已立案问责。" in file and "已启动问责" in file
    other = api.client.application.test_client()
    login(other, "committee")
    assert other.get("/reports").status_code == 403
    assert other.get(f"/reports/{case_id}").status_code == 403


def test_discipline_starts_a_hotline_report_on_the_start_page_without_a_cadre(api, cadre):
    staff = api.client.application.test_client()
    login(staff, "discipline")
    html = staff.get("/cases/new?process=public_report").get_data(as_text=True)
    assert "暂不关联（分流时关联）" in html
    response = staff.post("/cases/new", data={
        "csrf_token": hidden(html, "csrf_token"), "process": "public_report", "cadre_id": "", "channel": "hotline",
        "subject_name": "李四", "subject_unit": "县水务局", "category": "other", "content": "电话反映问题"})
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    case = api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["items"][0]
    assert (case["cadre_id"], case["data"]["channel"]) == (None, "hotline")


def test_a_page_post_with_a_non_ascii_challenge_is_an_invalid_proof(api, cadre):
    """The form's challenge is text anyone can change: a non-ASCII one is a 400, never a 500."""
    case_id = vetting_to_notice(api)
    client = api.client.application.test_client()
    for form, url, data in (("/report", "/report", FORM), ("/notices", f"/notices/{case_id}/objections",
                                                         {"content": "反映问题"})):
        fields = browser_fields(client, form)
        fields["pow_challenge"] = fields["pow_challenge"].split(".")[0] + ".é"
        assert client.post(url, data={**data, **fields}).status_code == 400, url
    assert api.get("/api/cases", as_="discipline", query_string={"process": "public_report"}).json["total"] == 0


def test_the_track_page_refuses_a_code_with_a_nul(api):
    """As every form field with a NUL (service/inputs.py): 422, the field named, never a 500."""
    client = api.client.application.test_client()
    response = track(client, "JB\x00", "x")
    assert response.status_code == 422 and "空字符" in response.get_data(as_text=True)


def test_public_forms_over_the_bound_are_413_before_the_csrf_check_reads_them(api):
    """A 9 MB form is refused by PUBLIC_MAX_BODY (413) before the app-wide CSRF check would parse it."""
    client = api.client.application.test_client()
    body = (b'--b\r\nContent-Disposition: form-data; name="content"; filename="big.txt"\r\n\r\n'
            + b"x" * 9 * 1024 * 1024 + b"\r\n--b--\r\n")
    for url in ("/report", "/notices/1/objections", "/disclosures/1", "/login"):
        response = client.post(url, data=body, content_type="multipart/form-data; boundary=b")
        assert response.status_code == 413, (url, response.status_code)


def reads(sent: list) -> list:
    return [statement for statement in sent if not statement.starts("UPDATE web_sessions")]


def test_the_triage_inbox_is_paged_in_sql_with_the_same_reads_whatever_its_size(api, cadre):
    """A flood of anonymous reports must not slow the discipline roles' page: 50 a page, oldest first, and the
    page's statements do not grow with the reports on it (each row's open tasks are read for all at once)."""
    for n in range(53):
        api.post("/api/cases", as_="discipline", json={"process": "public_report", "data": {
            "channel": "hotline", "subject_name": f"被举报人{n:02d}", "subject_unit": "县水务局", "category": "other",
            "content": "电话反映问题"}})
    staff = api.client.application.test_client()
    login(staff, "discipline")
    db = api.client.application.extensions["cadreflow"].db
    staff.get("/reports?page=2")  # the session's and the roles' caches are filled before counting
    with statements_sent(db) as first_page:
        html = staff.get("/reports").get_data(as_text=True)
    listed = re.findall(r"被举报人(\d\d)", html)
    assert listed == [f"{n:02d}" for n in range(50)] and 'rel="next"' in html and "第 1 / 2 页" in html
    with statements_sent(db) as last_page:
        html = staff.get("/reports?page=2").get_data(as_text=True)
    assert re.findall(r"被举报人(\d\d)", html) == ["50", "51", "52"] and 'rel="prev"' in html
    # 50 rows or 3, the same reads (but the session's once-a-minute note of its last request, which a slow
    # machine may reach between the two pages)
    assert len(reads(first_page)) == len(reads(last_page))
    beyond = staff.get("/reports?page=9").get_data(as_text=True)  # a page past the end shows the last one
    assert re.findall(r"被举报人(\d\d)", beyond) == ["50", "51", "52"]


def expired_fields(client) -> dict[str, str]:
    """The page's fields with a challenge as the page handed it out long ago (past PUBLIC_POW_TTL), solved."""
    fields = browser_fields(client, "/report")
    key = str(client.application.secret_key)
    old = proof.issue(key, 4, 900, now=1_000_000.0)["challenge"]
    return {**fields, "pow_challenge": old, "pow_nonce": proof.solve(old, 4)}


def test_a_report_written_longer_than_the_challenge_lives_is_sent_back_filled_in(api):
    """A long report outlives its page's challenge: the reporter gets the form back with every word and a fresh
    challenge (the page's script solves it on the next submit), not an error page that loses the text."""
    client = api.client.application.test_client()
    long_text = "道路问题长期不予处理，" * 500
    response = client.post("/report", data={**FORM, "content": long_text, **expired_fields(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "验证已过期" in html and long_text in html and "县交通局局长" in html
    assert 'name="pow_challenge"' in html and 'name="pow_nonce" value=""' in html
    resent = {**FORM, "content": long_text, "csrf_token": hidden(html, "csrf_token")}
    challenge = hidden(html, "pow_challenge")
    resent |= {"pow_challenge": challenge, "pow_nonce": proof.solve(challenge, int(re.search(
        r'data-bits="(\d+)"', html).group(1)))}
    assert client.post("/report", data=resent).status_code == 200


def test_a_report_past_the_address_limit_is_sent_back_filled_in_with_the_wait(api):
    client = api.client.application.test_client()
    limit = int(api.client.application.extensions["cadreflow"].settings["PUBLIC_POST_LIMIT"])
    for _ in range(limit):
        client.post("/report", data={**FORM, **browser_fields(client, "/report")})
    last = {**FORM, "content": "第二十一件举报的全文。", **browser_fields(client, "/report")}
    response = client.post("/report", data=last)
    html = response.get_data(as_text=True)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert "第二十一件举报的全文。" in html and "提交过于频繁" in html


def test_an_objection_refused_for_its_challenge_keeps_its_text_and_contact(api, cadre):
    case_id = vetting_to_notice(api)
    client = api.client.application.test_client()
    response = client.post(f"/notices/{case_id}/objections",
                           data={"content": "公示对象存在问题。", "contact": "13700000000", **expired_fields(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "验证已过期" in html
    assert "公示对象存在问题。" in html and 'value="13700000000"' in html
