"""述职述廉 in a real browser: a member of the public reads a disclosed report on a phone and rates it once;
org_head sees the tally on the staff page."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, login, shoot

pytestmark = pytest.mark.ui


def _call(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _token(base: str, username: str) -> str:
    return _call(base, "POST", "/api/auth/token", body={"username": username, "password": PASSWORD})["token"]


def _complete(base: str, case_id: int, element_id: str, token: str, **data: Any) -> None:
    case = _call(base, "GET", f"/api/cases/{case_id}", token)
    task = next(t for t in case["open_tasks"] if t["element_id"] == element_id)
    _call(base, "POST", f"/api/tasks/{task['id']}/complete", token, {"data": data})


@pytest.fixture(scope="module")
def disclosure(server) -> int:
    """The demo's leading cadres get their 2026 reports; the first one's is disclosed."""
    base, org, committee = server.base, _token(server.base, "org_dept"), _token(server.base, "committee")
    case_id = _call(base, "POST", "/api/integrity-reports", org, {"year": 2026})["opened"][0]
    _complete(base, case_id, "submit_report", org, duty_report="一、全年工作\n完成道路改造三十公里。",
              integrity_report="严格落实廉洁自律各项规定。")
    _complete(base, case_id, "committee_hearing", committee, opinion="报告实事求是")
    return next(item["id"] for item in _call(base, "GET", "/public/disclosures"))


def test_the_public_reads_and_rates_on_a_phone(new_page, disclosure):
    """No login: the list, the report, a rating with a comment, then the same address refused."""
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/disclosures")
    shoot(page, "disclosures-public")
    page.locator(f"a[href='/disclosures/{disclosure}']").first.click()
    page.wait_for_selector("#duty-report")
    assert "完成道路改造三十公里" in page.locator("#duty-report").inner_text()
    page.get_by_label("基本满意").check()
    page.get_by_label("意见建议（选填，不超过2000字）").fill("希望进一步改善农村道路")
    page.get_by_role("button", name="提交评议").click()
    page.wait_for_selector(".flash-success")
    expect(page.locator("[data-rating='basically_satisfied']")).to_have_text("1")
    shoot(page, "disclosure-rated")
    page.get_by_label("满意", exact=True).check()
    page.get_by_role("button", name="提交评议").click()
    expect(page.locator(".form-errors")).to_contain_text("已评议过")


def test_org_head_sees_the_tally(page, disclosure):
    """The staff page lists the disclosure with its counts; its detail shows the reports and comments."""
    login(page, "org_head")
    page.locator(".site-nav a[data-area='integrity']").click()
    page.wait_for_selector("#disclosures-table")
    shoot(page, "disclosures-staff")
    page.locator(f"a[href='/integrity-reports/{disclosure}']").click()
    page.wait_for_selector("#comments-title")
    assert "完成道路改造三十公里" in page.locator(".report-text").first.inner_text()
    expect(page.locator("[data-rating='dissatisfied']")).to_have_count(1)  # in the tally, below the comments
