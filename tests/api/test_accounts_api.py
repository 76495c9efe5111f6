"""Accounts over the API: changing one's password, users (admin), login throttling, ending tokens, headers."""

from __future__ import annotations

import json
import time

import pytest

from service.usecases import logins, users
from service.usecases.context import Actor
from tests.api.support import (
    CLIENT_ERRORS,
    USERS,
    app_from_template,
    assert_error,
    make_api,
    start_accountability,
)
from tests.api.test_errors import HOSTILE_JSON, HOSTILE_RAW
from tests.conftest import PASSWORD
from tests.web.test_web_shell import csrf_token
from tests.web.test_web_shell import login as web_login

NEW_PASSWORD = "a-brand-new-pw"
NON_ADMINS = ["org_dept", "discipline", "discipline_head", "designer", "audit"]


def login(api, username, password=PASSWORD, address="127.0.0.1"):
    return api.client.post("/api/auth/token", json={"username": username, "password": password},
                           environ_base={"REMOTE_ADDR": address})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def works(api, token):
    return api.client.get("/api/auth/me", headers=bearer(token)).status_code == 200


def web_open(browser) -> bool:
    """Whether the browser's session cookie still opens a page (no redirect to /login)."""
    return browser.get("/account/password").status_code == 200


def web_login_as(app, username, password) -> bool:
    browser = app.test_client()
    browser.post("/login", data={"username": username, "password": password, "csrf_token": csrf_token(browser)})
    return web_open(browser)


def fresh_token(api, username, password=PASSWORD):
    response = login(api, username, password)
    assert response.status_code == 200, response.json
    return response.json["token"]


