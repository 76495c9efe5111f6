"""Accounts in the browser UI: server-side sessions, login throttling, `next`, password page, admin page, headers."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from service import create_app
from service.cli import init_database
from service.config import SettingsError
from tests.api.support import app_from_template, build_template
from tests.conftest import PASSWORD, make_settings
from tests.web.test_web_shell import csrf_token, login

NEW_PASSWORD = "a-brand-new-pw"


@pytest.fixture(scope="module")
def accounts_template(tmp_path_factory):
    """Users (every role, `norole`, a few more) hashed once for the module, copied for each test."""
    return build_template(tmp_path_factory.mktemp("accounts"))


@pytest.fixture
def app(accounts_template, tmp_path):
    """A fresh copy of the module's database for each test (the `client` fixture uses it)."""
    app = app_from_template(accounts_template, tmp_path / "app")
    yield app
    app.extensions["cadreflow"].db.dispose()


def page_text(response):
    return response.get_data(as_text=True)


def logged_in(client) -> bool:
    response = client.get("/account/password")
    return response.status_code == 200


def copy_cookie(source, target) -> None:
    target.set_cookie("session", source.get_cookie("session").value)


def api_token(client, username, password=PASSWORD):
    response = client.post("/api/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return response.json["token"]


def token_works(client, token) -> bool:
    return client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


class TestServerSideSessions:
    def test_logout_ends_the_session_so_the_old_cookie_opens_nothing(self, app, client):
        """A copy of the cookie taken before logout is refused afterwards."""
        login(client, "org_dept")
        thief = app.test_client()
        copy_cookie(client, thief)
        assert logged_in(thief)
        client.post("/logout", data={"csrf_token": csrf_token(client, "/inbox")})
        assert not logged_in(client)
        response = thief.get("/inbox")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")

    def test_the_cookie_holds_a_random_session_id_not_the_username(self, app, client):
        """Flask-Login's user id in the cookie is a random session id; two logins get two ids."""
        login(client, "org_dept")
        with client.session_transaction() as session:
            first = session["_user_id"]
        other = app.test_client()
        login(other, "org_dept")
        with other.session_transaction() as session:
            second = session["_user_id"]
        assert first != second and "org_dept" not in (first, second) and len(first) >= 32

    def test_login_clears_the_session_and_rotates_the_csrf_token(self, client):
        """Nothing planted before login survives it, and the CSRF token from before login is refused after."""
        before = csrf_token(client)
        with client.session_transaction() as session:
            session["planted"] = "by an attacker"
        response = client.post("/login", data={"username": "org_dept", "password": PASSWORD, "csrf_token": before})
        assert response.status_code == 302
        with client.session_transaction() as session:
            assert "planted" not in session
        assert client.post("/logout", data={"csrf_token": before}).status_code == 400
        assert logged_in(client)

    def test_deactivation_and_role_changes_end_web_sessions_for_good(self, app, client):
        """An admin deactivating or re-roling a user logs that user's browsers out; reactivation revives none."""
        login(client, "audit")
        admin = app.test_client()
        login(admin, "admin")
        token = csrf_token(admin, "/admin/users")
        admin.post("/admin/users/audit/active", data={"active": "0", "csrf_token": token})
        assert not logged_in(client)
        admin.post("/admin/users/audit/active", data={"active": "1", "csrf_token": token})
        assert not logged_in(client)
        login(client, "audit")
        admin.post("/admin/users/audit/roles", data={"roles": ["audit", "audit_head"], "csrf_token": token})
        assert not logged_in(client)


class TestLoginThrottling:
    def test_ten_failures_then_the_right_password_gets_429_with_a_chinese_wait(self, client):
        """The login form answers 429 with Retry-After and a message naming the minutes to wait."""
        for _ in range(10):
            response = client.post("/login", data={"username": "org_dept", "password": "wrong-password",
                                                   "csrf_token": csrf_token(client)})
            assert response.status_code == 401
        response = client.post("/login", data={"username": "org_dept", "password": PASSWORD,
                                               "csrf_token": csrf_token(client)})
        assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
        assert re.search(r"登录失败次数过多，请 1[45] 分钟后再试", page_text(response))
        assert not logged_in(client)

    def test_the_form_and_the_api_share_the_count(self, client):
        """Failures on the form and on /api/auth/token add up for the username."""
        for _ in range(5):
            client.post("/login", data={"username": "audit", "password": "wrong-password",
                                        "csrf_token": csrf_token(client)})
            client.post("/api/auth/token", json={"username": "audit", "password": "wrong-password"})
        assert client.post("/api/auth/token", json={"username": "audit", "password": PASSWORD}).status_code == 429


NEXT_ATTACKS = [
    "/\t/evil.example", "/\r\n/evil.example", "/\n/evil.example", "/x\rSet-Cookie: a=b", "//evil.example",
    "///evil.example", "/\\evil.example", "\\\\evil.example", "/\\/evil.example", "http://evil.example",
    "https:evil.example", "javascript:alert(1)", "evil.example", " /inbox", "/.//evil.example",
    "/ /evil.example", "/％2F/evil", "\t//evil.example", "/inbox?next=//evil", "",
]


class TestNext:
    def test_the_exact_attacks_from_the_report(self, client):
        """`/login?next=/%09/evil.example` and a next with CR/LF end at home, never elsewhere and never a 500."""
        page = page_text(client.get("/login?next=/%09/evil.example"))
        # Only the language switch's own link back to this page remains, never the target itself.
        assert re.findall(r'name="next" value="([^"]*)"', page) == ["/login?next=/%09/evil.example"]
        for target in ("/\t/evil.example", "/\r\n//evil.example"):
            response = client.post("/login", data={"username": "org_dept", "password": PASSWORD, "next": target,
                                                   "csrf_token": csrf_token(client)})
            assert response.status_code == 302 and response.headers["Location"] == "/"

    def test_hostile_targets_fall_back_to_home(self, client):
        """Control characters, backslashes, `//`, schemes or hosts: the login (and the language switch) goes home."""
        for target in NEXT_ATTACKS:
            response = client.post("/login", data={"username": "org_dept", "password": PASSWORD, "next": target,
                                                   "csrf_token": csrf_token(client)})
            assert (response.status_code, response.headers["Location"]) == (302, "/"), repr(target)
            response = client.post("/lang", data={"lang": "en", "next": target, "csrf_token": csrf_token(client)})
            assert (response.status_code, response.headers["Location"]) == (302, "/"), repr(target)

    def test_a_target_with_a_nul_refuses_the_form_and_signs_nobody_in(self, client):
        """A NUL in any form field is refused before the route (service/inputs.py): 422, no session."""
        for url in ("/login", "/lang"):
            response = client.post(url, data={"username": "org_dept", "password": PASSWORD, "lang": "en",
                                              "next": "/inbox\x00", "csrf_token": csrf_token(client)})
            assert response.status_code == 422 and "空字符" in response.get_data(as_text=True), url
        assert client.get("/inbox").status_code == 302  # still signed out

    def test_the_login_page_never_carries_a_hostile_target(self, client):
        """GET /login?next=... renders the hidden field only for a local path."""
        for target in NEXT_ATTACKS:
            page = page_text(client.get("/login", query_string={"next": target}))
            assert 'id="login-next"' not in page, repr(target)
        assert 'id="login-next"' in page_text(client.get("/login?next=/inbox"))

    def test_local_paths_are_kept(self, client):
        """A plain local path (with its query) is where the login goes."""
        for target in ["/inbox", "/cases?status=open&page=2", "/cases/12", "/admin/users#x"]:
            response = client.post("/login", data={"username": "admin", "password": PASSWORD, "next": target,
                                                   "csrf_token": csrf_token(client)})
            assert response.headers["Location"] == target


class TestPasswordPage:
    @pytest.mark.parametrize("username", ["audit", "admin", "designer"])
    def test_every_logged_in_user_reaches_it_from_the_top_bar(self, client, username):
        """The top bar links to the page, which shows the form."""
        login(client, username)
        assert 'href="/account/password"' in page_text(client.get("/", follow_redirects=True))
        assert 'name="old_password"' in page_text(client.get("/account/password"))

    def test_a_user_with_no_role_may_use_it_too(self, client):
        """Changing one's own password needs no role."""
        login(client, "norole")
        assert client.get("/account/password").status_code == 200

    def test_without_login_it_sends_to_the_login_page(self, client):
        """No login: a redirect to /login, for GET and POST alike."""
        assert client.get("/account/password").headers["Location"].startswith("/login")
        response = client.post("/account/password", data={"csrf_token": csrf_token(client)})
        assert response.headers["Location"].startswith("/login")

    def test_changing_keeps_this_browser_and_ends_other_sessions_and_tokens(self, app, client):
        """After the change this browser stays in; another browser and an API token are out."""
        login(client, "discipline")
        other = app.test_client()
        login(other, "discipline")
        token = api_token(app.test_client(), "discipline")
        response = client.post("/account/password", data={
            "old_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
            "csrf_token": csrf_token(client, "/account/password")}, follow_redirects=True)
        assert "密码已修改" in page_text(response)
        assert logged_in(client) and not logged_in(other) and not token_works(client, token)
        assert api_token(app.test_client(), "discipline", NEW_PASSWORD)

    def test_changing_moves_this_browser_to_a_new_session_so_a_copy_of_its_cookie_opens_nothing(self, app, client):
        """Whoever copied this browser's cookie before the change is sent to the login page after it."""
        login(client, "discipline")
        thief = app.test_client()
        copy_cookie(client, thief)
        assert logged_in(thief)
        response = client.post("/account/password", data={
            "old_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
            "csrf_token": csrf_token(client, "/account/password")}, follow_redirects=True)
        assert "密码已修改" in page_text(response)  # the flash survives the new session
        response = thief.get("/inbox")
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        assert not logged_in(thief) and logged_in(client)

    @pytest.mark.parametrize(("old", "new", "confirm", "message"), [
        ("wrong-password", NEW_PASSWORD, NEW_PASSWORD, "原密码不正确"),
        (PASSWORD, "short", "short", "至少 10 个字符"),
        (PASSWORD, "discipline", "discipline", "不能与用户名相同"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "两次输入的新密码不一致"),
    ])
    def test_refusals_say_why_and_change_nothing(self, app, client, old, new, confirm, message):
        """A wrong old password, a weak new one or a mismatch: a Chinese message, the old password still works."""
        login(client, "discipline")
        response = client.post("/account/password", data={
            "old_password": old, "new_password": new, "confirm_password": confirm,
            "csrf_token": csrf_token(client, "/account/password")}, follow_redirects=True)
        assert message in page_text(response)
        assert api_token(app.test_client(), "discipline")

    def test_it_needs_the_csrf_token(self, client):
        """A forged cross-site form is refused."""
        login(client, "discipline")
        response = client.post("/account/password", data={"old_password": PASSWORD, "new_password": NEW_PASSWORD,
                                                           "confirm_password": NEW_PASSWORD})
        assert response.status_code == 400


class TestAdminPage:
    def admin(self, client):
        login(client, "admin")
        return csrf_token(client, "/admin/users")

    def test_the_last_admin_cannot_remove_its_own_role_or_lock_everyone_out(self, client):
        """Unticking admin on the only admin is refused with a message; the admin page still opens."""
        token = self.admin(client)
        response = client.post("/admin/users/admin/roles", data={"roles": ["audit"], "csrf_token": token},
                               follow_redirects=True)
        assert "最后一位在用的系统管理员" in page_text(response)
        assert client.get("/admin/users").status_code == 200

    @pytest.mark.parametrize(("username", "password", "message"), [
        ("new_user", "12345678", "至少 10 个字符"),
        ("new_user", "new_user", "至少 10 个字符"),
        ("new_user_2", "NEW_USER_2", "不能与用户名相同"),
        ("bad name", NEW_PASSWORD, "用户名须为"),
        ("x" * 33, NEW_PASSWORD, "用户名须为"),
    ])
    def test_new_users_follow_the_same_rules(self, client, username, password, message):
        """The admin page refuses what the API refuses, with the reason."""
        token = self.admin(client)
        response = client.post("/admin/users", data={"username": username, "password": password, "roles": ["audit"],
                                                     "csrf_token": token}, follow_redirects=True)
        assert message in page_text(response) and f'data-user="{username}"' not in page_text(response)

    def test_a_password_reset_ends_the_users_sessions(self, app, client):
        """Resetting a password from the admin page logs that user out everywhere; the new password works."""
        user = app.test_client()
        login(user, "audit")
        token = self.admin(client)
        response = client.post("/admin/users/audit/password", data={"password": NEW_PASSWORD, "csrf_token": token},
                               follow_redirects=True)
        assert "已重置 audit 的密码" in page_text(response)
        assert not logged_in(user)
        assert api_token(app.test_client(), "audit", NEW_PASSWORD)

    @pytest.mark.parametrize("route", ["/admin/users/audit/password", "/admin/users/audit/roles",
                                       "/admin/users/audit/active", "/admin/users"])
    def test_other_roles_get_403_and_no_login_goes_to_login(self, app, client, route):
        """Non-admins get 403 on every admin form; anonymous visitors are sent to log in."""
        anonymous = app.test_client()
        response = anonymous.post(route, data={"password": NEW_PASSWORD, "csrf_token": csrf_token(anonymous)})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        login(client, "discipline_head")
        response = client.post(route, data={"password": NEW_PASSWORD, "roles": ["admin"], "username": "x1234",
                                            "csrf_token": csrf_token(client, "/inbox")})
        assert response.status_code == 403
        assert api_token(app.test_client(), "audit")


class TestHeaders:
    @pytest.mark.parametrize("url", ["/inbox", "/cases", "/cases.csv", "/admin/users", "/account/password",
                                     "/cases/424242"])
    def test_pages_of_logged_in_users_are_no_store(self, client, url):
        """Every page a logged-in user gets, errors included, says no-store."""
        login(client, "admin")
        assert client.get(url).headers["Cache-Control"] == "no-store"

    def test_static_assets_stay_cacheable(self, client):
        """Scripts and styles are not confidential."""
        login(client, "admin")
        response = client.get("/assets/style.css")
        assert response.headers.get("Cache-Control") != "no-store"
        response.close()


class TestTransportSecurity:
    """Over https (directly or at a trusted proxy) the cookies are Secure and HSTS is sent; over plain http neither."""

    def test_json_answers_neither_read_nor_set_the_session_cookie(self, client):
        """The API authenticates by bearer token only: a logged-in browser's cookie opens nothing there, and its
        answers set no cookie and do not vary by one (nothing of the session is read for them)."""
        login(client, "audit")
        assert logged_in(client)
        assert client.get("/api/auth/me").status_code == 401
        token = api_token(client, "audit")
        for answer in (client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}),
                       client.get("/api/tasks", headers={"Authorization": f"Bearer {token}"}),
                       client.get("/api/no-such-route")):
            assert answer.status_code in (200, 404), answer.get_data(as_text=True)
            assert "Set-Cookie" not in answer.headers
            assert "Cookie" not in answer.headers.get("Vary", "")
        assert logged_in(client)  # the pages' session is untouched by the API's answers

    def log_in_and_switch_language(self, client, base_url: str = "http://localhost", proto: str = "") -> list:
        """Log in as audit, then switch to English: the two answers that set cookies."""
        # Over https the CSRF check also wants a same-site Referer, as browsers send it.
        how = {"base_url": base_url, "headers": {"Referer": "https://localhost/login",
                                                 **({"X-Forwarded-Proto": proto} if proto else {})}}
        page = client.get("/login", **how).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        login_answer = client.post("/login", data={"username": "audit", "password": PASSWORD, "csrf_token": token},
                                   **how)
        assert login_answer.status_code == 302, login_answer.get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/inbox", **how).get_data(as_text=True))
        return [login_answer, client.post("/lang", data={"lang": "en", "csrf_token": token.group(1)}, **how)]

    def cookie(self, response, name: str) -> str:
        return next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(f"{name}="))

    def assert_secure(self, answers, secure: bool) -> None:
        login_answer, lang_answer = answers
        assert ("; Secure" in self.cookie(login_answer, "session")) is secure
        assert ("; Secure" in self.cookie(lang_answer, "lang")) is secure
        for answer in answers:
            assert answer.headers.get("Strict-Transport-Security") == ("max-age=31536000" if secure else None)

    def test_https_marks_the_cookies_secure_and_sends_hsts(self, app):
        self.assert_secure(self.log_in_and_switch_language(app.test_client(), base_url="https://localhost"), True)

    def test_plain_http_sets_neither(self, client):
        self.assert_secure(self.log_in_and_switch_language(client), False)

    def test_session_cookie_secure_marks_both_cookies_on_plain_http_too(self, accounts_template, tmp_path):
        """SESSION_COOKIE_SECURE = true, for a proxy that does not pass the scheme on: the session and the language
        cookie are Secure although the request came over http (no HSTS: that needs https)."""
        app = app_from_template(accounts_template, tmp_path / "forced", SESSION_COOKIE_SECURE=True)
        try:
            login_answer, lang_answer = self.log_in_and_switch_language(app.test_client())
            assert "; Secure" in self.cookie(login_answer, "session")
            assert "; Secure" in self.cookie(lang_answer, "lang")
        finally:
            app.extensions["cadreflow"].db.dispose()

    @pytest.mark.parametrize(("trusted", "secure"), [(1, True), (0, False)])
    def test_https_at_the_proxy_counts_only_when_the_proxy_is_trusted(self, accounts_template, tmp_path, trusted,
                                                                      secure):
        """X-Forwarded-Proto: https counts behind TRUSTED_PROXIES=1; untrusted, any client could send it."""
        app = app_from_template(accounts_template, tmp_path / "proxy", TRUSTED_PROXIES=trusted)
        try:
            answers = self.log_in_and_switch_language(app.test_client(), proto="https")
            self.assert_secure(answers, secure)
        finally:
            app.extensions["cadreflow"].db.dispose()


