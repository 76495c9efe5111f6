"""Early warning on 苗头性问题 (PROCESSES.md §10): signals, the early_warning table's boundaries, the scan
opening one 提醒谈话 per alert, the watch list and who may read it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from service.db.models import Case
from service.usecases import early_warning, lookups
from service.usecases.context import SYSTEM, Actor
from tests.api.support import ADMONISHMENT, assert_error, hold_in_incident

REPORT = {"channel": "hotline", "subject_name": "张三", "subject_unit": "县发改局", "category": "inaction",
          "content": "反映工作作风问题"}


def services(api):
    return api.client.application.extensions["cadreflow"]


def today(api) -> date:
    return services(api).today()


def public_report(api, cadre_id="c1"):
    response = api.post("/api/cases", as_="discipline",
                        json={"process": "public_report", "cadre_id": None, "data": REPORT})
    assert response.status_code == 201, response.json
    api.complete(response.json["id"], "triage_report", decision="transfer", transfer_to="县信访局", cadre_id=cadre_id)


def late_report(api, reported_on: date, cadre_id="c1"):
    body = {"kind": "property", "event_on": (reported_on - timedelta(days=90)).isoformat(),
            "reported_on": reported_on.isoformat(), "summary": "购买住房"}
    response = api.post(f"/api/cadres/{cadre_id}/reports", as_="org_dept", json=body)
    assert response.status_code == 201, response.json


def scan(api, on=None, as_="discipline"):
    body = {"on": on.isoformat()} if on else None
    return api.post("/api/early-warning-scan", as_=as_, json=body) if body else api.post(
        "/api/early-warning-scan", as_=as_)


def watch(api, as_="discipline"):
    response = api.get("/api/watchlist", as_=as_)
    assert response.status_code == 200, response.json
    return {item["cadre_id"]: item for item in response.json["items"]}


def early_talks(api, cadre_id="c1"):
    return [c for c in api.cadre(cadre_id)["cases"] if c["process"] == ADMONISHMENT]


@pytest.mark.parametrize(("reports", "level"), [(0, None), (1, "watch"), (2, "watch"), (3, "alert")])
def test_public_reports_in_12_months(api, cadre, reports, level):
    for _ in range(reports):
        public_report(api)
    assert scan(api).status_code in (200, 201)
    entry = watch(api).get("c1")
    assert (entry["level"] if entry else None) == level
    if entry:
        assert entry["signals"]["reports_12m"] == reports and entry["reason"]


def test_a_report_12_months_ago_counts_and_one_a_day_older_does_not(api, cadre):
    for _ in range(3):
        public_report(api)
    year_on = early_warning.months_before(today(api), -12)  # 12 months after the reports
    scan(api, year_on)
    assert watch(api)["c1"]["level"] == "alert"
    scan(api, year_on + timedelta(days=1))  # 12 months and one day
    assert "c1" not in watch(api)


@pytest.mark.parametrize(("late", "level"), [(1, "watch"), (2, "alert")])
def test_late_reports_in_12_months(api, cadre, late, level):
    for n in range(late):
        late_report(api, today(api) - timedelta(days=n))
    scan(api)
    assert watch(api)["c1"]["level"] == level
    assert watch(api)["c1"]["signals"]["late_reports_12m"] == late


def test_a_late_report_12_months_and_one_day_old_does_not_count(api, cadre):
    day = today(api)
    late_report(api, early_warning.months_before(day, 12))
    late_report(api, early_warning.months_before(day, 12) - timedelta(days=1))
    rows = dict(_signals(api, day))
    assert rows["c1"]["late_reports_12m"] == 1


def _signals(api, day):
    with services(api).db.unit_of_work(write=False) as session:
        return early_warning.signal_rows(session, day, services(api).zone)


def _report_times(api, *moments):
    """Move the public reports' creation, oldest first, to these moments."""
    with services(api).db.unit_of_work() as session:
        reports = session.scalars(select(Case).where(Case.process_key == "public_report").order_by(Case.id)).all()
        for report, moment in zip(reports, moments, strict=True):
            report.created_at = moment


