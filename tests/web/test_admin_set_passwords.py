"""A password an admin sets for someone else (a new account's or a reset, through the admin page or the API) is
known to the admin: the user's every web page leads to the password page until they choose their own, while
logging out, the language and static files still work. The JSON API is unaffected (a right password issues a
token, as its contract says); the operator's CLI and the demo loader set passwords without the demand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.usecases import users
from tests.api.support import Template, app_from_template
from tests.conftest import PASSWORD
from tests.web.test_web_shell import csrf_token

SET_BY_ADMIN = "handed-over-pw-7"
OWN = "only-mine-chosen-9"
CHANGE_FIRST = "管理员为您设置了密码，请先改为只有您知道的新密码。"


@pytest.fixture
def app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    app = app_from_template(template, tmp_path / "app")
    yield app
    app.extensions["cadreflow"].db.dispose()


def web_login(client, username: str, password: str) -> str:
    """Log in; where the login sends the browser."""
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def logged_in(app: Flask, username: str, password: str = PASSWORD):
    """A browser logged in as `username`."""
    client = app.test_client()
    web_login(client, username, password)
    return client


def admin_client(app: Flask):
    return logged_in(app, "admin")


def admin_token(app: Flask) -> str:
    return app.test_client().post("/api/auth/token", json={"username": "admin", "password": PASSWORD}).json["token"]


def sent_to_password_page(client, url: str = "/inbox") -> bool:
    response = client.get(url)
    return response.status_code == 302 and response.headers["Location"] == "/account/password"


def change_own_password(client, old: str) -> None:
    response = client.post("/account/password", data={
        "old_password": old, "new_password": OWN, "confirm_password": OWN,
        "csrf_token": csrf_token(client, "/account/password")})
    assert response.status_code == 302 and response.headers["Location"] == "/", response.get_data(as_text=True)


def create_on_admin_page(app: Flask, username: str) -> None:
    admin = admin_client(app)
    response = admin.post("/admin/users", data={"username": username, "password": SET_BY_ADMIN,
                                                "roles": ["org_dept"], "csrf_token": csrf_token(admin, "/admin/users")})
    assert response.status_code == 302 and "已创建用户" in admin.get("/admin/users").get_data(as_text=True)


class TestAdminSetPasswords:
    def test_an_account_made_on_the_admin_page_must_choose_its_own_password_first(self, app):
        create_on_admin_page(app, "clerk")
        client = logged_in(app, "clerk", SET_BY_ADMIN)
        for url in ("/", "/inbox", "/cases", "/notifications", "/no-such-page"):
            assert sent_to_password_page(client, url), url
        page = client.get("/account/password")
        assert page.status_code == 200 and CHANGE_FIRST in page.get_data(as_text=True)
        change_own_password(client, SET_BY_ADMIN)
        assert client.get("/inbox").status_code == 200
        fresh = logged_in(app, "clerk", OWN)  # and at the next login too
        assert fresh.get("/inbox").status_code == 200

    def test_a_reset_through_the_api_demands_a_change_at_the_next_web_login(self, app):
        response = app.test_client().patch("/api/users/org_dept", json={"password": SET_BY_ADMIN},
                                           headers={"Authorization": f"Bearer {admin_token(app)}"})
        assert response.status_code == 200, response.json
        client = logged_in(app, "org_dept", SET_BY_ADMIN)
        assert sent_to_password_page(client)

    def test_an_account_made_through_the_api_too(self, app):
        response = app.test_client().post("/api/users", json={"username": "clerk", "password": SET_BY_ADMIN,
                                                               "roles": ["org_dept"]},
                                          headers={"Authorization": f"Bearer {admin_token(app)}"})
        assert response.status_code == 201, response.json
        client = logged_in(app, "clerk", SET_BY_ADMIN)
        assert sent_to_password_page(client)

    def test_a_reset_on_the_admin_page_too(self, app):
        admin = admin_client(app)
        admin.post("/admin/users/org_dept/password", data={"password": SET_BY_ADMIN,
                                                           "csrf_token": csrf_token(admin, "/admin/users")})
        client = logged_in(app, "org_dept", SET_BY_ADMIN)
        assert sent_to_password_page(client)

    def test_logout_language_and_static_files_still_answer(self, app):
        create_on_admin_page(app, "clerk")
        client = logged_in(app, "clerk", SET_BY_ADMIN)
        asset = client.get("/assets/style.css")
        asset.close()
        assert asset.status_code == 200
        response = client.post("/lang", data={"lang": "en", "next": "/account/password",
                                              "csrf_token": csrf_token(client, "/account/password")})
        assert response.status_code == 302 and response.headers["Location"] == "/account/password"
        assert "An admin set your password" in client.get("/inbox", follow_redirects=True).get_data(as_text=True)
        response = client.post("/logout", data={"csrf_token": csrf_token(client, "/account/password")})
        assert response.status_code == 302 and response.headers["Location"] == "/login"
        assert client.get("/inbox").headers["Location"].startswith("/login")

    def test_the_api_is_unaffected(self, app):
        """A right password issues a token, whose calls answer as always; the demand waits for the web login."""
        create_on_admin_page(app, "clerk")
        api = app.test_client()
        response = api.post("/api/auth/token", json={"username": "clerk", "password": SET_BY_ADMIN})
        # the answer as for anyone (a device credential beside the token): nothing says a change is due
        assert response.status_code == 200 and set(response.json) == {"token", "user", "device"}
        assert api.get("/api/tasks", headers={"Authorization": f"Bearer {response.json['token']}"}).status_code == 200
        client = logged_in(app, "clerk", SET_BY_ADMIN)
        assert sent_to_password_page(client)

    def test_an_admin_resetting_its_own_password_is_not_asked_again(self, app):
        admin = admin_client(app)
        admin.post("/admin/users/admin/password", data={"password": SET_BY_ADMIN,
                                                        "csrf_token": csrf_token(admin, "/admin/users")})
        client = logged_in(app, "admin", SET_BY_ADMIN)
        assert client.get("/admin/users").status_code == 200


class TestTheOperatorsOwnPasswords:
    def test_create_user_on_the_command_line_sets_no_demand_and_clears_one(self, app):
        create_on_admin_page(app, "clerk")
        result = app.test_cli_runner().invoke(args=["create-user", "clerk", "--password", OWN, "--role", "org_dept"])
        assert result.exit_code == 0, result.output
        client = logged_in(app, "clerk", OWN)
        assert client.get("/inbox").status_code == 200

    def test_the_service_itself_sets_no_demand(self, app):
        """What the demo loader and `create-user` call, as the service (`system`)."""
        users.create_user(app.extensions["cadreflow"], "demo_clerk", OWN, ["org_dept"], replace=False)
        client = logged_in(app, "demo_clerk", OWN)
        assert client.get("/inbox").status_code == 200
