"""Ledgers and the early-warning watch list in the browser: the cadre page's ledger section and its PDF,
the watch list page by unit, and who may open it."""

from __future__ import annotations

from datetime import timedelta

from service.usecases import early_warning
from service.usecases.context import SYSTEM
from tests.api.test_documents import pdf_text
from tests.web.test_web_shell import login


def _late_reports(api, services, n):
    today = services.today()
    for day in range(n):
        response = api.post("/api/cadres/c1/reports", as_="org_dept", json={
            "kind": "property", "event_on": (today - timedelta(days=100 + day)).isoformat(),
            "reported_on": (today - timedelta(days=day)).isoformat(), "summary": f"购买住房{day}"})
        assert response.status_code == 201, response.json


def test_the_cadre_page_shows_both_ledgers_and_prints_them(client, api, services):
    api.create_cadre("c1")
    _late_reports(api, services, 1)
    login(client, "discipline")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "廉政台账" in page and "作风台账" in page and 'data-kind="integrity"' in page
    assert "个人有关事项逾期报告（财产变动）" in page and "诫勉（未按规定报告）：办理中" in page
    assert 'name="from"' in page and "打印台账" in page
    pdf = client.get("/cadres/c1/ledger.pdf?kind=integrity&from=&to=")  # the form sent with no period
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_the_watch_list_page_by_unit(client, api, services):
    api.create_cadre("c1")
    api.create_cadre("c2", unit="县交通局")
    _late_reports(api, services, 2)
    early_warning.scan(services, SYSTEM)
    login(client, "org_head")
    page = client.get("/watchlist").get_data(as_text=True)
    assert '">县发改局 <span class="count">' in page  # a section per unit with flagged cadres
    assert '">县交通局 <span class="count">' not in page  # c2 has no signal (its unit is only in the chart's)
    assert 'data-level="alert"' in page and "近12个月个人有关事项逾期或未报告达2次" in page
    assert "/cadres/c1#ledgers" in page


def test_the_watch_list_page_is_refused_to_other_roles(client, api):
    login(client, "org_dept")
    assert client.get("/watchlist").status_code == 403


