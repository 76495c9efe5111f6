"""The shell around every page: login redirect, CSRF, role-based navigation, language switch, admin, errors."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def test_anonymous_visitor_is_sent_to_the_login_page(page):
    page.goto("/cases/1")
    page.wait_for_url("**/login?next=%2Fcases%2F1")
    assert page.get_by_role("heading", name="登录干部监督系统").is_visible()
    shoot(page, "login")


def test_a_form_posted_without_its_csrf_token_is_refused(page):
    page.goto("/login")
    page.evaluate("() => document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_label("用户名").fill("org_dept")
    page.get_by_label("密码").fill("ui-tests-pw")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as response:
        page.get_by_role("button", name="登录").click()
    assert response.value.status == 400
    page.wait_for_selector("h1:has-text('安全校验失败')")
    page.goto("/inbox")
    page.wait_for_url("**/login?next=%2Finbox")


def test_navigation_shows_only_what_the_roles_allow_and_english_switch(page):
    login(page, "audit")
    areas = page.locator(".site-nav a[data-area]").evaluate_all("els => els.map(e => e.dataset.area)")
    assert areas == ["inbox", "cases", "cadres", "integrity"]  # audit sees the cases and cadres it may read
    page.goto("/designer")
    assert page.locator(".error-code").inner_text() == "403"
    shoot(page, "error-403")
    page.goto("/cases/999999")
    assert page.locator(".error-code").inner_text() == "404"
    shoot(page, "error-404")
    page.goto("/inbox")
    page.get_by_role("button", name="English").click()
    page.wait_for_selector("h1:has-text('My inbox')")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("button", name="中文").click()
    page.wait_for_selector("h1:has-text('我的待办')")


def test_admin_creates_a_user_with_roles(page):
    login(page, "admin")
    page.goto("/admin/users")
    page.get_by_label("用户名", exact=True).fill("inspector2")
    page.get_by_label("初始密码（至少 10 位）").fill("a-long-password")
    page.locator("#new-user ~ form").get_by_label("纪委监委").check()
    page.get_by_role("button", name="创建").click()
    page.wait_for_selector(".flash-success:has-text('inspector2')")
    expect(page.locator("tr[data-user='inspector2']")).to_contain_text("纪委监委")
    shoot(page, "admin-users")
    login(page, "inspector2", "a-long-password")
    assert page.url.endswith("/account/password")  # the admin knows that password: the user chooses their own first
    page.get_by_label("原密码").fill("a-long-password")
    page.get_by_label("新密码（至少 10 位）").fill("mine-alone-now")
    page.get_by_label("再次输入新密码").fill("mine-alone-now")
    page.get_by_role("button", name="修改密码").click()
    page.wait_for_url("**/inbox")


def test_org_dept_starts_a_case_from_its_start_form(page):
    login(page, "org_dept")
    page.goto("/cases/new")
    page.get_by_label("流程", exact=True).select_option(label="任前监督")
    page.get_by_role("button", name="选择").click()
    page.wait_for_url("**/cases/new?process=pre_appointment_vetting")
    page.get_by_label("干部", exact=True).fill("赵敏")  # the typeahead offers her; her id is what is sent
    page.wait_for_selector("#f-cadre_id-options option", state="attached")
    page.get_by_label("干部", exact=True).fill(page.locator("#f-cadre_id-options option").first.get_attribute("value"))
    page.wait_for_selector("#f-cadre_id-chosen:has-text('赵敏 · 县教育局')")
    page.get_by_role("button", name="发起").click()
    page.wait_for_selector("[data-field='proposed_post'] .field-error")
    shoot(page, "case-new")
    page.get_by_label("拟任职务").fill("县教育局副局长")
    page.get_by_role("radio", name="竞争上岗").check()
    page.get_by_role("button", name="发起").click()
    page.wait_for_selector(".flash-success:has-text('已发起案件')")
    page.wait_for_selector("#diagram[data-state='ready']")
