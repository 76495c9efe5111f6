"""The account log page (/account-log): discipline_head reads who changed which account, Chinese first, English
with `lang=en`; the admins whose changes it shows read it too, others are refused."""

from __future__ import annotations

from tests.api.support import VETTING
from tests.web.test_web_shell import login


def test_discipline_head_reads_the_grant_and_its_removal(api, client):
    for roles in (["audit", "discipline_head"], ["audit"]):
        assert api.patch("/api/users/audit", json={"roles": roles}).status_code == 200
    api.put(f"/api/processes/{VETTING}/starters", json={"roles": ["committee"]})
    login(client, "discipline_head")
    page = client.get("/account-log", query_string={"username": "audit"}).get_data(as_text=True)
    assert "账号变更记录" in page and page.count("变更角色") == 2 and "变更发起权限" not in page
    assert "audit, discipline_head → audit" in page and "audit → audit, discipline_head" in page
    client.set_cookie("lang", "en")
    english = client.get("/account-log").get_data(as_text=True)
    assert "Account log" in english and "Roles changed" in english and "Starters changed" in english
    assert "变更发起权限" not in english and "→ committee" in english


def test_a_filter_matching_nothing_says_so_and_others_are_refused(api, client):
    login(client, "discipline_head")
    assert "没有符合条件的账号变更记录" in client.get("/account-log?username=nobody").get_data(as_text=True)
    client.post("/logout")
    login(client, "discipline")
    assert client.get("/account-log").status_code == 403
