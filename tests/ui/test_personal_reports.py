"""Personal-matters reports in a browser: org_dept records one on a cadre's page, then corrects it (更正)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from service.usecases.context import county_today

from .conftest import login, shoot

pytestmark = pytest.mark.ui


def test_org_dept_records_a_report_then_corrects_it_with_a_reason(page):
    """赵敏's page: the 登记报告 form records a timely report; its 更正 form, filled from the report, is sent
    first without a reason (the browser asks for one, nothing is sent), then with one: the table shows the new
    summary and the correction with who and why, and the report's form is based on its new revision."""
    today = county_today(ZoneInfo("Asia/Shanghai"))()  # the server's TIMEZONE
    login(page, "org_dept")
    page.goto("/cadres/c004")
    reports = page.locator("#personal-reports")
    reports.get_by_text("登记报告", exact=True).click()
    adding = reports.locator(".report-form form")
    adding.get_by_label("财产变动").check()
    adding.get_by_label("变动发生日期").fill((today - timedelta(days=12)).isoformat())
    adding.get_by_label("报告日期（或发现日期）").fill((today - timedelta(days=2)).isoformat())
    adding.get_by_label("变动情况").fill("购置车辆一辆")
    adding.get_by_role("button", name="登记").click()
    page.wait_for_selector(".flash", state="attached")
    row = reports.locator("table.personal-reports tbody tr[id^='report-']", has_text="购置车辆一辆")
    assert "按期" in row.inner_text()
    report_id = (row.get_attribute("id") or "").removeprefix("report-")

    correcting = reports.locator(f"tr.report-correct-row:has(form[action$='/reports/{report_id}/correct'])")
    correcting.get_by_text("更正此报告", exact=True).click()
    form = correcting.locator("form")
    prefix = f"#correct-{report_id}-f-"
    assert form.locator(f"{prefix}summary").input_value() == "购置车辆一辆"  # filled from the report
    assert form.locator("input[name='base_revision']").input_value() == "0"
    form.locator(f"{prefix}summary").fill("购置车辆两辆")
    form.get_by_role("button", name="提交更正").click()
    assert form.locator(f"{prefix}reason").evaluate("field => field.validity.valueMissing")
    assert page.url.endswith("/cadres/c004")  # the browser kept the form: nothing was sent

    form.locator(f"{prefix}reason").fill("据车辆登记证更正")
    form.get_by_role("button", name="提交更正").click()
    page.wait_for_url("**/cadres/c004#personal-reports")
    assert "已更正个人有关事项报告" in page.locator(".flash").first.inner_text()
    row = reports.locator(f"tr#report-{report_id}")
    assert "购置车辆两辆" in row.inner_text()
    assert "org_dept" in row.locator(".report-corrections").inner_text()
    assert "据车辆登记证更正" in row.locator(".report-corrections").inner_text()
    assert reports.locator(f"form[action$='/reports/{report_id}/correct'] input[name='base_revision']") \
        .input_value() == "1"
    shoot(page, "cadre-report-corrected")
