"""The admin's roles page in a real browser: a new role, given to a user, made a starter of a process."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def test_admin_adds_a_role_and_lets_it_start_a_process(page):
    login(page, "admin")
    page.locator(".site-nav a[data-area='roles']").click()
    page.wait_for_selector("h1:has-text('角色与发起权限')")
    page.get_by_label("代码（泳道名称）").fill("ui_team")
    page.get_by_label("中文名称", exact=True).fill("专项督查组")
    page.get_by_label("英文名称", exact=True).fill("Special inspection team")
    page.locator("#new-head").select_option("discipline_head")
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector(".flash-success:has-text('ui_team')")
    assert page.locator("tr[data-role='ui_team'] input[name='name_zh']").input_value() == "专项督查组"
    starters = page.locator("tr[data-process='admonishment']")
    starters.get_by_label("专项督查组").check()
    starters.get_by_role("button", name="保存").click()
    page.wait_for_selector(".flash-success:has-text('admonishment')")
    assert page.locator("tr[data-process='admonishment'] input[value='ui_team']").is_checked()
    expect(page.locator("tr[data-role='ui_team']")).to_contain_text("admonishment")
    shoot(page, "admin-roles")
    page.goto("/admin/users")
    assert "专项督查组" in page.locator("#new-user ~ form").inner_text()
