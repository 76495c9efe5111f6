"""The approver's journey: log in, find a vetting task, claim it, correct a validation error, complete it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def test_approver_claims_and_completes_a_vetting_task_after_correcting_an_error(page):
    """org_dept opens its inbox, claims 民主测评, submits zero votes (refused beside the fields), fixes, completes."""
    login(page, "org_dept")
    page.goto("/inbox")
    page.get_by_label("流程", exact=True).select_option(label="任前监督")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url("**/inbox?process=pre_appointment_vetting*")  # loaded: the whole table is there
    # Other journeys on the same server (pytest-xdist puts several test files on one) may have started
    # vetting cases too: the demo's task is one of the rows, and every row is a vetting task.
    rows = page.locator("#inbox-table tbody tr")
    assert rows.count() == page.locator("#inbox-table tbody tr[data-process='pre_appointment_vetting']").count() >= 1
    row = page.locator("#inbox-table tr[data-element='democratic_evaluation']").first
    assert row.count() == 1
    task_id = row.get_attribute("data-task-id")
    shoot(page, "inbox")

    row.get_by_role("link", name="民主测评").click()
    page.wait_for_selector("h1:has-text('民主测评')")
    page.get_by_role("button", name="认领").click()
    page.wait_for_selector(".flash-success")
    expect(page.locator(".assignee")).to_have_text("org_dept")

    for label in ("同意票数", "基本同意票数", "不同意票数"):
        page.get_by_label(label, exact=True).fill("0")
    page.get_by_role("button", name="提交办理").click()
    error = page.locator("[data-field='votes_approve'] .field-error")
    error.wait_for()
    assert "票数合计必须大于0" in error.inner_text()
    assert page.get_by_label("同意票数", exact=True).input_value() == "0", "the submitted values are kept"
    assert page.get_by_label("同意票数", exact=True).get_attribute("aria-invalid") == "true"
    shoot(page, "task-with-errors")

    page.get_by_label("同意票数", exact=True).fill("30")
    page.get_by_label("基本同意票数").fill("2")
    page.get_by_role("button", name="提交办理").click()
    page.wait_for_selector(".flash-success:has-text('已办理：民主测评')")
    page.wait_for_url("**/inbox")  # and loaded, so the table below is complete
    assert page.locator(f"#inbox-table tr[data-task-id='{task_id}']").count() == 0


def test_inbox_filters_by_a_cadre_picked_by_typing(page):
    """The inbox's cadre filter is the typeahead picker: type a name, pick the offered id, filter; the page
    names the chosen cadre and lists only its tasks."""
    login(page, "org_dept")
    page.goto("/inbox")
    names = page.locator("#inbox-table td[data-label='干部']").all_inner_texts()
    name = next(n.strip() for n in names if "举报对象" not in n)
    picker = page.get_by_label("干部", exact=True)
    assert picker.get_attribute("type") == "search" and page.locator("select#flt-cadre").count() == 0
    picker.fill(name)
    offered = page.locator("#flt-cadre-options option", has_text=f"{name} · ")
    offered.first.wait_for(state="attached")
    cadre_id = offered.first.get_attribute("value")
    picker.fill(cadre_id)
    page.wait_for_selector(f"#flt-cadre-chosen:has-text('{name} · ')")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(f"**/inbox?*cadre={cadre_id}*")
    assert page.get_by_label("干部", exact=True).input_value() == cadre_id
    assert page.locator("#flt-cadre-chosen").inner_text().startswith(f"{name} · ")  # named, not just its id
    shown = page.locator("#inbox-table td[data-label='干部']").all_inner_texts()
    assert shown and {n.strip() for n in shown} == {name}
    shoot(page, "inbox-cadre-filter")


def test_task_page_shows_the_case_context(page):
    """The task page shows the cadre, the start data, earlier decisions and the form's widgets."""
    login(page, "org_dept")
    page.goto("/inbox?process=pre_appointment_vetting")
    page.locator("#inbox-table a.task-link", has_text="向同事征求意见").first.click()
    page.wait_for_selector("h1:has-text('向同事征求意见')")
    page.wait_for_load_state()  # the rest of the page, below its heading
    assert page.locator("#cadre-title + .facts").inner_text().count("王强") == 1
    assert "家属支持" in page.locator(".decision").first.inner_text()
    assert page.get_by_role("radio", name="肯定").count() == 1
    assert page.locator("[data-field='opinion'] .req").count() == 1
    shoot(page, "task")


def test_someone_else_completing_first_gives_a_409_page(new_page):
    """Two people on the same review: the later submission lands on 'someone else just completed this task'
    (the same person's second submission is told it was theirs: tests/web/test_resubmission.py)."""
    first, second = new_page(), new_page()
    login(first, "org_head")
    first.goto("/inbox")
    first.locator("#inbox-table a.task-link", has_text="部长审核").first.click()
    first.wait_for_url("**/tasks/**")
    login(second, "admin")
    second.goto(first.url)
    for page in (first, second):
        page.wait_for_load_state()
        page.get_by_role("radio", name="同意", exact=True).check()
    second.get_by_role("button", name="提交办理").click()
    second.wait_for_selector(".flash-success")
    first.get_by_role("button", name="提交办理").click()
    first.wait_for_selector("h1:has-text('此任务刚刚已由他人办理')")
    assert first.locator(".error-code").inner_text() == "409"
    shoot(first, "error-409")