def _history_data(page):
    import json
    import re

    raw = re.search(r'<script type="application/json" id="history-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(raw)


def test_the_watch_list_page_charts_the_history_with_a_table_beneath(client, api, services):
    api.create_cadre("c1")
    api.create_cadre("c2", unit="县交通局")
    _late_reports(api, services, 2)
    api.post("/api/cadres/c2/reports", as_="org_dept", json={
        "kind": "family", "event_on": (services.today() - timedelta(days=100)).isoformat(),
        "reported_on": (services.today() - timedelta(days=10)).isoformat(), "summary": "子女出国"})
    day, earlier = services.today(), services.today() - timedelta(days=7)
    early_warning.scan(services, SYSTEM, earlier)
    early_warning.scan(services, SYSTEM, day)
    login(client, "org_head")
    page = client.get("/watchlist").get_data(as_text=True)
    assert 'id="chart-history"' in page and "dist/watchlist.js" in page
    data = _history_data(page)
    assert [(d["scanned_on"], d["alert"], d["watch"]) for d in data["days"]] == [
        (earlier.isoformat(), 0, 1), (day.isoformat(), 1, 1)]  # c1's two late reports came after the first scan
    assert data["labels"]["alert"] == "预警" and data["labels"]["watch"] == "关注"
    row = (f'<tr data-day="{day.isoformat()}"><td>{day.isoformat()}</td><td data-level="alert">1</td>'
           '<td data-level="watch">1</td><td data-level="none">0</td></tr>')
    assert row in page  # the chart's numbers, in a table for those who cannot see it
    assert '<option value="县交通局">县交通局</option>' in page

    one = client.get("/watchlist?unit=县交通局&from=&to=").get_data(as_text=True)
    assert '<option value="县交通局" selected>' in one
    assert [(d["alert"], d["watch"]) for d in _history_data(one)["days"]] == [(0, 1), (0, 1)]
    assert "干部人数：县交通局</caption>" in one
    assert f'<tr data-day="{day.isoformat()}"><td>{day.isoformat()}</td><td data-level="alert">0</td>' in one
    later = client.get(f"/watchlist?from={day.isoformat()}").get_data(as_text=True)
    assert [d["scanned_on"] for d in _history_data(later)["days"]] == [day.isoformat()]

    client.set_cookie("lang", "en")
    english = client.get("/watchlist").get_data(as_text=True)
    assert "Watch list over time" in english and _history_data(english)["labels"]["alert"] == "Alert"


def test_the_watch_list_page_refuses_a_reversed_period(client, api):
    login(client, "discipline")
    assert client.get("/watchlist?from=2026-02-01&to=2026-01-01").status_code == 400


def test_the_cadre_page_names_codes_in_english_where_the_ui_has_them(client, api, services):
    """Under English the ledger's categories, statuses and the UI's tables are English; a process's own option
    titles stay as its form gives them; the printed ledger stays Chinese."""
    api.create_cadre("c1")
    _late_reports(api, services, 1)
    login(client, "discipline")
    client.set_cookie("lang", "en")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert "<td>Personal matters</td>" in page and "<td>Admonishment</td>" in page
    assert "个人有关事项逾期报告（Property change）" in page and "诫勉（未按规定报告）：Open" in page
    assert "report_violation" not in page.split('id="ledgers"')[1].split("</section>")[0]
    pdf = pdf_text(client.get("/cadres/c1/ledger.pdf?kind=integrity"))
    assert "财产变动" in pdf and "Property" not in pdf


def _ledger_rows(page, kind):
    import re

    table = re.search(rf'<table class="table ledger" data-kind="{kind}">(.*?)</table>', page, re.S)
    return re.findall(r'<tr data-type="([a-z_]+)">', table.group(1)) if table else []


def test_the_ledger_filter_form_picks_a_period_and_types(client, api, services):
    """A GET form (no JS needed) that comes back to #ledgers: only the chosen types and period are listed, the
    boxes stay ticked, and each ledger's print button prints what is shown."""
    api.create_cadre("c1")
    _late_reports(api, services, 2)  # two personal reports (integrity) and their two 诫勉 (conduct)
    login(client, "discipline")
    page = client.get("/cadres/c1").get_data(as_text=True)
    assert 'action="/cadres/c1#ledgers"' in page and 'name="type" value="sanction"' in page
    assert _ledger_rows(page, "integrity") == ["personal_report"] * 2
    assert _ledger_rows(page, "conduct") == ["admonishment"] * 2

    yesterday = (services.today() - timedelta(days=1)).isoformat()
    page = client.get(f"/cadres/c1?from=&to={yesterday}&type=personal_report").get_data(as_text=True)
    assert _ledger_rows(page, "integrity") == ["personal_report"]  # the one reported yesterday
    assert _ledger_rows(page, "conduct") == [] and "所选期间和类别无记录" in page
    assert 'value="personal_report" checked' in page and 'value="admonishment" checked' not in page
    assert '<input type="hidden" name="type" value="personal_report">' in page
    assert f'<input type="hidden" name="to" value="{yesterday}">' in page
    assert page.count('class="inline ledger-print"') == 1  # no conduct type chosen: nothing to print there

    both = client.get("/cadres/c1?type=personal_report&type=admonishment").get_data(as_text=True)
    assert _ledger_rows(both, "integrity") == ["personal_report"] * 2 and _ledger_rows(both, "conduct") == [
        "admonishment"] * 2
    printed = pdf_text(client.get(f"/cadres/c1/ledger.pdf?kind=integrity&to={yesterday}&type=personal_report"))
    assert "购买住房1" in printed and "购买住房0" not in printed


def test_a_bad_ledger_filter_shows_the_page_with_the_problem(client, api, services):
    api.create_cadre("c1")
    _late_reports(api, services, 1)
    login(client, "discipline")
    response = client.get("/cadres/c1?type=bribery")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "bribery" in page and 'class="form-errors"' in page
    assert _ledger_rows(page, "integrity") == ["personal_report"]  # unfiltered, beside the problem
    assert client.get("/cadres/c1?from=2026-02-01&to=2026-01-01").status_code == 400
    assert client.get("/cadres/nobody?type=bribery").status_code == 404