def test_the_12_months_begin_and_end_at_the_countys_midnight(api, cadre):
    """A report half an hour into the county's day a year ago counts, half an hour before it does not; on the
    scan's own day, half an hour before the county's next midnight counts and half an hour after does not.
    (Shanghai's midnight is 16:00 UTC the day before: windows cut at UTC midnight get both edges wrong.)"""
    for _ in range(2):
        public_report(api)
    day, zone = today(api), services(api).zone
    year_ago = datetime.combine(early_warning.months_before(day, 12), time.min, zone)
    _report_times(api, year_ago + timedelta(minutes=30), year_ago - timedelta(minutes=30))
    assert dict(_signals(api, day))["c1"]["reports_12m"] == 1
    next_midnight = datetime.combine(day + timedelta(days=1), time.min, zone)
    _report_times(api, next_midnight - timedelta(minutes=30), next_midnight + timedelta(minutes=30))
    assert dict(_signals(api, day))["c1"]["reports_12m"] == 1


def test_signals_are_computed_for_every_cadre_at_once(api, cadre):
    api.create_cadre("c2", post_started_on=(today(api) - timedelta(days=800)).isoformat())
    public_report(api, "c2")
    rows = dict(_signals(api, today(api)))
    assert set(rows) == {"c1", "c2"}
    assert rows["c1"] == {"reports_12m": 0, "late_reports_12m": 0, "latest_grade": None, "dissatisfied_share": None,
                          "years_in_post": rows["c1"]["years_in_post"], "audit_findings_3y": 0}
    assert rows["c2"]["reports_12m"] == 1 and rows["c2"]["years_in_post"] == 2


def test_an_alert_opens_one_reminder_talk_and_a_second_scan_nothing(api, cadre):
    for _ in range(3):
        public_report(api)
    first = scan(api)
    assert first.status_code == 201, first.json
    [opened] = first.json["opened"]
    case = api.case(opened["case_id"])
    assert (case["process"], case["cadre_id"], case["data"]["trigger"]) == (ADMONISHMENT, "c1", "early_warning")
    assert watch(api)["c1"]["case_id"] == opened["case_id"]
    second = scan(api)
    assert second.status_code == 200 and second.json["opened"] == []
    assert len(early_talks(api)) == 1


def test_a_talk_in_incident_is_still_unfinished_so_no_second_opens(api, cadre):
    for _ in range(3):
        public_report(api)
    [opened] = scan(api).json["opened"]
    hold_in_incident(services(api), opened["case_id"])
    assert scan(api).json["opened"] == []
    assert len(early_talks(api)) == 1


def test_watch_opens_nothing(api, cadre):
    public_report(api)
    assert scan(api).json["opened"] == []
    assert early_talks(api) == []


def test_since_is_kept_while_the_level_stays(api, cadre):
    public_report(api)
    day = today(api)
    scan(api, day)
    scan(api, day + timedelta(days=3))
    assert watch(api)["c1"]["since"] == day.isoformat()
    assert watch(api)["c1"]["scanned_on"] == (day + timedelta(days=3)).isoformat()


def test_the_daily_scan_runs_once_across_workers(api, cadre):
    for _ in range(3):
        public_report(api)
    first = early_warning.run_daily_scan(services(api))
    assert first is not None and len(first["opened"]) == 1
    assert early_warning.run_daily_scan(services(api)) is None
    assert len(early_talks(api)) == 1


