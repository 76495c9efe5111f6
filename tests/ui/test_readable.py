"""Readable cases in a browser (issue 13): the diagram with Chinese lanes and its zoom buttons, the page still
scrolling under the wheel, the list of steps on a phone, and what a case waits for or why it ended."""

from __future__ import annotations

import pytest

from .conftest import login, settle, shoot

pytestmark = pytest.mark.ui


def test_case_in_its_notice_says_what_it_waits_for_and_draws_a_usable_diagram(page, server):
    login(page, "org_dept")
    page.goto(f"/cases/{server.fixtures['notice_case_id']}")
    page.wait_for_selector("#diagram[data-state='ready']")
    waiting = page.locator("#waiting").inner_text()
    assert "没有待办任务" not in waiting
    assert "任前公示" in waiting and "等待公示期满" in waiting and "等待收到举报" in waiting
    lanes = page.eval_on_selector_all(".djs-element[data-element-id^='Lane_'] text",
                                      "nodes => nodes.map(n => n.textContent)")
    assert "组织部干部科" in " ".join(lanes) and "org_dept" not in " ".join(lanes)
    # zoom buttons change the scale; fit brings the whole diagram back
    scale = lambda: page.evaluate(  # noqa: E731
        "() => document.querySelector('#diagram .viewport').transform.baseVal.consolidate().matrix.a")
    fitted = scale()
    page.get_by_role("button", name="放大").click()
    assert scale() > fitted * 1.1
    page.get_by_role("button", name="缩小").click()
    page.get_by_role("button", name="缩小").click()
    assert scale() < fitted
    page.get_by_role("button", name="适应窗口").click()
    assert abs(scale() - fitted) < 1e-3
    page.get_by_role("button", name="原始大小").click()
    assert abs(scale() - 1) < 1e-3
    page.get_by_role("button", name="适应窗口").click()
    # the mouse wheel over the diagram scrolls the page and leaves the zoom alone
    page.set_viewport_size({"width": 1280, "height": 500})
    page.evaluate("() => window.scrollTo(0, 0)")
    settle(page)
    before_wheel = scale()
    box = page.locator("#diagram").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 40)
    page.mouse.wheel(0, 300)
    settle(page)
    page.wait_for_function("() => window.scrollY > 0")
    assert scale() == pytest.approx(before_wheel)
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not page.locator("#steps-list").is_visible()
    shoot(page, "case-notice")
    page.set_viewport_size({"width": 390, "height": 900})
    settle(page)
    steps = page.locator("#steps-list")
    assert steps.is_visible()
    items = steps.locator("li").all_inner_texts()
    assert items[0].startswith("发起任前监督") and "部长审核" in " ".join(items)
    assert steps.locator("li.step-active").inner_text().startswith("任前公示")


def test_an_ineligible_vetting_says_why_and_the_tracker_says_what_cases_wait_for(page, server):
    login(page, "org_dept")
    page.goto(f"/cases/{server.fixtures['ineligible_case_id']}")
    ending = page.locator("#ending").inner_text()
    assert "不符合任职资格" in ending and "不得提拔" in ending
    shoot(page, "case-ended")
    page.goto("/cases")
    row = page.locator(f"#cases-table tr[data-case-id='{server.fixtures['notice_case_id']}']")
    assert "等待公示期满" in row.inner_text()
    shoot(page, "tracker-waiting")


def test_back_to_a_form_shown_again_with_its_errors_asks_no_resubmission_and_cancel_asks_first(page, server):
    login(page, "org_dept")
    page.goto("/cadres/new")
    page.get_by_label("姓名").fill("赵六")
    page.get_by_role("button", name="登记").click()
    page.wait_for_selector(".form-errors")
    page.wait_for_load_state("load")  # app.js is deferred: the errors show before it has replaced the entry
    assert page.get_by_label("姓名").input_value() == "赵六"  # kept
    page.goto("/cadres")
    response = page.go_back()  # the POST answer became a GET entry: no "confirm form resubmission"
    assert response is not None and response.status == 200 and response.request.method == "GET"
    page.wait_for_selector("#f-name")
    login(page, "admin")
    page.goto(f"/cases/{server.fixtures['notice_case_id']}")
    page.locator("#reason").fill("测试撤销")
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="撤销", exact=True).click()
    assert questions and "确定撤销此案件" in questions[0]
    assert "办理中" in page.locator(".task-meta").inner_text()  # dismissed: nothing was cancelled
