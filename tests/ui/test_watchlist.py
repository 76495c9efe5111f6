"""The watch list in a browser: the history chart the demo's weekly scans leave, its table, one unit's view."""

from __future__ import annotations

import pytest

from .conftest import login, shoot

pytestmark = pytest.mark.ui

DRAWN = """() => {
  const canvas = document.getElementById('chart-history');
  const blank = Object.assign(document.createElement('canvas'), { width: canvas.width, height: canvas.height });
  return canvas.width > 0 && canvas.toDataURL() !== blank.toDataURL();
}"""


def test_the_watch_list_charts_its_history_and_shows_one_unit(page):
    """org_head sees the demo's weeks of scans drawn (stacked 预警 and 关注), the same numbers in the table
    beneath, then picks 县交通运输局 (张伟's unit): the chart and table show that unit only."""
    login(page, "org_head")
    page.goto("/watchlist")
    page.wait_for_selector("#history[data-state='ready']")
    assert page.evaluate(DRAWN), "the chart's canvas was left blank"
    page.locator("#history details summary").click()
    rows = page.locator("#history details tbody tr")
    assert rows.count() >= 9  # nine weekly scans
    alerts = page.locator("#history tbody td[data-level='alert']").all_inner_texts()
    watches = page.locator("#history tbody td[data-level='watch']").all_inner_texts()
    assert alerts[-1] == "1" and watches[-1] == "1" and alerts[0] == "0"  # 张伟 on 预警 now, 王强 on 关注
    shoot(page, "watchlist")

    page.get_by_label("单位", exact=True).select_option("县交通运输局")
    page.get_by_role("button", name="显示").click()
    page.wait_for_url("**/watchlist?*unit=*")
    page.wait_for_selector("#history[data-state='ready']")
    assert page.evaluate(DRAWN)
    page.locator("#history details summary").click()
    assert "县交通运输局" in page.locator("#history caption").inner_text()
    watches = page.locator("#history tbody td[data-level='watch']").all_inner_texts()
    assert page.locator("#history tbody td[data-level='alert']").all_inner_texts()[-1] == "1" and watches[-1] == "0"
    assert page.url.endswith("#history")
    shoot(page, "watchlist-unit")


def test_from_the_watch_list_to_a_cadres_ledgers_filtered_by_type(page):
    """discipline follows 张伟's ledger link from the watch list, ticks 诫勉 and filters: the page comes back
    at #ledgers listing only his admonishments, in words (the 提醒谈话 the scan opened among them); the
    integrity ledger says nothing matched."""
    login(page, "discipline")
    page.goto("/watchlist")
    page.locator("tr[data-level='alert']", has_text="张伟").get_by_role("link", name="廉政与作风台账").click()
    page.wait_for_url("**/cadres/c001#ledgers")
    assert page.locator("table.ledger[data-kind='integrity'] tbody tr").count() >= 2  # his two late reports
    page.get_by_label("诫勉", exact=True).check()
    page.locator(".ledger-filter").get_by_role("button", name="筛选").click()
    page.wait_for_url("**/cadres/c001?*type=admonishment*#ledgers")
    conduct = page.locator("table.ledger[data-kind='conduct'] tbody tr")
    assert set(conduct.evaluate_all("rows => rows.map(r => r.dataset.type)")) == {"admonishment"}
    texts = conduct.all_inner_texts()
    assert any("诫勉（苗头性问题预警（提醒谈话））" in text for text in texts)
    assert not any("early_warning" in text or "report_violation" in text for text in texts)
    assert page.locator("table.ledger[data-kind='integrity']").count() == 0
    assert page.get_by_label("诫勉", exact=True).is_checked()
    shoot(page, "cadre-ledgers-filtered")