class TestChangeOwnPassword:
    def test_the_calling_token_stays_and_every_other_token_ends(self, api):
        """204; the token of the call still works, the user's other tokens do not, the new password logs in."""
        caller, other = fresh_token(api, "audit"), fresh_token(api, "audit")
        response = api.client.post("/api/auth/password", headers=bearer(caller),
                                   json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert response.status_code == 204 and response.get_data() == b""
        assert works(api, caller) and not works(api, other)
        assert_error(login(api, "audit"), 401)
        assert login(api, "audit", NEW_PASSWORD).status_code == 200
        assert works(api, fresh_token(api, "audit2"))  # other users keep theirs

    def test_a_change_over_the_api_ends_the_users_web_sessions_too(self, api, app):
        """The contract's "every other token and web session": a browser logged in before the change is logged
        out for good; one logging in with the new password gets in."""
        browser = app.test_client()
        web_login(browser, "audit")
        assert web_open(browser)
        response = api.post("/api/auth/password", as_="audit",
                            json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert response.status_code == 204 and not web_open(browser)
        assert web_login_as(app, "audit", NEW_PASSWORD)

    def test_a_user_without_roles_may_change_its_password(self, api):
        """Changing one's own password needs a login, not a role."""
        token = fresh_token(api, "norole")
        response = api.client.post("/api/auth/password", headers=bearer(token),
                                   json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert response.status_code == 204

    def test_without_login_it_is_401(self, api):
        """No token or a bad token: 401."""
        body = {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
        assert_error(api.client.post("/api/auth/password", json=body), 401, "unauthorized")
        assert_error(api.client.post("/api/auth/password", json=body, headers=bearer("nope")), 401)

    @pytest.mark.parametrize(("body", "field"), [
        ({"old_password": "wrong-password", "new_password": NEW_PASSWORD}, "old_password"),
        ({"old_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"old_password": PASSWORD, "new_password": "discipline"}, "new_password"),
        ({"old_password": PASSWORD, "new_password": "DISCIPLINE"}, "new_password"),
        ({"old_password": PASSWORD, "new_password": PASSWORD}, "new_password"),
        ({"old_password": PASSWORD, "new_password": "x" * 129}, "new_password"),
        ({"old_password": PASSWORD, "new_password": 1234567890123}, "new_password"),
        ({"old_password": PASSWORD, "new_password": None}, "new_password"),
        ({"old_password": None, "new_password": NEW_PASSWORD}, "old_password"),
        ({"new_password": NEW_PASSWORD}, "old_password"),
        ({"old_password": PASSWORD, "new_password": NEW_PASSWORD, "username": "admin"}, "username"),
    ])
    def test_bad_input_is_422_naming_the_field_and_changes_nothing(self, api, body, field):
        """Wrong old password, a password the policy refuses, wrong types or unknown keys: 422 and no change."""
        token = fresh_token(api, "discipline")
        response = api.client.post("/api/auth/password", headers=bearer(token), json=body)
        assert field in assert_error(response, 422)["fields"]
        assert works(api, token) and login(api, "discipline").status_code == 200

    def test_a_change_checked_just_before_an_admin_reset_does_not_undo_it(self, api, monkeypatch):
        """An admin resets audit2's password (say, its account was taken over) while audit2's own change, its old
        password checked just before, is in flight: the reset stands (422 on old_password, the old password is no
        longer current), and the change's new password opens nothing."""
        services, check = api.client.application.extensions["cadreflow"], logins.check_password_hash
        token = fresh_token(api, "audit2")

        def check_then_reset(stored: str, password: str) -> bool:
            right = check(stored, password)
            monkeypatch.setattr(logins, "check_password_hash", check)
            users.update_user(services, Actor("admin", frozenset({"admin"})), "audit2", password="admins-new-pw")
            return right

        monkeypatch.setattr(logins, "check_password_hash", check_then_reset)
        response = api.client.post("/api/auth/password", headers=bearer(token),
                                   json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert "old_password" in assert_error(response, 422)["fields"]
        assert_error(login(api, "audit2", NEW_PASSWORD), 401)
        assert login(api, "audit2", "admins-new-pw").status_code == 200

    def test_guessing_the_old_password_is_throttled_like_a_login(self, api):
        """Wrong old passwords count as failed logins of that user: past the limit, 429."""
        token = fresh_token(api, "committee")
        body = {"old_password": "guess-guess", "new_password": NEW_PASSWORD}
        for _ in range(10):
            assert api.client.post("/api/auth/password", headers=bearer(token), json=body).status_code == 422
        response = api.client.post("/api/auth/password", headers=bearer(token),
                                   json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
        assert_error(response, 429, "too_many_attempts")
        assert int(response.headers["Retry-After"]) > 0


class TestUsersApi:
    def test_admin_lists_creates_and_changes_users(self, api):
        """GET lists, POST creates (201), PATCH changes roles, active and password."""
        created = api.post("/api/users", json={"username": "new.user-1", "password": NEW_PASSWORD,
                                               "roles": ["audit"]})
        assert created.status_code == 201 and created.json == {"username": "new.user-1", "roles": ["audit"],
                                                               "active": True, "email": "", "mail_digest": False}
        listed = {u["username"]: u for u in api.get("/api/users").json}
        assert listed["new.user-1"]["roles"] == ["audit"] and listed["admin"]["roles"] == ["admin"]
        changed = api.patch("/api/users/new.user-1", json={"roles": ["audit", "audit_head"], "active": False})
        assert changed.status_code == 200 and changed.json == {"username": "new.user-1",
                                                               "roles": ["audit", "audit_head"], "active": False,
                                                               "email": "", "mail_digest": False}
        assert_error(login(api, "new.user-1", NEW_PASSWORD), 401)
        api.patch("/api/users/new.user-1", json={"active": True, "password": "another-password"})
        assert login(api, "new.user-1", "another-password").status_code == 200

    @pytest.mark.parametrize("role", [*NON_ADMINS, "norole"])
    def test_other_roles_get_403_and_change_nothing(self, api, role):
        """Every role but admin (and a user with no role) is refused on every users route."""
        assert_error(api.get("/api/users", as_=role), 403, "forbidden")
        assert_error(api.post("/api/users", as_=role, json={"username": "x1", "password": NEW_PASSWORD,
                                                             "roles": ["admin"]}), 403)
        assert_error(api.patch(f"/api/users/{role}", as_=role, json={"roles": ["admin"]}), 403)
        listed = {u["username"]: u["roles"] for u in api.get("/api/users").json}
        assert "x1" not in listed and "admin" not in listed[role]

    def test_no_login_is_401(self, api):
        """Without a token every users route answers 401."""
        assert_error(api.client.get("/api/users"), 401)
        assert_error(api.client.post("/api/users", json={}), 401)
        assert_error(api.client.patch("/api/users/audit", json={}), 401)

    @pytest.mark.parametrize(("body", "field"), [
        ({"username": "a" * 33, "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": "bad name", "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": "../etc", "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": "..", "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": "张三", "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": "", "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": ["x"], "password": NEW_PASSWORD, "roles": []}, "username"),
        ({"username": "ok_name", "password": "123456789", "roles": []}, "password"),
        ({"username": "ok_name", "password": "ok_name", "roles": []}, "password"),
        ({"username": "ok_name", "password": "aaaaaaaaaa", "roles": []}, "password"),
        ({"username": "ok_name", "password": "1212121212", "roles": []}, "password"),
        ({"username": "ok_name", "password": "1234567890", "roles": []}, "password"),
        ({"username": "ok_name", "password": "WoAini1314", "roles": []}, "password"),
        ({"username": "ok_name", "password": "my-OK_name-2026", "roles": []}, "password"),
        ({"username": "ok_name", "password": NEW_PASSWORD, "roles": ["root"]}, "roles"),
        ({"username": "ok_name", "password": NEW_PASSWORD, "roles": "admin"}, "roles"),
        ({"username": "ok_name", "password": NEW_PASSWORD, "roles": [1]}, "roles"),
        ({"username": "ok_name", "password": NEW_PASSWORD, "roles": [], "active": False}, "active"),
    ])
    def test_bad_new_users_are_422(self, api, body, field):
        """Usernames outside `[A-Za-z0-9_.-]{1,32}`, weak passwords, unknown roles: 422 naming the field."""
        assert field in assert_error(api.post("/api/users", json=body), 422)["fields"]
        assert len(api.get("/api/users").json) == len(USERS)

    def test_an_existing_name_is_409(self, api):
        """Creating a user that exists is a conflict, not a password reset."""
        assert_error(api.post("/api/users", json={"username": "audit", "password": NEW_PASSWORD, "roles": []}), 409)
        assert login(api, "audit").status_code == 200

    def test_a_name_that_passes_for_another_is_refused(self, api):
        """Audit finding: `Admin`, `admin.` and `org_head.` were created beside `admin` and `org_head`, to appear
        in pickers and histories as them. Letter case alone is 409, a dot at either end 422; nothing is created."""
        for lookalike in ("Admin", "ORG_HEAD", "Audit"):
            refused = api.post("/api/users", json={"username": lookalike, "password": NEW_PASSWORD, "roles": []})
            assert "username" in assert_error(refused, 409)["fields"]
        for dotted in ("admin.", ".org_head", "new.user."):
            refused = api.post("/api/users", json={"username": dotted, "password": NEW_PASSWORD, "roles": []})
            assert "username" in assert_error(refused, 422)["fields"]
        assert len(api.get("/api/users").json) == len(USERS)
        created = api.post("/api/users", json={"username": "zhang.san", "password": NEW_PASSWORD, "roles": []})
        assert created.status_code == 201, created.json

    def test_the_services_own_name_is_reserved(self, api):
        """The history names the service's own steps (timers, retries, child cases) `system`: a person named so,
        in any letter case, would pass for them there, and would never be noted as a case's participant."""
        for name in ("system", "System", "SYSTEM"):
            refused = api.post("/api/users", json={"username": name, "password": NEW_PASSWORD, "roles": ["audit"]})
            assert assert_error(refused, 422)["fields"]["username"] == "系统保留 (reserved)"
        assert len(api.get("/api/users").json) == len(USERS)
        created = api.post("/api/users", json={"username": "system2", "password": NEW_PASSWORD, "roles": []})
        assert created.status_code == 201, created.json

    @pytest.mark.parametrize(("body", "field"), [
        ({"roles": "admin"}, "roles"), ({"roles": ["nope"]}, "roles"), ({"active": "false"}, "active"),
        ({"active": 0}, "active"), ({"password": "short"}, "password"), ({"password": "audit"}, "password"),
        ({"password": 12}, "password"), ({"username": "renamed"}, "username"),
    ])
    def test_bad_changes_are_422(self, api, body, field):
        """PATCH with wrong types, unknown roles, a weak password or unknown keys: 422, nothing changed."""
        token = fresh_token(api, "audit")
        assert field in assert_error(api.patch("/api/users/audit", json=body), 422)["fields"]
        assert works(api, token)

    def test_unknown_user_is_404(self, api):
        """PATCH of a user that does not exist: 404."""
        assert_error(api.patch("/api/users/ghost", json={"active": False}), 404)
        assert_error(api.patch("/api/users/%2e%2e", json={"active": False}), 404)

    def test_the_last_active_admin_cannot_lose_the_role_or_be_deactivated(self, api):
        """409 while it is the only one; with a second admin, the first may give up the role."""
        assert_error(api.patch("/api/users/admin", json={"roles": ["audit"]}), 409, "conflict")
        assert_error(api.patch("/api/users/admin", json={"active": False}), 409)
        api.post("/api/users", json={"username": "admin2", "password": NEW_PASSWORD, "roles": ["admin"]})
        token2 = fresh_token(api, "admin2", NEW_PASSWORD)
        api.patch("/api/users/admin2", json={"active": False})
        assert_error(api.patch("/api/users/admin", json={"roles": []}), 409)  # admin2 is inactive
        api.patch("/api/users/admin2", json={"active": True})
        assert api.patch("/api/users/admin", json={"roles": ["audit"]}).status_code == 200
        assert not works(api, api.tokens["admin"])  # its role changed: its tokens ended
        response = api.client.patch("/api/users/admin2", headers=bearer(fresh_token(api, "admin2", NEW_PASSWORD)),
                                    json={"roles": ["designer"]})
        assert_error(response, 409)
        assert not works(api, token2)  # ended when admin2 was deactivated; reactivation brought nothing back


class TestEndingTokens:
    def test_deactivation_ends_tokens_and_reactivation_brings_none_back(self, api):
        """A deactivated user's tokens stop working and stay dead after it is reactivated."""
        token = fresh_token(api, "org_dept2")
        api.patch("/api/users/org_dept2", json={"active": False})
        assert not works(api, token)
        api.patch("/api/users/org_dept2", json={"active": True})
        assert not works(api, token)
        assert works(api, fresh_token(api, "org_dept2"))

    def test_deactivation_over_the_api_ends_web_sessions_and_reactivation_brings_none_back(self, api, app):
        browser = app.test_client()
        web_login(browser, "org_dept2")
        assert web_open(browser)
        assert api.patch("/api/users/org_dept2", json={"active": False}).status_code == 200
        assert not web_open(browser)
        assert api.patch("/api/users/org_dept2", json={"active": True}).status_code == 200
        assert not web_open(browser)

    def test_a_role_change_ends_tokens_but_an_unchanged_role_list_does_not(self, api):
        """Saving the same roles changes nothing; a different role list ends every token."""
        token = fresh_token(api, "discipline2")
        api.patch("/api/users/discipline2", json={"roles": ["discipline"]})
        assert works(api, token)
        api.patch("/api/users/discipline2", json={"roles": ["discipline", "audit"]})
        assert not works(api, token)

    def test_an_admin_password_reset_ends_tokens(self, api):
        """An admin setting a user's password ends that user's tokens."""
        token = fresh_token(api, "audit2")
        api.patch("/api/users/audit2", json={"password": NEW_PASSWORD})
        assert not works(api, token)

    @pytest.mark.parametrize("change", [{"password": NEW_PASSWORD}, {"active": False}])
    def test_a_login_checked_just_before_a_change_gets_no_token(self, api, monkeypatch, change):
        """Whoever holds the old password and asks for tokens without pause always has a check in flight: one
        that passed just before a password reset or a deactivation committed must not be handed a token that
        outlives it (nor one that a reactivation brings back)."""
        services, check = api.client.application.extensions["cadreflow"], logins.check_password_hash

        def check_then_change(stored: str, password: str) -> bool:
            right = check(stored, password)
            monkeypatch.setattr(logins, "check_password_hash", check)
            users.update_user(services, Actor("admin", frozenset({"admin"})), "audit2", **change)
            return right

        monkeypatch.setattr(logins, "check_password_hash", check_then_change)
        response = login(api, "audit2")
        api.patch("/api/users/audit2", json={"active": True})
        assert_error(response, 401)

    def test_logging_out_ends_the_calling_token_only(self, api):
        """DELETE /api/auth/token: 204, that token is 401 from then on (a second logout too), the user's other
        tokens keep working; an account without a role may log out; no or a bad token is 401."""
        token, other = fresh_token(api, "audit"), fresh_token(api, "audit")
        response = api.client.delete("/api/auth/token", headers=bearer(token))
        assert response.status_code == 204 and response.get_data() == b""
        assert not works(api, token) and works(api, other)
        assert_error(api.client.delete("/api/auth/token", headers=bearer(token)), 401)
        assert api.client.delete("/api/auth/token", headers=bearer(fresh_token(api, "norole"))).status_code == 204
        assert_error(api.client.delete("/api/auth/token"), 401)
        assert_error(api.client.delete("/api/auth/token", headers=bearer("nope")), 401)


class TestRevokedAdmin:
    """An admin's request read its token before another admin took the role or the account away, and runs after
    that change committed: it must not undo the change (give itself back the role) or leave a way in (a new admin)."""

    ADMIN = Actor("admin", frozenset({"admin"}))

    @pytest.fixture
    def rogue(self, api):
        assert api.post("/api/users", json={"username": "rogue", "password": NEW_PASSWORD,
                                            "roles": ["admin"]}).status_code == 201
        api.tokens["rogue"] = fresh_token(api, "rogue", NEW_PASSWORD)
        return api.client.application.extensions["cadreflow"]

    @pytest.mark.parametrize("revocation", [{"active": False}, {"roles": ["audit"]}])
    def test_a_change_in_flight_cannot_give_the_role_back(self, api, rogue, monkeypatch, revocation):
        change = users.update_user

        def revoked_first(services, actor, username, **body):
            change(rogue, self.ADMIN, "rogue", **revocation)
            return change(services, actor, username, **body)

        monkeypatch.setattr(users, "update_user", revoked_first)
        assert_error(api.patch("/api/users/rogue", as_="rogue", json={"roles": ["admin"], "active": True}), 403)
        monkeypatch.undo()
        found = next(u for u in api.get("/api/users").json if u["username"] == "rogue")
        assert {key: found[key] for key in revocation} == revocation
        assert_error(login(api, "rogue", NEW_PASSWORD) if "active" in revocation else
                     api.get("/api/users", as_="rogue"), {401, 403})

    def test_a_new_account_in_flight_is_not_created(self, api, rogue, monkeypatch):
        add = users.add_user

        def revoked_first(services, actor, *args):
            users.update_user(rogue, self.ADMIN, "rogue", active=False)
            return add(services, actor, *args)

        monkeypatch.setattr(users, "add_user", revoked_first)
        response = api.post("/api/users", as_="rogue", json={"username": "backdoor", "password": NEW_PASSWORD,
                                                             "roles": ["admin"]})
        assert_error(response, 403)
        monkeypatch.undo()
        assert "backdoor" not in [u["username"] for u in api.get("/api/users").json]


class TestThrottling:
    def test_ten_failures_for_a_username_then_even_the_right_password_is_429(self, api):
        """Failures from many addresses count for the username: the 11th try answers 429 with Retry-After."""
        for attempt in range(10):
            assert_error(login(api, "org_head", "wrong-password", f"10.0.0.{attempt}"), 401)
        response = login(api, "org_head", PASSWORD, "10.9.9.9")
        assert_error(response, 429, "too_many_attempts")
        assert 0 < int(response.headers["Retry-After"]) <= 900
        assert login(api, "org_dept", PASSWORD, "10.9.9.9").status_code == 200  # another user is not blocked

    def test_ten_failures_from_an_address_block_that_address(self, api):
        """Failures over many usernames from one address block the address, for every username."""
        for attempt in range(10):
            assert_error(login(api, f"ghost{attempt}", "wrong-password", "10.1.1.1"), 401)
        assert_error(login(api, "org_dept", PASSWORD, "10.1.1.1"), 429)
        assert login(api, "org_dept", PASSWORD, "10.1.1.2").status_code == 200

    def test_an_ipv6_network_counts_as_one_address(self, api):
        """Audit finding: one subscriber's /64 guessed from a fresh address each time, never throttled. Its
        addresses count together; another /64 is another client."""
        for attempt in range(10):
            assert_error(login(api, f"ghost{attempt}", "wrong-password", f"2001:db8:0:1::{attempt + 1:x}"), 401)
        assert_error(login(api, "org_dept", PASSWORD, "2001:db8:0:1::ff"), 429)
        assert login(api, "org_dept", PASSWORD, "2001:db8:0:2::1").status_code == 200

    def test_successes_and_malformed_bodies_do_not_count(self, api):
        """Only wrong passwords count: good logins and 422s do not use up the allowance."""
        for _ in range(12):
            assert login(api, "designer").status_code == 200
            assert api.client.post("/api/auth/token", json={"username": "designer"}).status_code == 422
        for _ in range(9):
            login(api, "designer", "wrong-password")
        assert login(api, "designer").status_code == 200

    def test_the_block_lifts_when_the_window_has_passed(self, template, tmp_path):
        """With a 3-second window and 2 allowed failures, the right password works again after the window (3 s:
        the two failures and the refused login must all land inside it, even on a busy machine)."""
        app = app_from_template(template, tmp_path / "short", LOGIN_MAX_FAILURES=2, LOGIN_WINDOW=3)
        api = make_api(app, template)
        try:
            login(api, "audit", "wrong-password")
            login(api, "audit", "wrong-password")
            assert_error(login(api, "audit"), 429)
            time.sleep(3.2)
            assert login(api, "audit").status_code == 200
        finally:
            app.extensions["cadreflow"].db.dispose()

    def test_forwarded_for_is_ignored_unless_proxies_are_trusted(self, template, tmp_path):
        """By default X-Forwarded-For cannot dodge the per-address count; with TRUSTED_PROXIES=1 it names the client."""
        for trusted, blocked_after_rotating in ((0, True), (1, False)):
            app = app_from_template(template, tmp_path / f"proxy{trusted}", TRUSTED_PROXIES=trusted)
            client = app.test_client()
            try:
                for attempt in range(10):
                    client.post("/api/auth/token", json={"username": f"ghost{attempt}", "password": "wrong-password"},
                                headers={"X-Forwarded-For": f"10.2.2.{attempt}"})
                response = client.post("/api/auth/token", json={"username": "audit", "password": PASSWORD},
                                       headers={"X-Forwarded-For": "10.3.3.3"})
                assert (response.status_code == 429) is blocked_after_rotating
            finally:
                app.extensions["cadreflow"].db.dispose()


class TestHeaders:
    @pytest.mark.parametrize(("url", "as_"), [("/api/auth/me", "admin"), ("/api/cases", "admin"),
                                              ("/api/users", "admin"), ("/api/cases", None), ("/api/nope", "admin")])
    def test_api_answers_are_nosniff_and_no_store(self, api, url, as_):
        """Every /api answer, errors included, says nosniff and no-store."""
        response = api.get(url, as_=as_) if as_ else api.client.get(url)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"

    def test_a_login_answer_is_no_store_too(self, api):
        """The token itself must never be cached."""
        assert login(api, "audit").headers["Cache-Control"] == "no-store"


class TestHostileInput:
    @pytest.mark.parametrize("name", sorted(HOSTILE_RAW))
    def test_raw_bodies_on_patch_never_500(self, api, name):
        """Hostile raw bodies on PATCH /api/users/<name> get a 4xx with the error body; the user is unchanged."""
        response = api.patch("/api/users/audit", data=HOSTILE_RAW[name], content_type="application/json")
        assert_error(response, CLIENT_ERRORS)
        assert {"username": "audit", "roles": ["audit"], "active": True, "email": "", "mail_digest": False} in (
            api.get("/api/users").json)

    @pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
    def test_json_objects_on_patch_never_500(self, api, name):
        """Hostile JSON objects on PATCH /api/users/<name> get a 4xx or change nothing that matters."""
        response = api.patch("/api/users/audit", data=json.dumps(HOSTILE_JSON[name]).encode(),
                             content_type="application/json")
        if response.status_code != 200:  # `{}` is a valid, empty change
            assert_error(response, CLIENT_ERRORS)
        assert {"username": "audit", "roles": ["audit"], "active": True, "email": "", "mail_digest": False} in (
            api.get("/api/users").json)


class TestCommandLine:
    @pytest.mark.parametrize(("args", "message"), [
        (["shorty", "--password", "123456789", "--role", "audit"], "at least 10 characters"),
        (["shorty", "--password", "SHORTY", "--role", "audit"], "at least 10 characters"),
        (["long_enough", "--password", "LONG_ENOUGH", "--role", "audit"], "must differ from the username"),
        (["bad/name", "--password", NEW_PASSWORD, "--role", "audit"], "letters, digits"),
        (["x" * 33, "--password", NEW_PASSWORD, "--role", "audit"], "letters, digits"),
        (["system", "--password", NEW_PASSWORD, "--role", "audit"], "reserved"),
    ])
    def test_create_user_follows_the_same_rules(self, app, api, args, message):
        """`cadreflow create-user` refuses what the API refuses, saying why, and creates nothing."""
        result = app.test_cli_runner().invoke(args=["create-user", *args])
        assert result.exit_code != 0 and message in result.output
        assert args[0] not in [u["username"] for u in api.get("/api/users").json]

    def test_create_user_resetting_a_password_ends_the_users_tokens(self, app, api):
        """Re-running create-user for an existing user resets its password and ends its tokens."""
        token = fresh_token(api, "audit")
        result = app.test_cli_runner().invoke(args=["create-user", "audit", "--password", NEW_PASSWORD,
                                                    "--role", "audit"])
        assert result.exit_code == 0, result.output
        assert not works(api, token) and login(api, "audit", NEW_PASSWORD).status_code == 200

    def test_create_user_keeps_the_last_active_admin_an_admin(self, app, api):
        """The rule of the API and the admin page holds for the command too: re-running create-user for the last
        active admin without `--role admin` is refused (exit 1, saying why), nothing changed; once another admin
        is active it goes through."""
        runner = app.test_cli_runner()
        result = runner.invoke(args=["create-user", "admin", "--password", NEW_PASSWORD, "--role", "audit"])
        assert result.exit_code == 1 and "last active admin" in result.output, result.output
        assert {"username": "admin", "roles": ["admin"]}.items() <= next(
            u for u in api.get("/api/users").json if u["username"] == "admin").items()
        assert login(api, "admin").status_code == 200  # the password is unchanged too
        second = runner.invoke(args=["create-user", "admin2", "--password", NEW_PASSWORD, "--role", "admin"])
        assert second.exit_code == 0, second.output
        result = runner.invoke(args=["create-user", "admin", "--password", NEW_PASSWORD, "--role", "audit"])
        assert result.exit_code == 0, result.output

    def test_create_user_taking_a_role_away_gives_back_its_held_tasks(self, app, api, cadre):
        """Re-running create-user with fewer roles hands the held tasks of the roles taken away back to their pool,
        as the API's role change does (an unclaim by `system`)."""
        case = start_accountability(api)
        task = case["open_tasks"][0]
        assert api.post(f"/api/tasks/{task['id']}/claim", as_="multi").status_code == 200
        result = app.test_cli_runner().invoke(args=["create-user", "multi", "--password", NEW_PASSWORD,
                                                    "--role", "audit"])
        assert result.exit_code == 0, result.output
        assert api.get(f"/api/tasks/{task['id']}").json["assignee"] is None
        entry = api.history(case["id"])[-1]
        assert (entry["action"], entry["actor"]) == ("unclaim", "system")
        assert entry["detail"] == {"task_id": task["id"], "from": "multi", "reason": "角色变更 (role removed)"}