def test_the_cli_scan(api, cadre):
    for _ in range(3):
        public_report(api)
    result = api.client.application.test_cli_runner().invoke(args=["early-warning-scan"])
    assert result.exit_code == 0, result.output
    assert "1 alert, 0 watch, 1 提醒谈话 opened" in result.output and "cadre c1: case #" in result.output
    again = early_warning.scan(services(api), SYSTEM)
    assert again["alert"] == 1 and again["opened"] == []
    bad = api.client.application.test_cli_runner().invoke(args=["early-warning-scan", "--on", "soon"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output


@pytest.mark.parametrize("role", ["org_dept", "org_head", "committee", "audit", "designer"])
def test_only_discipline_roles_scan(api, cadre, role):
    assert_error(scan(api, as_=role), 403)


@pytest.mark.parametrize("role", ["org_dept", "committee", "audit", "designer"])
def test_the_watch_list_is_for_discipline_and_org_heads(api, cadre, role):
    assert_error(api.get("/api/watchlist", as_=role), 403)


def test_org_head_and_discipline_head_read_the_watch_list(api, cadre):
    public_report(api)
    scan(api)
    assert watch(api, "org_head")["c1"]["level"] == "watch"
    assert watch(api, "discipline_head")["c1"]["name"] == "张三"



def test_grade_share_and_audit_signals(api, cadre):
    from service.db.models import Assessment, Disclosure, DisclosureRating
    from tests.api.support import departure_to_fieldwork

    audit_id = departure_to_fieldwork(api)
    api.complete(audit_id, "audit_fieldwork", as_="audit2", findings="minor", amount_involved=10, report_ref="审计1")
    with services(api).db.unit_of_work() as session:
        session.add_all([Assessment(cadre_id="c1", case_id=audit_id, year=2024, grade="basic"),
                         Assessment(cadre_id="c1", case_id=audit_id, year=2023, grade="excellent")])
        old = Disclosure(case_id=audit_id, cadre_id="c1", year=2023, result="satisfactory")
        session.add(old)
        session.flush()
        session.add_all([DisclosureRating(disclosure_id=old.id, address_hash=f"h{n}", rating=rating)
                         for n, rating in enumerate(["dissatisfied", "satisfied", "satisfied"])])
    day = today(api)
    signals = dict(_signals(api, day))["c1"]
    assert (signals["latest_grade"], signals["dissatisfied_share"], signals["audit_findings_3y"]) == ("basic", 0.333, 1)
    assert dict(_signals(api, early_warning.months_before(day, -36)))["c1"]["audit_findings_3y"] == 1
    later = early_warning.months_before(day, -36) + timedelta(days=1)  # 3 years and one day
    assert dict(_signals(api, later))["c1"]["audit_findings_3y"] == 0
    scan(api)
    assert watch(api)["c1"]["level"] == "watch" and "基本称职" in watch(api)["c1"]["reason"]
    integrity = api.get("/api/cadres/c1/ledger", as_="discipline", query_string={"kind": "integrity"}).json["items"]
    assert [(i["kind"], i["case_id"]) for i in integrity] == [("audit_finding", audit_id)]
    assert integrity[0]["summary"] == "离任审计发现问题（一般问题，涉及金额 10）"
    assert integrity[0]["codes"] == {"findings": "minor"}
    conduct = api.get("/api/cadres/c1/ledger", as_="discipline", query_string={"kind": "conduct"}).json["items"]
    assert {i["kind"] for i in conduct} == {"assessment", "integrity_review"}
    assert "2023 年度述职述廉社会评议：满意" in {i["summary"] for i in conduct}
    assert "2024 年度考核：基本称职" in {i["summary"] for i in conduct}
    # An audit cancelled (say, opened in error) is no finding: neither a signal nor a ledger entry.
    cancelled = api.post(f"/api/cases/{audit_id}/cancel", as_="admin", json={"reason": "误启动"})
    assert cancelled.status_code == 200, cancelled.json
    assert dict(_signals(api, day))["c1"]["audit_findings_3y"] == 0
    integrity = api.get("/api/cadres/c1/ledger", as_="discipline", query_string={"kind": "integrity"}).json["items"]
    assert "audit_finding" not in {i["kind"] for i in integrity}


def test_months_before_keeps_the_day_or_the_months_last():
    assert early_warning.months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert early_warning.months_before(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert early_warning.months_before(date(2026, 1, 15), -12) == date(2027, 1, 15)


def test_the_worker_runs_the_daily_scan(api, cadre):
    import threading

    from service.worker import run_worker

    for _ in range(3):
        public_report(api)
    run_worker(services(api), threading.Event(), once=True)
    assert [c["status"] for c in early_talks(api)] == ["open"]
    assert watch(api)["c1"]["level"] == "alert"
    run_worker(services(api), threading.Event(), once=True)  # claimed for today already
    assert len(early_talks(api)) == 1


def test_a_failing_rotation_scan_does_not_keep_the_early_warning_scan_from_running(api, cadre, monkeypatch):
    """The two daily scans are apart: a rotation scan failing at every poll (say, a new rotation_review version
    whose start form asks for a field the scan does not give) must not leave the county without early warning."""
    import threading

    from service.usecases import rotation
    from service.worker import run_worker

    def broken(*_args):
        raise RuntimeError("rotation scan broken")
    for _ in range(3):
        public_report(api)
    monkeypatch.setattr(rotation, "_scan", broken)
    run_worker(services(api), threading.Event(), once=True)
    assert [c["status"] for c in early_talks(api)] == ["open"]


# The watch list's history (watch_counts): what each scan found, per unit and level.

def history(api, as_="discipline", **query):
    response = api.get("/api/watchlist/history", as_=as_, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def points(body):
    return {(i["scanned_on"], i["unit"], i["level"]): i["count"] for i in body["items"]}


def _two_units(api):
    """c1 (县发改局) at alert; in 县交通局 c2 and c4 at watch, c3 without a signal."""
    for cadre_id in ("c2", "c3", "c4"):
        api.create_cadre(cadre_id, unit="县交通局")
    for _ in range(3):
        public_report(api, "c1")
    late_report(api, today(api), "c2")
    public_report(api, "c4")


def test_a_scan_keeps_its_counts_per_unit_and_level_once_a_day(api, cadre):
    _two_units(api)
    day = today(api).isoformat()
    assert scan(api).status_code == 201
    expected = {(day, "县发改局", "alert"): 1, (day, "县交通局", "watch"): 2, (day, "县交通局", "none"): 1}
    assert points(history(api)) == expected
    scan(api)  # the same day again: replaced, not added
    body = history(api)
    assert points(body) == expected
    assert body["days"] == [{"scanned_on": day, "alert": 1, "watch": 2, "none": 1}]
    assert sorted(body["units"]) == sorted(["县交通局", "县发改局"])
    from service.db.models import WatchCount
    with services(api).db.unit_of_work(write=False) as session:
        assert session.query(WatchCount).count() == 3


def test_scans_on_two_days_give_two_points_and_filters_pick_them(api, cadre):
    _two_units(api)
    first, second = today(api), today(api) + timedelta(days=7)
    scan(api, first)
    late_report(api, today(api), "c3")  # c3 now has a signal too
    scan(api, second)
    body = history(api)
    assert [d["scanned_on"] for d in body["days"]] == [first.isoformat(), second.isoformat()]
    assert [(d["alert"], d["watch"], d["none"]) for d in body["days"]] == [(1, 2, 1), (1, 3, 0)]
    only_second = history(api, **{"from": second.isoformat()})
    assert {p[0] for p in points(only_second)} == {second.isoformat()}
    only_first = history(api, to=first.isoformat())
    assert {p[0] for p in points(only_first)} == {first.isoformat()}
    transport = history(api, unit="县交通局")
    assert {p[1] for p in points(transport)} == {"县交通局"} and transport["unit"] == "县交通局"
    assert [(d["alert"], d["watch"]) for d in transport["days"]] == [(0, 2), (0, 3)]
    assert history(api, unit="无此单位")["items"] == []
    assert history(api, **{"from": second.isoformat(), "to": second.isoformat()})["from"] == second.isoformat()


@pytest.mark.parametrize("query", [{"from": "yesterday"}, {"to": "2026-13-01"},
                                   {"from": "2026-02-01", "to": "2026-01-01"}])
def test_bad_history_dates_are_400(api, cadre, query):
    assert_error(api.get("/api/watchlist/history", as_="discipline", query_string=query), 400)


@pytest.mark.parametrize("role", ["org_dept", "committee", "audit", "designer", "norole"])
def test_the_history_is_for_the_watch_lists_readers(api, cadre, role):
    public_report(api)
    scan(api)
    assert_error(api.get("/api/watchlist/history", as_=role), 403)
    assert points(history(api, as_="org_head")) and points(history(api, as_="discipline_head"))


def test_a_narrower_reader_sees_only_units_whose_every_cadre_it_reads(api, cadre, monkeypatch):
    """Should a role that reads some cadres only be given the watch list, a unit's counts show only if it reads
    every cadre of the unit: audit reads the cadres of departure audits (its lane), here c1 alone of 县发改局,
    and c3 but not c4 of 县审计局, and nobody of 县交通局."""
    from service.usecases import policy
    from tests.api.support import start_departure
    from tests.conftest import actor

    api.create_cadre("c2", unit="县交通局")
    api.create_cadre("c3", unit="县审计局")
    api.create_cadre("c4", unit="县审计局")
    start_departure(api, "c1")
    start_departure(api, "c3")
    scan(api)
    rule = policy.TABLE["watchlist.read"]
    monkeypatch.setitem(policy.TABLE, "watchlist.read", policy.Rule((*rule.who, "audit"), rule.refusal))
    body = early_warning.watch_history(services(api), actor("audit"))
    assert body["units"] == ["县发改局"] and {i["unit"] for i in body["items"]} == {"县发改局"}
    everyone = early_warning.watch_history(services(api), actor("discipline"))
    assert set(everyone["units"]) == {"县发改局", "县交通局", "县审计局"}


@pytest.mark.parametrize("data", [{}, {"reports_12m": 5, "late_reports_12m": 0}])
def test_the_decision_process_opens_no_case_whoever_starts_it(api, cadre, data):
    """docs/processes.md: `early_warning` carries the scan's table and never opens a case. Started by an admin (who
    passes every role check) it would run the table on data without the scan's signals: a case in an incident."""
    started = api.post("/api/cases", as_="admin", json={"process": early_warning.PROCESS, "cadre_id": "c1",
                                                         "data": data})
    assert_error(started, 422, fields={"process"})
    job = api.post("/api/bulk-starts", as_="admin", json={"process": early_warning.PROCESS})
    assert_error(job, 422, fields={"process"})
    with services(api).db.unit_of_work(write=False) as session:
        assert session.scalars(select(Case.id).where(Case.process_key == early_warning.PROCESS)).all() == []
    offered = lookups.start_options(services(api), Actor("admin", frozenset({"admin"})), None)["processes"]
    assert early_warning.PROCESS not in dict(offered) and ADMONISHMENT in dict(offered)


def test_the_watch_list_is_highest_level_first_then_by_unit(api):
    """An alert in a unit sorting last comes before the watches of a unit sorting first; none is not listed."""
    api.create_cadre("w1", unit="县农业局")
    api.create_cadre("w2", unit="县财政局")
    api.create_cadre("w3", unit="县农业局")
    api.create_cadre("w4", unit="县农业局")
    for cadre_id, reports in (("w1", 1), ("w2", 3), ("w3", 1)):
        for _ in range(reports):
            public_report(api, cadre_id)
    scan(api)
    items = api.get("/api/watchlist", as_="discipline").json["items"]
    assert [(item["cadre_id"], item["level"]) for item in items] == [("w2", "alert"), ("w1", "watch"), ("w3", "watch")]


def test_an_audits_findings_date_from_its_fieldwork_not_its_later_departure_approval(api, cadre):
    """Fieldwork found major problems (and the audit was concluded) four years ago; the departure is approved only
    today. The finding is four years old: out of the 3-year signal, and on the ledger on the fieldwork's day."""
    from service.db.models import ClearedAudit, Task
    from tests.api.support import departure_to_fieldwork

    audit_id = departure_to_fieldwork(api)
    api.complete(audit_id, "audit_fieldwork", as_="audit2", findings="major", amount_involved=10, report_ref="审计1")
    day = today(api)
    then = early_warning.months_before(day, 48)
    moment = datetime.combine(then, time(10), services(api).zone)
    with services(api).db.unit_of_work() as session:  # as if the fieldwork and its conclusion were four years ago
        fieldwork = session.scalar(select(Task).where(Task.case_id == audit_id, Task.element_id == "audit_fieldwork"))
        fieldwork.completed_at = fieldwork.created_at = moment
        session.get(Case, audit_id).updated_at = moment
        session.scalar(select(ClearedAudit).where(ClearedAudit.case_id == audit_id)).cleared_on = then
    assert dict(_signals(api, day))["c1"]["audit_findings_3y"] == 0
    api.complete(audit_id, "approve_departure", decision="approve")
    assert dict(_signals(api, day))["c1"]["audit_findings_3y"] == 0
    integrity = api.get("/api/cadres/c1/ledger", as_="discipline", query_string={"kind": "integrity"}).json["items"]
    assert [i["on"] for i in integrity if i["kind"] == "audit_finding"] == [then.isoformat()]
