"""The bell and the notifications page in a real browser: counts, opening a task, marking read, mail settings."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, settle, shoot

pytestmark = pytest.mark.ui


def unread(page) -> int:
    badge = page.locator(".bell .bell-count")
    return int(badge.get_attribute("data-count")) if badge.count() else 0


def test_the_bell_leads_to_the_notifications_and_opening_one_marks_it_read(page):
    """discipline's demo tasks show in the bell; its page lists them; opening one goes to the task and the count
    drops by one; "mark all read" empties the bell; the page reads in English too."""
    login(page, "discipline")
    before = unread(page)
    assert before >= 2, "the demo opened discipline tasks"
    assert page.locator(".bell").get_attribute("aria-label") == f"通知：{before} 条未读"
    page.locator(".bell").click()
    page.wait_for_selector("h1:has-text('通知')")
    expect(page.locator("#notifications .note-unread")).to_have_count(min(before, 20))
    expect(page.locator("#notifications .note").first).to_contain_text("新任务")
    shoot(page, "notifications")

    first = page.locator("#notifications .note-unread").first
    task_text = first.locator(".note-text").inner_text()
    first.get_by_role("button", name="查看任务").click()
    page.wait_for_url("**/tasks/**")
    assert task_text.split("：", 1)[1].split("（")[0] in page.locator("h1").inner_text()
    assert unread(page) == before - 1

    page.goto("/notifications?unread=1")
    page.get_by_role("button", name="全部标为已读").click()
    page.wait_for_selector(".flash-success:has-text('全部通知已标为已读')")
    page.wait_for_load_state()  # the list below the message too
    assert unread(page) == 0 and page.locator("#notifications .note-unread").count() == 0
    page.goto("/notifications")
    page.get_by_role("button", name="English").click()
    page.wait_for_selector("h1:has-text('Notifications')")
    expect(page.locator("#notifications .note").first).to_contain_text("New task:")
    page.get_by_role("button", name="中文").click()
    page.wait_for_selector("h1:has-text('通知')")


def test_the_bell_stays_in_reach_on_a_phone(page):
    """At 390 px the menu folds away but the bell stays in the top bar, tappable."""
    login(page, "audit_head")
    page.set_viewport_size({"width": 390, "height": 800})
    settle(page)
    box = page.locator(".bell").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390 and box["y"] < 80
    assert not page.locator("#site-nav").is_visible()
    page.locator(".bell").click()
    page.wait_for_selector("h1:has-text('通知')")


def test_a_user_sets_its_mail_on_the_account_page(page):
    """The account page takes my address and the daily digest; the choice shows when I come back."""
    login(page, "committee")
    page.goto("/notifications")
    page.get_by_role("link", name="邮件提醒设置").click()
    page.get_by_label("邮箱", exact=True).fill("committee@example.gov.cn")
    page.get_by_label("每日一封汇总邮件（列出待办和到期任务）").check()
    page.get_by_role("button", name="保存邮件设置").click()
    page.wait_for_selector(".flash-success:has-text('邮件提醒设置已保存')")
    assert page.get_by_label("邮箱", exact=True).input_value() == "committee@example.gov.cn"
    assert page.get_by_label("每日一封汇总邮件（列出待办和到期任务）").is_checked()
    shoot(page, "account-mail")
