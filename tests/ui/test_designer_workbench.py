"""The designer's workbench in a real browser: validate, deploy without change, the palette beside the diagram,
the live form preview, problems marked in one language, the version diff, and migrating cases after a dry run."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from service.config import PROJECT_ROOT

from .conftest import PASSWORD, login, settle, shoot
from .test_designer import _open_group, _select

pytestmark = pytest.mark.ui
BPMN_DIR = Path(PROJECT_ROOT) / "bpmn"
CJK = re.compile(r"[\u4e00-\u9fff]")
LAYOUT = """() => {
  const box = (el) => el.getBoundingClientRect();
  const covers = [box(document.querySelector('#canvas .djs-palette')), box(document.querySelector('.zoom-controls'))];
  const canvas = box(document.querySelector('#canvas'));
  const shapes = [...document.querySelectorAll('#canvas .djs-shape .djs-visual')].map(box)
    .filter((r) => r.width > 0 && r.height > 0);
  const hits = (r) => covers.some((c) => r.right > c.left && r.left < c.right && r.bottom > c.top && r.top < c.bottom);
  const out = (r) => r.left < canvas.left - 1 || r.right > canvas.right + 1 || r.top < canvas.top - 1
    || r.bottom > canvas.bottom + 1;
  return { shapes: shapes.length, covered: shapes.filter(hits).length, outside: shapes.filter(out).length,
           zoom: window.cadreflowModeler.get('canvas').zoom() };
}"""


def api_deploy(server, key: str, body: bytes) -> dict:
    """Deploy a version over the JSON API, as a designer's script would."""
    login_request = urllib.request.Request(
        server.base + "/api/auth/token", data=json.dumps({"username": "designer", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(login_request) as response:
        token = json.load(response)["token"]
    request = urllib.request.Request(f"{server.base}/api/processes/{key}/versions", data=body,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/xml"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def open_modeler(page, key: str) -> None:
    page.goto(f"/designer/{key}/edit")
    page.wait_for_selector("#canvas[data-state='ready']")
    settle(page)


def result_text(page, kind: str) -> str:
    page.wait_for_selector(f"#deploy-result[data-kind='{kind}'].deploy-ok, #deploy-result[data-kind='{kind}']"
                           ".deploy-error")
    return page.locator("#deploy-result").inner_text()


def test_validate_and_deploy_an_unchanged_diagram_create_nothing(page):
    """Opened and saved untouched: 校验 says no change from v1; 部署 says 无变化; the catalogue stays at v1."""
    login(page, "designer")
    open_modeler(page, "annual_assessment")
    page.get_by_role("button", name="校验", exact=True).click()
    assert "与第 1 版相比无变化" in result_text(page, "validate")
    shoot(page, "modeler-validate")
    page.get_by_role("button", name="部署", exact=True).click()
    assert "无变化：与第 1 版相同，未创建新版本" in result_text(page, "deploy")
    page.goto("/designer")
    assert page.locator(".process-card[data-process='annual_assessment'] .badge-version").inner_text() == "v1"


@pytest.mark.parametrize("width", [1280, 390])
def test_the_palette_never_covers_the_diagram_and_zoom_controls_work(page, width):
    """On load the whole diagram sits inside the canvas, clear of the palette and of the zoom buttons; +, − and
    适应 zoom and fit again."""
    login(page, "designer")
    page.set_viewport_size({"width": width, "height": 900})
    open_modeler(page, "pre_appointment_vetting")
    fitted = page.evaluate(LAYOUT)
    assert fitted["shapes"] > 20 and (fitted["covered"], fitted["outside"]) == (0, 0), fitted
    page.locator("#zoom-in").click()
    page.locator("#zoom-in").click()
    zoomed = page.evaluate(LAYOUT)["zoom"]
    assert zoomed > fitted["zoom"]
    page.locator("#zoom-out").click()
    assert page.evaluate(LAYOUT)["zoom"] < zoomed
    page.get_by_role("button", name="适应").click()
    again = page.evaluate(LAYOUT)
    assert (again["covered"], again["outside"]) == (0, 0) and abs(again["zoom"] - fitted["zoom"]) < 1e-6


def test_the_form_preview_shows_the_form_as_users_will_see_it(page):
    """Selecting a user task shows its form rendered like the task page; an edit shows at once; a broken
    form shows deploy's problem instead."""
    login(page, "designer")
    open_modeler(page, "departure_audit")
    _select(page, "assign_audit_team")
    _open_group(page, "group-cadreflow")
    preview = page.locator(".cf-form-preview")
    page.wait_for_selector(".cf-form-preview[data-state='ok']")
    assert "审计组组长" in preview.inner_text()
    form = page.get_by_label("表单（JSON Schema）")
    schema = json.loads(form.input_value())
    schema["properties"]["scope"] = {"type": "string", "title": "审计范围", "enum": ["full", "partial"],
                                     "x-enumNames": ["全面审计", "专项审计"]}
    form.fill(json.dumps(schema, ensure_ascii=False))
    page.wait_for_selector(".cf-form-preview[data-state='ok'] :text('专项审计')")
    assert preview.locator("input[type='radio'][name='scope']").count() == 2
    preview.scroll_into_view_if_needed()
    shoot(page, "modeler-form-preview")
    form.fill(json.dumps({"type": "array"}))
    page.wait_for_selector(".cf-form-preview[data-state='invalid']")
    assert "表单必须是对象结构" in preview.inner_text()


def _break_form(page, element_id: str) -> None:
    _select(page, element_id)
    _open_group(page, "group-cadreflow")
    form = page.get_by_label(re.compile(r"表单（JSON Schema）|Form \(JSON Schema\)"))
    form.fill(form.input_value().replace('"type": "object"', '"type": "objekt"', 1))
    page.wait_for_selector(".cf-form-preview[data-state='invalid']")


def test_problems_are_marked_on_the_diagram_in_chinese_then_english(page):
    """A broken form: listed by the task's name, marked red with a note, in Chinese; the same in English after
    the language switch; clicking the name selects the element. No XML line number anywhere."""
    login(page, "designer")
    open_modeler(page, "pre_appointment_vetting")
    _break_form(page, "org_head_review")
    page.get_by_role("button", name="校验", exact=True).click()
    text = result_text(page, "validate")
    assert "未通过校验" in text and "部长审核" in text and "org_head_review" in text
    assert page.locator(".djs-element.cf-error[data-element-id='org_head_review']").count() == 1
    note = page.locator(".cf-problem-overlay").first.inner_text()
    assert CJK.search(note) and "invalid" not in note and "行" not in text and "line" not in text.lower()
    page.locator(".problem-element", has_text="部长审核").first.click()
    page.wait_for_function("() => window.cadreflowModeler.get('selection').get()[0]?.id === 'org_head_review'")
    shoot(page, "modeler-problems-zh")

    page.get_by_role("button", name="English").click()
    page.wait_for_selector("#canvas[data-state='ready']")
    _break_form(page, "org_head_review")
    page.get_by_role("button", name="Validate", exact=True).click()
    text = result_text(page, "validate")
    assert "does not validate" in text and "部长审核" in text
    notes = page.locator(".cf-problem-overlay").all_inner_texts()
    assert notes and not any(CJK.search(n) for n in notes), notes
    assert page.locator(".djs-element.cf-error[data-element-id='org_head_review']").count() == 1
    shoot(page, "modeler-problems-en")


def test_the_diff_page_shows_what_changed_by_name(page, server):
    """After v2 renames a task and adds a form field, the diff lists it by name with 名称 and 表单, names the
    new field, and marks the task on both diagrams."""
    text = (BPMN_DIR / "departure_audit.bpmn").read_text(encoding="utf-8")
    changed = text.replace('name="组建审计组"', 'name="组建审计小组"', 1).replace(
        '"title": "审计组成员"}', '"title": "审计组成员"}, "scope": {"type": "string", "title": "审计范围"}', 1)
    assert changed.count("审计范围") == 1 and "组建审计小组" in changed
    assert api_deploy(server, "departure_audit", changed.encode())["version"] == 2
    login(page, "designer")
    page.goto("/designer/departure_audit/diff")
    row = page.locator("tr[data-element-id='assign_audit_team']")
    assert "组建审计小组" in row.inner_text() and "名称" in row.inner_text() and "表单" in row.inner_text()
    assert "新增字段：审计范围" in page.locator(".form-change").inner_text()
    for version in (1, 2):
        page.wait_for_selector(f"#diagram-v{version}[data-state='ready']")
        marked = page.locator(f"#diagram-v{version} .djs-element.cf-changed[data-element-id='assign_audit_team']")
        assert marked.count() == 1
    shoot(page, "designer-diff")


def test_migrating_cases_is_a_dry_run_first_then_a_confirmed_run(new_page, server):
    """designer: the dry run's counts and tasks, no case, and no way to run it; admin: the same dry run with
    the cases, then the confirmed run moves them to v2."""
    text = (BPMN_DIR / "admonishment.bpmn").read_text(encoding="utf-8")
    changed = text.replace('"title": "理由"', '"title": "受理理由"', 1)
    assert changed != text and api_deploy(server, "admonishment", changed.encode())["version"] == 2

    designer = new_page()
    login(designer, "designer")
    designer.goto("/designer/admonishment/migrate")
    designer.get_by_role("button", name="试运行").click()
    designer.wait_for_load_state()  # the whole report: the checks below for what it lacks mean something
    report = designer.locator("#migrate-report")
    assert report.get_attribute("data-dry-run") == "true"
    assert int(report.locator("[data-count='moved']").inner_text()) >= 1
    assert "受理审核" in report.inner_text() and "有修改" in report.inner_text()
    assert report.locator("a[href^='/cases/']").count() == 0 and designer.locator("#run-migration").count() == 0
    assert "系统管理员" in report.inner_text()
    shoot(designer, "designer-migrate-dry-run")

    admin = new_page()
    login(admin, "admin")
    admin.goto("/designer/admonishment/migrate")
    admin.get_by_role("button", name="试运行").click()
    admin.wait_for_load_state()
    moved = int(admin.locator("#migrate-report [data-count='moved']").inner_text())
    assert admin.locator("#migrate-report a[href^='/cases/']").count() == moved
    admin.get_by_label("我已核对以上试运行结果，确认迁移这些案件").check()
    admin.get_by_role("button", name=f"确认迁移 {moved} 个案件").click()
    admin.wait_for_selector(f".flash-success:has-text('已迁移 {moved} 个案件到第 2 版')")
    admin.wait_for_load_state()
    assert admin.locator("#migrate-report").get_attribute("data-dry-run") == "false"
    assert admin.locator(".migrate-cases .migrate-migrated").count() == moved
    shoot(admin, "designer-migrate-done")
    admin.get_by_role("button", name="试运行").click()
    expect(admin.locator("#migrate-report [data-count='total']")).to_have_text("0")
