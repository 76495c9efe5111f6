"""The admin's roles page (/admin/roles): roles and who may start each process, managed in the browser."""

from __future__ import annotations

import pytest

from tests.api.support import ADMONISHMENT, app_from_template, build_template
from tests.conftest import PASSWORD
from tests.web.test_web_shell import csrf_token, login


@pytest.fixture(scope="module")
def roles_template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("roles_web"))


@pytest.fixture
def app(roles_template, tmp_path):
    app = app_from_template(roles_template, tmp_path / "app")
    yield app
    app.extensions["cadreflow"].db.dispose()


def text(response):
    return response.get_data(as_text=True)


def admin_token(client):
    login(client, "admin")
    return csrf_token(client, "/admin/roles")


def test_the_page_lists_roles_in_chinese_and_each_processs_starters(client):
    """Chinese names, head roles, and a starter form per deployed process with its roles ticked."""
    admin_token(client)
    page = text(client.get("/admin/roles"))
    assert "角色与发起权限" in page and 'data-role="inspection"' not in page
    assert 'value="组织部干部科"' in page and f'data-process="{ADMONISHMENT}"' in page
    assert 'value="discipline" checked' in page


def test_admin_creates_a_role_gives_it_to_a_user_and_makes_it_a_starter(client):
    """The new role appears with its name on this page and the users page; ticking it makes it a starter."""
    token = admin_token(client)
    created = client.post("/admin/roles", data={"code": "inspection", "name_zh": "巡察组", "name_en": "Inspection",
                                                "head_role": "discipline_head", "csrf_token": token},
                          follow_redirects=True)
    assert "已新建角色 inspection" in text(created) and 'data-role="inspection"' in text(created)
    assert "巡察组" in text(client.get("/admin/users"))
    client.post("/admin/users", data={"username": "inspector1", "password": "pw-for-tests", "roles": ["inspection"],
                                      "csrf_token": token})
    saved = client.post(f"/admin/processes/{ADMONISHMENT}/starters",
                        data={"roles": ["discipline", "inspection"], "csrf_token": token}, follow_redirects=True)
    assert f"已更新可发起 {ADMONISHMENT} 的角色" in text(saved)
    assert 'value="inspection" checked' in text(saved)
    client.post("/logout", data={"csrf_token": token})
    login(client, "inspector1")
    assert client.get("/cases/new").headers["Location"] == "/account/password"  # the admin set that password
    own = "inspection-own-pw"
    client.post("/account/password", data={"old_password": PASSWORD, "new_password": own, "confirm_password": own,
                                            "csrf_token": csrf_token(client, "/account/password")})
    assert client.get("/cases/new").status_code == 200  # may start something now: the start page opens


def test_refusals_are_flashed_in_chinese_and_change_nothing(client):
    token = admin_token(client)
    bad = client.post("/admin/roles", data={"code": "Bad Code", "name_zh": "错", "name_en": "x", "csrf_token": token},
                      follow_redirects=True)
    assert "角色代码须为" in text(bad) and 'data-role="Bad Code"' not in text(bad)
    taken = client.post("/admin/roles", data={"code": "audit", "name_zh": "重复", "name_en": "Dup",
                                              "csrf_token": token}, follow_redirects=True)
    assert "角色已存在" in text(taken)
    renamed = client.post("/admin/roles/committee", data={"name_zh": "", "name_en": "x", "csrf_token": token},
                          follow_redirects=True)
    assert "角色须有中文名称和英文名称" in text(renamed) and 'value="县委常委会"' in text(renamed)
    assert client.post("/admin/roles/nobody", data={"name_zh": "无", "name_en": "None", "csrf_token": token}
                       ).status_code == 404


@pytest.mark.parametrize("route", ["/admin/roles", "/admin/roles/committee",
                                   f"/admin/processes/{ADMONISHMENT}/starters"])
def test_only_admins_may_post(app, client, route):
    login(client, "discipline_head")
    response = client.post(route, data={"code": "x1", "name_zh": "x", "name_en": "x", "roles": ["audit"],
                                        "csrf_token": csrf_token(client, "/inbox")})
    assert response.status_code == 403
