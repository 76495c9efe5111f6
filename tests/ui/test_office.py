"""Working on a case in the browser: attach a file and comment on the case page; set and end my absence."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def test_discipline_attaches_a_file_and_comments_on_a_case(page):
    login(page, "discipline")
    page.goto("/cases?process=accountability")
    page.locator("#cases-table tbody tr a[href^='/cases/']").first.click()
    page.wait_for_selector("#attachments-title")
    page.get_by_label("上传附件（PDF、图片、Office 文档或文本）").set_input_files(
        {"name": "核查说明.txt", "mimeType": "text/plain", "buffer": "经核查，情况属实。".encode()})
    page.get_by_role("button", name="上传", exact=True).click()
    page.wait_for_selector(".flash-success:has-text('附件已上传')")
    link = page.locator(".attachment-list a", has_text="核查说明.txt")
    expect(link).to_have_count(1)
    response = page.request.get(link.get_attribute("href"))  # the browser's session fetches the file
    assert response.status == 200 and response.body() == "经核查，情况属实。".encode()
    assert response.headers["content-disposition"].startswith("attachment")

    page.get_by_label("发表意见").fill("请尽快完成初核。")
    page.get_by_role("button", name="发表", exact=True).click()
    page.wait_for_selector(".flash-success:has-text('意见已发表')")
    expect(page.locator(".comment-list")).to_contain_text("请尽快完成初核。")
    shoot(page, "case-with-files-and-comments")


def test_audit_sets_and_ends_an_absence(page):
    login(page, "audit")
    page.get_by_role("link", name="外出代理").click()
    page.get_by_label("代理人").select_option("audit_head")
    page.get_by_label("结束日期（当日 24 时）").fill("2099-01-01")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector("#current-absence:has-text('audit_head')")
    shoot(page, "absence")
    page.get_by_role("button", name="结束外出").click()
    page.wait_for_selector(".flash-success:has-text('已结束外出')")
    page.wait_for_load_state()  # the page below the message too: what is gone is really gone
    assert page.locator("#current-absence").count() == 0
