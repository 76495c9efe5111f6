"""Notifications in the browser UI (Flask test client): the bell, the page, opening and marking, mail settings."""

from __future__ import annotations

import re

from tests.api import support
from tests.api.support import start_accountability
from tests.web.test_web_shell import csrf_token, login

# The fast fixtures of tests/api: users and tokens made once, a copy of the database per test.
template, app, api, cadre = support.template, support.app, support.api, support.cadre


def text(response) -> str:
    return response.get_data(as_text=True)


def bell_count(client) -> str | None:
    found = re.search(r'class="bell-count" data-count="(\d+)"', text(client.get("/notifications")))
    return found.group(1) if found else None


def note_ids(client, query: str = "") -> list[int]:
    page = text(client.get("/notifications" + query))
    return [int(i) for i in re.findall(r'class="note[^"]*" data-id="(\d+)"', page)]


def test_the_bell_counts_unread_and_the_page_lists_them(client, api, cadre):
    """Two new tasks: the bell shows 2 on every page; the page lists both, newest first, with their text."""
    login(client, "discipline")
    assert bell_count(client) is None and "暂无通知" in text(client.get("/notifications"))
    ids = [start_accountability(api)["id"] for _ in range(2)]
    assert 'data-count="2"' in text(client.get("/inbox"))
    page = text(client.get("/notifications"))
    assert page.index(f"案件 #{ids[1]}") < page.index(f"案件 #{ids[0]}") and "新任务：初步核实" in page
    assert len(note_ids(client)) == 2


def test_opening_marks_read_and_goes_to_the_task(client, api, cadre):
    """"查看任务" (a POST) marks the notification read and redirects to its task page."""
    case = start_accountability(api)
    login(client, "discipline")
    [note] = note_ids(client)
    response = client.post(f"/notifications/{note}/open", data={"csrf_token": csrf_token(client, "/notifications")})
    assert response.status_code == 302 and response.headers["Location"] == f"/tasks/{case['open_tasks'][0]['id']}"
    assert bell_count(client) is None and note_ids(client, "?unread=1") == []


def test_mark_one_and_all_read(client, api, cadre):
    """"标为已读" marks one; "全部标为已读" the rest; read ones stay listed."""
    for _ in range(3):
        start_accountability(api)
    login(client, "discipline")
    first = note_ids(client)[0]
    token = csrf_token(client, "/notifications")
    assert client.post(f"/notifications/{first}/read", data={"csrf_token": token}).status_code == 302
    assert bell_count(client) == "2"
    assert client.post("/notifications/read-all", data={"csrf_token": token}).status_code == 302
    assert bell_count(client) is None and len(note_ids(client)) == 3


def test_another_users_notification_is_a_404_page(client, api, cadre):
    """Opening or marking someone else's notification shows the 404 page and changes nothing."""
    start_accountability(api)
    login(client, "discipline")
    [theirs] = note_ids(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/notifications")})
    login(client, "discipline2")
    token = csrf_token(client, "/notifications")
    for action in ("open", "read"):
        assert client.post(f"/notifications/{theirs}/{action}", data={"csrf_token": token}).status_code == 404
    assert client.post("/notifications/999999999999999999999/read", data={"csrf_token": token}).status_code == 404
    assert api.get("/api/notifications", as_="discipline").json["unread"] == 1


def test_posts_need_the_csrf_token_and_pages_a_login(client):
    """Without a session the page redirects to the login; without a CSRF token a POST is refused."""
    response = client.get("/notifications")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    login(client, "discipline")
    assert client.post("/notifications/read-all").status_code == 400


def test_users_set_their_address_on_the_account_page_and_admins_on_the_users_page(client, api):
    """The account page saves my address and digest choice; the admin page sets anyone's; bad ones are refused."""
    login(client, "audit")
    token = csrf_token(client, "/account/password")
    client.post("/account/mail", data={"csrf_token": token, "email": "audit@example.gov.cn", "mail_digest": "1"})
    assert api.get("/api/me/mail", as_="audit").json == {"email": "audit@example.gov.cn", "mail_digest": True}
    page = text(client.get("/account/password"))
    assert 'value="audit@example.gov.cn"' in page and "邮件提醒设置已保存" in page
    response = client.post("/account/mail", data={"csrf_token": token, "email": "x@y\r\nBcc: z@w.cn"},
                           follow_redirects=True)
    assert "邮箱地址格式不正确" in text(response)
    assert api.get("/api/me/mail", as_="audit").json["email"] == "audit@example.gov.cn"
    client.post("/logout", data={"csrf_token": token})
    login(client, "admin")
    client.post("/admin/users/committee/mail", data={"csrf_token": csrf_token(client, "/admin/users"),
                                                      "email": "committee@example.gov.cn"})
    assert api.get("/api/me/mail", as_="committee").json == {"email": "committee@example.gov.cn", "mail_digest": False}