class TestForgedCookies:
    def forge(self, key: str, payload: dict) -> str:
        signer = Flask("forger")
        signer.secret_key = key
        return SecureCookieSessionInterface().get_signing_serializer(signer).dumps(payload)

    def test_a_cookie_signed_with_the_old_placeholder_opens_nothing(self, tmp_path):
        """On an instance with its generated key, a cookie signed with `change-me-in-production` is ignored."""
        instance = create_app(make_settings(tmp_path, SECRET_KEY=""))
        init_database(instance.extensions["cadreflow"])
        client = instance.test_client()
        for user_id in ("admin", "any-session-id"):
            client.set_cookie("session", self.forge("change-me-in-production", {"_user_id": user_id, "_fresh": True}))
            response = client.get("/admin/users")
            assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        instance.extensions["cadreflow"].db.dispose()

    @pytest.mark.parametrize("key", ["change-me-in-production", "test", "short-but-random-Xk9", "a" * 40,
                                     "ab" * 20, 12345])
    def test_weak_or_placeholder_keys_are_refused_at_start(self, tmp_path, key):
        """create_app refuses a known placeholder, a key under 32 characters, or one with little variety."""
        with pytest.raises(SettingsError, match="SECRET_KEY"):
            create_app(make_settings(tmp_path, SECRET_KEY=key))


HOSTILE_FORMS = [{}, {"old_password": "x" * 100_000, "new_password": "y" * 100_000, "confirm_password": "y" * 100_000},
                 {"old_password": "\x00", "new_password": "\x00" * 12, "confirm_password": "\x00" * 12},
                 {"password": " " * 5}, {"password": ""}]


class TestHostileForms:
    def test_the_password_forms_never_500_and_change_nothing(self, app, client):
        """Missing, huge or NUL-filled fields on the own-password and admin reset forms: feedback (a NUL: the
        422 page every form gets for one), no change."""
        login(client, "admin")
        for form in HOSTILE_FORMS:
            expected = 422 if any("\x00" in value for value in form.values()) else 302
            for url in ("/account/password", "/admin/users/audit/password"):
                response = client.post(url, data={**form, "csrf_token": csrf_token(client, "/admin/users")})
                assert response.status_code == expected, (url, response.status_code)
        assert api_token(app.test_client(), "audit") and api_token(app.test_client(), "admin")
