"""The browser UI through Flask's test client: login, CSRF, roles, errors, headers, language."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


def csrf_token(client, url: str = "/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def login(client, username: str) -> None:
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)


class TestLogin:
    def test_pages_need_a_login(self, client):
        response = client.get("/inbox")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")

    def test_wrong_password_is_refused_in_chinese(self, client):
        response = client.post("/login", data={"username": "org_dept", "password": "nope",
                                               "csrf_token": csrf_token(client)})
        assert response.status_code == 401 and "用户名或密码错误" in response.get_data(as_text=True)

    def test_next_never_leaves_the_site(self, client):
        token = csrf_token(client)
        response = client.post("/login", data={"username": "org_dept", "password": PASSWORD, "csrf_token": token,
                                               "next": "//evil.example/"})
        assert response.headers["Location"] == "/"

    def test_session_cookie_is_httponly_and_samesite(self, client):
        login(client, "org_dept")
        cookie = client.get_cookie("session")
        assert cookie.http_only and cookie.same_site == "Lax"

    def test_logout_needs_the_csrf_token(self, client):
        login(client, "org_dept")
        assert client.post("/logout").status_code == 400
        assert client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox")}).status_code == 302
        assert client.get("/inbox").status_code == 302


class TestCsrfAndApi:
    def test_a_form_without_token_is_refused_with_an_html_page(self, client):
        response = client.post("/login", data={"username": "org_dept", "password": PASSWORD})
        assert response.status_code == 400 and "安全校验失败" in response.get_data(as_text=True)

    def test_the_json_api_needs_no_csrf_token_and_keeps_json_errors(self, api):
        assert api.post("/api/cadres", as_="org_dept", json={"name": "x"}).status_code == 422
        response = api.get("/api/cases/999999")
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
        assert api.client.get("/api/nothing-here").json["error"]["code"] == "not_found"


class TestRolesAndErrors:
    @pytest.mark.parametrize(("user", "areas"), [
        ("audit", ["inbox", "cases", "cadres", "integrity"]),
        ("designer", ["designer"]),
        ("discipline", ["inbox", "start", "cases", "reports", "cadres", "integrity", "dashboard", "watchlist"]),
        ("discipline_head", ["inbox", "cases", "reports", "cadres", "integrity", "dashboard", "watchlist",
                             "access_log", "account_log"]),
        ("admin", ["inbox", "start", "cases", "reports", "cadres", "integrity", "dashboard", "watchlist", "designer",
                   "access_log", "account_log", "admin", "roles"]),
    ])
    def test_navigation_shows_what_the_roles_open(self, client, user, areas):
        login(client, user)
        page = client.get("/inbox" if "inbox" in areas else "/designer").get_data(as_text=True)
        assert re.findall(r'data-area="(\w+)"', page) == areas

    def test_forbidden_and_unknown_pages_are_html(self, client):
        login(client, "audit")
        forbidden = client.get("/designer")
        assert forbidden.status_code == 403 and "无权访问" in forbidden.get_data(as_text=True)
        missing = client.get("/cases/424242")
        assert missing.status_code == 404 and "text/html" in missing.content_type

    def test_html_pages_carry_security_headers(self, client):
        response = client.get("/login")
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"  # an opener from elsewhere holds nothing
        assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"  # nor embeds our pages or files


class TestLanguage:
    def test_chinese_by_default_and_english_on_request(self, client):
        login(client, "org_dept")
        assert "我的待办" in client.get("/inbox").get_data(as_text=True)
        client.post("/lang", data={"lang": "en", "next": "/inbox", "csrf_token": csrf_token(client, "/inbox")})
        page = client.get("/inbox").get_data(as_text=True)
        assert "My inbox" in page and '<html lang="en">' in page
