"""The public report journey in a real browser at 390 and 1280 px: someone reports on a phone without
logging in (the page's script solves the proof of work), keeps the code and key; discipline triages the
report into accountability and replies; the reporter reads the reply with the code and key (posted, never in
the page's address)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def test_report_triage_and_reply_journey(new_page):
    reporter = new_page()
    reporter.set_viewport_size({"width": 390, "height": 844})
    reporter.goto("/report")
    reporter.wait_for_selector("h1:has-text('网络举报平台')")
    shoot(reporter, "portal-report-form")
    reporter.get_by_label("被举报人姓名").fill("张伟")
    reporter.get_by_label("被举报人单位及职务").fill("县交通运输局局长")
    reporter.get_by_label("问题类别").select_option("inaction")
    reporter.get_by_label("举报内容").fill("城东道路塌陷已三个月，多次反映无人处理。")
    reporter.get_by_label("联系方式（选填，严格保密）").fill("13900001111")
    reporter.get_by_role("button", name="提交举报").click()
    reporter.wait_for_selector("#tracking-code", timeout=60_000)
    code = reporter.locator("#tracking-code").inner_text().strip()
    key = reporter.locator("#query-key").inner_text().strip()
    assert code.startswith("JB") and len(key) >= 16
    shoot(reporter, "portal-report-handed-out")

    staff = new_page()
    login(staff, "discipline")
    staff.goto("/reports")
    row = staff.locator("#report-inbox tbody tr").filter(has_text="张伟")
    assert row.count() == 1
    shoot(staff, "portal-staff-inbox")
    row.get_by_role("link").first.click()
    staff.wait_for_selector("#reporter-contact")
    assert staff.locator("#reporter-contact").inner_text() == "13900001111"
    expect(staff.locator("#reporter-title + .facts")).to_contain_text(code)
    shoot(staff, "portal-staff-report")
    staff.go_back()
    staff.locator("#report-inbox tbody tr").filter(has_text="张伟").get_by_role("link", name="分流").click()
    staff.wait_for_selector("h1:has-text('登记分流')")
    staff.get_by_role("radio", name="启动问责").check()
    staff.get_by_label("被举报干部", exact=True).fill("c001")  # a typeahead picker: it names the cadre typed
    staff.wait_for_selector("#f-cadre_id-chosen:not(:empty)")
    shoot(staff, "portal-staff-triage")
    staff.get_by_role("button", name="提交办理").click()
    staff.wait_for_selector(".flash-success")

    staff.goto("/reports")
    staff.locator("#report-inbox tbody tr").filter(has_text="张伟").get_by_role("link", name="答复").click()
    staff.wait_for_selector("h1:has-text('答复举报人')")
    staff.get_by_label("答复内容（举报人凭查询码可见）").fill("您反映的问题已立案问责，感谢监督。")
    staff.get_by_role("button", name="提交办理").click()
    staff.wait_for_selector(".flash-success")
    staff.goto("/cases?process=public_report")
    staff.locator("#cases-table a.case-link").first.click()
    staff.wait_for_selector("#diagram svg", timeout=30_000)
    shoot(staff, "portal-case-diagram")

    reporter.goto("/report/track")
    reporter.get_by_label("查询码", exact=True).fill(code)
    reporter.get_by_label("查询密钥", exact=True).fill(key)
    reporter.get_by_role("button", name="查询").click()
    reporter.wait_for_selector("#track-reply")
    assert reporter.url.endswith("/report/track")  # posted: neither code nor key in the address bar or history
    assert reporter.locator("#track-status").inner_text() == "已答复"
    assert reporter.locator("#track-reply").inner_text() == "您反映的问题已立案问责，感谢监督。"
    assert "13900001111" not in reporter.content()
    shoot(reporter, "portal-track-reply")


def test_public_notices_page_opens_without_login(page):
    page.goto("/notices")
    page.wait_for_selector("h1:has-text('干部任前公示')")
    shoot(page, "portal-notices")


def test_a_page_left_open_past_its_challenge_still_reports_at_the_first_click(page):
    """The page's challenge is stale (kept open past PUBLIC_POW_TTL while a long report was written, or handed
    out before a flood made the work harder): the script fetches a fresh challenge before it works, so the
    report goes in at the first click instead of coming back with a 400."""
    page.goto("/report")
    page.wait_for_selector("h1:has-text('网络举报平台')")
    page.evaluate("document.querySelector('input[name=pow_challenge]').value = 'eyJpZCI6InN0YWxlIn0.c3RhbGU'")
    page.get_by_label("被举报人姓名").fill("李强")
    page.get_by_label("被举报人单位及职务").fill("县住建局局长")
    page.get_by_label("问题类别").select_option("inaction")
    page.get_by_label("举报内容").fill("工程验收走过场。")
    page.get_by_role("button", name="提交举报").click()
    page.wait_for_selector("#tracking-code", timeout=60_000)
    assert page.locator("#tracking-code").inner_text().strip().startswith("JB")
