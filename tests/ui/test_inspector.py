"""The inspector's journey: filter overdue cases, open one, read its highlighted diagram and timeline."""

from __future__ import annotations

import time

import pytest

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def _wait_for_overdue_case(page, case_id: int) -> None:
    """The audit's fieldwork deadline is one second: wait until the timer worker has escalated it."""
    deadline = time.monotonic() + 20
    while True:
        page.goto(f"/cases/{case_id}")
        if page.locator(".wait-list", has_text="督办").count():
            return
        assert time.monotonic() < deadline, "the fieldwork deadline never fired"
        time.sleep(0.3)


def test_inspector_filters_overdue_cases_opens_one_and_sees_diagram_and_timeline(page, server):
    """discipline filters the tracker to overdue cases, opens the departure audit, sees markers and history."""
    case_id = server.fixtures["audit_case_id"]
    login(page, "discipline")
    _wait_for_overdue_case(page, case_id)
    page.goto("/cases")
    page.get_by_label("仅看逾期").check()
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url("**/cases?**overdue=1**")
    rows = page.locator("#cases-table tbody tr")
    assert rows.count() == 1
    assert "已逾期" in rows.first.inner_text()
    shoot(page, "tracker")

    rows.first.get_by_role("link", name=f"#{case_id}").click()
    page.wait_for_selector("#diagram[data-state='ready']")
    assert page.locator(".djs-element.cf-completed").count() >= 3
    active = page.locator(".djs-element.cf-active")
    assert active.count() >= 1
    assert page.locator(".djs-element.cf-active[data-element-id='audit_fieldwork']").count() == 1
    timeline = page.locator(".timeline")
    assert timeline.locator(".tl-start").count() == 1
    assert "org_dept" in timeline.locator(".tl-start").inner_text()
    assert "组建审计组" in timeline.locator(".tl-complete").first.inner_text()
    assert "audit_head" in timeline.locator(".tl-complete").first.inner_text()
    open_tasks = page.locator("#waiting .wait-list li").all_inner_texts()
    assert [t.split()[0] for t in open_tasks] == ["审计实施", "督办：审计实施"], open_tasks
    assert "已逾期" in open_tasks[0]
    shoot(page, "case")

    page.locator("#cadre-title + .facts a").click()
    page.wait_for_selector("#cases-title")
    page.wait_for_load_state()  # the table below the title too
    assert page.locator("#cases-title + .table-wrap").inner_text().count(f"#{case_id}") == 1
    shoot(page, "cadre")


def test_tracker_exports_csv_and_dashboard_draws_charts(page):
    """The CSV export carries every case; the dashboard draws its four charts."""
    login(page, "discipline")
    page.goto("/cases")
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    content = download.value.path().read_text(encoding="utf-8-sig")
    assert content.splitlines()[0].startswith("案件编号,流程代码,流程,干部编号,干部姓名")
    assert "张伟" in content
    page.goto("/cadres")
    shoot(page, "cadres")
    page.goto("/dashboard")
    page.wait_for_selector("body[data-charts='ready']")
    assert page.locator(".chart-box canvas").count() == 4
    shoot(page, "dashboard")


def test_auditor_follows_the_cadre_link_of_its_own_task_and_sees_only_its_cases(page, server):
    """audit, the team lead, opens its fieldwork task, follows the cadre link to the cadre's page (no 403/404),
    which lists the departure audit; a case audit may not read is 404, as if it did not exist."""
    case_id = server.fixtures["audit_case_id"]
    login(page, "audit")
    page.goto(f"/cases/{case_id}")
    page.locator("#waiting .wait-list a", has_text="审计实施").first.click()
    page.wait_for_selector("h1:has-text('审计实施')")
    page.locator("#cadre-title + .facts a").click()
    page.wait_for_selector("#cases-title")
    page.wait_for_load_state()
    assert f"#{case_id}" in page.locator("#cases-title + .table-wrap").inner_text()
    assert page.locator(".site-nav a[data-area]").evaluate_all("els => els.map(e => e.dataset.area)") == [
        "inbox", "cases", "cadres", "integrity"]
    page.goto("/cases/1")  # the demo's first case: a vetting, which audit may not read
    assert page.locator(".error-code").inner_text() == "404"
