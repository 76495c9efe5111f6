"""The designer's journey: edit a task name in the bpmn-js modeler, deploy, see the new version."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import login, shoot

pytestmark = pytest.mark.ui
NEW_NAME = "轮岗交流方案（修订）"


def _select(page, element_id: str) -> None:
    """Click an element on the canvas (unless selected: a click would unselect it) and open General."""
    selected = "id => window.cadreflowModeler.get('selection').get()[0]?.id === id"
    if not page.evaluate(selected, element_id):
        shape = page.locator(f"#canvas .djs-element[data-element-id='{element_id}']").first
        box = shape.bounding_box()
        inside_lane = {"x": box["width"] - 30, "y": box["height"] / 2}  # empty lane space, right of the flow
        shape.click(position=inside_lane if element_id.startswith("Lane_") else None)
        page.wait_for_function(selected, arg=element_id)
    _open_group(page, "group-general")
    page.locator("#bio-properties-panel-name").wait_for()


def _rename(page, element_id: str, name: str) -> None:
    _select(page, element_id)
    field = page.locator("#bio-properties-panel-name")
    field.fill(name)
    field.press("Tab")
    page.wait_for_function(
        "([id, name]) => window.cadreflowModeler.get('elementRegistry').get(id).businessObject.name === name",
        arg=[element_id, name])


def _open_group(page, group_id: str) -> None:
    header = page.locator(f"[data-group-id='{group_id}'] .bio-properties-panel-group-header")
    if "open" not in (header.get_attribute("class") or ""):
        header.click()
    expect(header).to_have_class(re.compile(r"\bopen\b"))


def test_designer_edits_a_task_name_deploys_and_sees_the_new_version(page):
    """A broken form is refused and marked on its task; the fixed, renamed diagram deploys as version 2."""
    login(page, "designer")
    page.goto("/designer")
    card = page.locator(".process-card[data-process='rotation_review']")
    assert card.locator(".badge-version").inner_text() == "v1"
    shoot(page, "designer")

    card.get_by_role("link", name="编辑最新版本").click()
    page.wait_for_selector("#canvas[data-state='ready']")
    _select(page, "Lane_org_dept")
    assert page.locator("#bio-properties-panel-name").input_value() == "org_dept", "a lane is named by its role"

    _select(page, "rotation_plan")
    _open_group(page, "group-cadreflow")
    form = page.get_by_label("表单（JSON Schema）")
    original = form.input_value()
    assert '"title": "轮岗方案"' in original
    form.fill('{"title": ')
    page.wait_for_selector("[data-entry-id='cadreflow-form'] .bio-properties-panel-error")
    page.get_by_role("button", name="部署", exact=True).click()
    page.wait_for_selector(".deploy-error li")
    assert "rotation_plan" in page.locator(".deploy-error").inner_text()
    assert page.locator(".djs-element.cf-error[data-element-id='rotation_plan']").count() == 1
    assert page.locator(".cf-problem-overlay").count() >= 1
    shoot(page, "modeler-errors")

    form.fill(original)
    _rename(page, "rotation_plan", NEW_NAME)
    page.get_by_role("button", name="部署", exact=True).click()
    page.wait_for_selector(".deploy-ok:has-text('已部署为第 2 版')")
    assert page.locator(".djs-element.cf-error").count() == 0
    shoot(page, "modeler")

    page.locator(".deploy-ok a", has_text="查看该版本").click()
    page.wait_for_selector("#diagram[data-state='ready']")
    assert NEW_NAME in page.locator("#diagram .djs-element[data-element-id='rotation_plan']").text_content()
    shoot(page, "version")
    page.goto("/designer")
    assert page.locator(".process-card[data-process='rotation_review'] .badge-version").inner_text() == "v2"


def test_designer_creates_a_process_from_the_template_renames_its_task_and_deploys_v1_then_v2(page):
    """/designer → 新建流程: the template opens in the modeler, the task is renamed, deploy makes v1; renamed again
    on the same canvas, deploy makes v2 on /designer."""
    login(page, "designer")
    page.goto("/designer")
    page.get_by_role("link", name="新建流程").click()
    page.wait_for_url("**/designer/new")
    page.get_by_label("流程标识").fill("ui_leave_approval")
    page.get_by_label("流程名称").fill("请假审批")
    page.get_by_role("button", name="进入建模器").click()
    page.wait_for_selector("#canvas[data-state='ready']")
    expect(page.locator("#new-process-note")).to_contain_text("ui_leave_approval")
    _select(page, "Lane_new")
    assert page.locator("#bio-properties-panel-name").input_value() == "org_dept"

    _rename(page, "review", "请假审核")
    page.get_by_role("button", name="部署", exact=True).click()
    page.wait_for_selector(".deploy-ok:has-text('已部署为第 1 版')")
    shoot(page, "modeler-new")
    # The canvas is now version 1: a second change deploys from it (the page sends the base version it holds).
    _rename(page, "review", "请假复核")
    page.get_by_role("button", name="部署", exact=True).click()
    page.wait_for_selector(".deploy-ok:has-text('已部署为第 2 版')")

    page.goto("/designer")
    card = page.locator(".process-card[data-process='ui_leave_approval']")
    expect(card.locator(".badge-version")).to_have_text("v2")
    expect(card.locator("h2")).to_have_text("请假审批")
