"""The county's day (setting TIMEZONE): "today" for rules, scans and scripts is the date in the county, not
the server's. Shanghai's day begins at 16:00 UTC the day before, so a server on UTC would be a day behind
for eight hours of every day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from service import create_app
from service.db.models import Case, ScheduledStart
from service.usecases import bulk, schedules
from service.usecases.context import county_today
from tests.api.test_early_warning import public_report
from tests.conformance.bpmn import LANE, chain, definitions, end, form, start, user
from tests.conftest import make_settings
from tests.engine.bpmn_builder import KEY, script_process

# 25 hours apart: whatever the moment, their dates differ.
EAST, WEST = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")


def _now_in(zone: ZoneInfo) -> set[date]:
    return {datetime.now(zone).date()}


def test_the_county_clock_names_the_date_in_its_zone():
    before_east, before_west = _now_in(EAST), _now_in(WEST)
    east, west = county_today(EAST)(), county_today(WEST)()
    assert east in before_east | _now_in(EAST) and west in before_west | _now_in(WEST)  # a midnight may pass
    assert east > west


def test_the_services_today_follows_the_timezone_setting(tmp_path):
    east = create_app(make_settings(tmp_path / "east", TIMEZONE=EAST.key)).extensions["cadreflow"]
    west = create_app(make_settings(tmp_path / "west", TIMEZONE=WEST.key)).extensions["cadreflow"]
    try:
        assert east.zone == EAST and west.zone == WEST
        assert east.today() > west.today()
    finally:
        east.db.dispose()
        west.db.dispose()


def test_a_scripts_today_is_the_services_day_through_the_isolated_executor(api, services, cadre):
    """The executor process runs in no zone of its own: the service sends its day with the step, so a
    script's today() agrees with the day the service's own rules take (and moves when a test moves it)."""
    deployed = api.post(f"/api/processes/{KEY}/versions", as_="designer", data=script_process("t = today()"),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    services.today = lambda: date(2025, 3, 10)
    assert api.start(KEY, "c1")["data"]["t"] == "2025-03-10"
    services.today = lambda: date(2025, 3, 11)
    assert api.start(KEY, "c1")["data"]["t"] == "2025-03-11"


def test_a_schedule_firing_at_the_countys_new_year_opens_cases_of_the_new_year(api, services, cadre):
    """A timer start at midnight of 1 January in Shanghai fires at 16:00 UTC on 31 December: its cases are of
    the new year, the year the county is in."""
    year_form = {"type": "object", "properties": {"cadre_id": {"type": "string"}, "year": {"type": "integer"}},
                 "required": ["cadre_id"]}
    new_year = ('<bpmn:timerEventDefinition id="new_year"><bpmn:timeDate>"2027-01-01T00:00:00+08:00"'
                "</bpmn:timeDate></bpmn:timerEventDefinition>")
    key = "county_new_year"
    body = (start(definition=f"<bpmn:extensionElements>{form(year_form)}</bpmn:extensionElements>{new_year}")
            + user("a") + end() + chain("start", "a", "end"))
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, {LANE: ["a"]}),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    assert schedules.fire_due(services, now=datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == 0
    assert schedules.fire_due(services, now=datetime(2026, 12, 31, 16, 1, tzinfo=UTC)) == 1
    bulk.run_jobs(services)
    opened = api.get("/api/cases", query_string={"process": key}).json["items"]
    assert [api.get(f"/api/cases/{case['id']}").json["data"]["year"] for case in opened] == [2027]


def test_a_yearly_cycle_missed_for_years_opens_only_the_latest_year_and_logs_the_skipped(api, services, cadre,
                                                                                         caplog):
    """The worker was down from 2027 to March 2030: its first poll opens the 2030 述职述廉 cases, not 2027's (and
    then 2028's, 2029's, …: deduped on open cases, the cadres would have got 2027's and never the current year's);
    the years skipped are logged for the admin, and the next firing is the next New Year."""
    year_form = {"type": "object", "properties": {"cadre_id": {"type": "string"}, "year": {"type": "integer"}},
                 "required": ["cadre_id"]}
    yearly = ('<bpmn:timerEventDefinition id="yearly"><bpmn:timeCycle>"R/2027-01-01T00:00:00+08:00/P1Y"'
              "</bpmn:timeCycle></bpmn:timerEventDefinition>")
    key = "county_yearly"
    body = (start(definition=f"<bpmn:extensionElements>{form(year_form)}</bpmn:extensionElements>{yearly}")
            + user("a") + end() + chain("start", "a", "end"))
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, {LANE: ["a"]}),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    back = datetime(2030, 3, 1, tzinfo=UTC)
    with caplog.at_level("WARNING", logger="service.usecases.schedules"):
        assert [schedules.fire_due(services, now=back) for _ in range(3)] == [1, 0, 0]
    assert "2027-01-01, 2028-01-01, 2029-01-01" in caplog.text
    bulk.run_jobs(services)
    opened = api.get("/api/cases", query_string={"process": key}).json["items"]
    assert [api.get(f"/api/cases/{case['id']}").json["data"]["year"] for case in opened] == [2030]
    with services.db.unit_of_work(write=False) as session:
        due = session.scalar(select(ScheduledStart.next_due).where(ScheduledStart.process_key == key))
    assert due.astimezone(services.zone).isoformat() == "2031-01-01T00:00:00+08:00"


def test_a_monthly_schedule_fires_on_the_first_of_each_month_in_the_county(api, services):
    """A cycle at midnight of the 1st in Shanghai: the month added is the county's, not UTC's (where midnight of
    1 February is still 31 January, and a month added to it is January's 31 days: 4 March, not 1 March)."""
    monthly = ('<bpmn:timerEventDefinition id="monthly"><bpmn:timeCycle>"R/2027-01-01T00:00:00+08:00/P1M"'
               "</bpmn:timeCycle></bpmn:timerEventDefinition>")
    key = "county_monthly"
    body = start(definition=monthly) + user("a") + end() + chain("start", "a", "end")
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, {LANE: ["a"]}),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    firings = []
    for _ in range(4):
        with services.db.unit_of_work(write=False) as session:
            due = session.scalar(select(ScheduledStart.next_due).where(ScheduledStart.process_key == key))
        firings.append(due.astimezone(services.zone).isoformat())
        assert schedules.fire_due(services, now=due) == 1
    assert firings == ["2027-01-01T00:00:00+08:00", "2027-02-01T00:00:00+08:00", "2027-03-01T00:00:00+08:00",
                       "2027-04-01T00:00:00+08:00"]


def test_the_ledger_dates_a_report_by_the_countys_calendar(api, services, cadre):
    """A report filed at 20:00 UTC on 1 June was filed on 2 June in the county: its ledger line says so."""
    public_report(api)
    with services.db.unit_of_work() as session:
        report = session.scalars(select(Case).where(Case.process_key == "public_report")).one()
        report.created_at = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    items = api.get("/api/cadres/c1/ledger", query_string={"kind": "integrity"}).json["items"]
    assert [(item["kind"], item["on"]) for item in items] == [("public_report", "2026-06-02")]


def test_a_deadline_dated_without_zone_opens_cases_due_at_that_moment(api, cadre):
    """A boundary timeDate without zone deployed, and then every start of the process failed with a 500: its due time
    reached a column that refuses a time without zone. It is due when SpiffWorkflow fires it (the server's zone)."""
    dated = ('<bpmn:timerEventDefinition id="t"><bpmn:timeDate>"2099-01-01T00:00:00"'
             "</bpmn:timeDate></bpmn:timerEventDefinition>")
    key = "dated_deadline"
    body = (start() + user("a") + f'<bpmn:boundaryEvent id="b" attachedToRef="a">{dated}</bpmn:boundaryEvent>'
            + end("e1") + end("e2") + chain("start", "a", "e1") + chain("b", "e2"))
    deployed = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, {LANE: ["a"]}),
                        content_type="application/xml")
    assert deployed.status_code == 201, deployed.json
    case = api.start(key, "c1")
    due = datetime(2099, 1, 1).astimezone(UTC)
    assert datetime.fromisoformat(api.open_task(case["id"], "a")["due_at"]) == due
