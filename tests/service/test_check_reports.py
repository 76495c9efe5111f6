"""Personal reports (个人有关事项报告) are vouched for by each cadre's hash-chained report log: `cadreflow check`
names a report rewritten, deleted, slipped in or moved to another cadre with SQL, and a log whose end was cut off
or whose entries were rewritten; an untouched database checks clean."""

from __future__ import annotations

import hashlib
from functools import partial
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from service.db.chain import GENESIS, report_entry_hash
from service.db.models import Cadre, PersonalReport, PersonalReportLog, utcnow
from service.errors import Conflict
from service.usecases import anchors, personal_reports
from service.usecases.anchors import AnchorUnusable, anchor_faults, take_anchor
from service.usecases.check import check_cases
from service.usecases.report_log import check_reports, lock_reports, record_report
from tests.conftest import actor
from tests.service.test_concurrency import race
from tests.service.test_history_anchor import KEY


def report(api, cadre_id: str, **fields) -> dict:
    body = {"kind": "property", "event_on": "2026-01-05", "reported_on": "2026-01-20", "summary": "购置住房一套",
            **fields}
    response = api.post(f"/api/cadres/{cadre_id}/reports", as_="org_dept", json=body)
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def reports(api, cadre) -> dict[str, dict]:
    """Two reports on c1 (one late, which opened an admonishment) and one on c2: a clean check to begin with."""
    api.create_cadre("c2")
    return {"on time": report(api, "c1"), "late": report(api, "c1", event_on="2025-06-01", summary="配偶经商"),
            "other cadre": report(api, "c2", kind="family", summary="子女出国留学")}


def _sql(services, statements) -> None:
    with services.db.unit_of_work() as session:
        for statement in statements:
            session.execute(statement)


def _rewound(services) -> list:
    """c1's log head set back one entry, as if its last entry (and the report it vouched for) had never been."""
    with services.db.unit_of_work(write=False) as session:
        first = session.scalar(select(PersonalReportLog.hash).where(PersonalReportLog.cadre_id == "c1",
                                                                    PersonalReportLog.seq == 1))
    return [update(Cadre).where(Cadre.id == "c1").values(report_seq=1, report_hash=first)]


def _by_id(report_id: int):
    return update(PersonalReport).where(PersonalReport.id == report_id)


FORGERIES = {
    "summary rewritten": (lambda r, s: [_by_id(r["on time"]["id"]).values(summary="无变动")], "differs"),
    "lateness hidden": (lambda r, s: [_by_id(r["late"]["id"]).values(late=False)], "differs"),
    "admonishment unlinked": (lambda r, s: [_by_id(r["late"]["id"]).values(case_id=None)], "differs"),
    "dates moved": (lambda r, s: [_by_id(r["late"]["id"]).values(event_on=text("reported_on"))], "differs"),
    "recorded by someone else": (lambda r, s: [_by_id(r["on time"]["id"]).values(recorded_by="admin")], "differs"),
    "moved to another cadre": (lambda r, s: [_by_id(r["on time"]["id"]).values(cadre_id="c2")],
                               "has no history entry"),
    "deleted": (lambda r, s: [delete(PersonalReport).where(PersonalReport.id == r["on time"]["id"])], "is gone"),
    "slipped in": (lambda r, s: [insert(PersonalReport).values(
        cadre_id="c1", kind="other", event_on=utcnow().date(), reported_on=utcnow().date(), summary="无",
        found_unreported=False, late=False, recorded_by="org_dept", recorded_at=utcnow())], "has no history entry"),
    "log head rewound": (lambda r, s: _rewound(s), "does not match its last entry"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_report_changed_behind_the_services_back_is_named(services, reports, forgery):
    assert check_reports(services) == (2, [])
    statements, phrase = FORGERIES[forgery]
    _sql(services, statements(reports, services))
    checked, faults = check_reports(services)
    assert checked == 2 and faults and any(phrase in fault for fault in faults), faults
    victims = {"moved to another cadre": ("cadre c1: ", "cadre c2: ")}.get(forgery, ("cadre c1: ",))
    assert {fault[:len(victims[0])] for fault in faults} == set(victims), faults


def test_an_untouched_database_checks_clean_and_each_report_is_in_its_cadres_log(services, reports):
    """Each report recorded appends one `report` entry to its cadre's chain, naming its admonishment."""
    assert check_reports(services) == (2, []) and check_cases(services, 3600) == (1, [])
    with services.db.unit_of_work(write=False) as session:
        log = session.execute(select(PersonalReportLog.cadre_id, PersonalReportLog.seq, PersonalReportLog.action,
                                     PersonalReportLog.detail).order_by(PersonalReportLog.id)).all()
    assert [(row.cadre_id, row.seq, row.action) for row in log] == [("c1", 1, "report"), ("c1", 2, "report"),
                                                                   ("c2", 1, "report")]
    assert log[1].detail["case_id"] == reports["late"]["case_id"] is not None
    assert "配偶经商" not in str(log[1].detail)  # the log keeps the summary's digest, not the personal text


def test_the_log_refuses_update_and_delete(services, reports):
    for statement in (update(PersonalReportLog).values(actor="admin"), delete(PersonalReportLog)):
        with pytest.raises(DBAPIError, match="append-only"):
            _sql(services, [statement])
    assert check_reports(services) == (2, [])


def test_a_log_entry_is_written_only_under_the_cadres_lock(services, reports):
    with services.db.unit_of_work() as session, pytest.raises(RuntimeError, match="lock_reports"):
        cadre = session.get(Cadre, "c1")
        record_report(session, cadre, "org_dept", "report", session.scalars(select(PersonalReport)).first())
    with services.db.unit_of_work() as session:
        lock_reports(session, "c1")  # held: nothing else written, nothing to check
    assert check_reports(services) == (2, [])


def test_cli_check_names_the_cadre_whose_report_was_rewritten(app, services, reports):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["check", "--grace", "3600"]).exit_code == 0
    _sql(services, [_by_id(reports["late"]["id"]).values(late=False, case_id=None)])
    result = runner.invoke(args=["check", "--grace", "3600"])
    assert result.exit_code == 1, result.stdout
    assert f"cadre c1: personal report {reports['late']['id']} differs" in result.stderr
    assert "1 case(s) checked, 1 fault(s)" in result.stdout


def test_reports_racing_on_one_cadre_keep_one_chain(services, reports):
    """Four reports on one cadre at once, two of them opening an admonishment, append one unbroken chain."""
    body = {"kind": "other", "event_on": "2026-01-05", "summary": "同时报告"}
    results = race(*(partial(personal_reports.add_report, services, actor("org_dept"), "c1",
                             {**body, "reported_on": on}) for on in ("2026-01-06", "2026-12-01") * 2))
    assert all(isinstance(result, dict) for result in results), results
    with services.db.unit_of_work(write=False) as session:
        seqs = session.scalars(select(PersonalReportLog.seq).where(PersonalReportLog.cadre_id == "c1")
                               .order_by(PersonalReportLog.id)).all()
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert check_reports(services) == (2, [])


# Corrections (personal_reports.correct_report): each appends a `correct` entry vouching for the row as corrected.

def _correct(services, report: dict, base_revision: int | None = None, **changes) -> dict:
    body = {name: report[name] for name in ("kind", "event_on", "reported_on", "summary", "found_unreported")}
    return personal_reports.correct_report(services, actor("org_dept"), "c1", report["id"],
                                           {**body, "reason": "据原件更正", **changes}, base_revision)


def test_a_correction_updates_the_row_and_appends_a_correct_entry(services, reports):
    corrected = _correct(services, reports["on time"], event_on="2025-06-01", summary="购置商铺一间")
    assert corrected["late"] is True and corrected["admonishment"] == "opened"
    with services.db.unit_of_work(write=False) as session:
        row = session.get(PersonalReport, reports["on time"]["id"])
        log = session.execute(select(PersonalReportLog.seq, PersonalReportLog.action, PersonalReportLog.actor,
                                     PersonalReportLog.detail).where(PersonalReportLog.cadre_id == "c1")
                              .order_by(PersonalReportLog.seq)).all()
    assert (row.event_on.isoformat(), row.summary, row.late, row.case_id) == (
        "2025-06-01", "购置商铺一间", True, corrected["case_id"])
    assert [(e.seq, e.action, e.actor) for e in log] == [(1, "report", "org_dept"), (2, "report", "org_dept"),
                                                          (3, "correct", "org_dept")]
    assert log[2].detail["reason"] == "据原件更正" and log[2].detail["case_id"] == corrected["case_id"]
    assert "购置商铺一间" not in str(log[2].detail)  # the summary as its digest only, as a report's entry
    assert check_reports(services) == (2, []) and check_cases(services, 3600) == (2, [])


def test_a_report_changed_with_sql_after_its_correction_is_still_named(services, reports):
    report_id = reports["late"]["id"]
    _correct(services, reports["late"], summary="配偶经营企业")
    _correct(services, {**reports["late"], "summary": "配偶经营企业"}, kind="family", reason="类别有误")
    assert check_reports(services) == (2, [])
    _sql(services, [_by_id(report_id).values(summary="配偶经商")])  # back to what the first entry vouched for
    faults = check_reports(services)[1]
    assert len(faults) == 1 and faults[0].startswith(f"cadre c1: personal report {report_id} differs"), faults


def test_a_reason_in_a_log_entry_is_not_compared_with_the_row(services, reports):
    """The reason lives in the log alone: check compares only report_detail's keys."""
    _correct(services, reports["on time"], summary="无变动情况", reason="x" * 500)
    assert check_reports(services) == (2, [])


NEW_REPORT = {"kind": "other", "event_on": "2026-01-05", "reported_on": "2026-01-06", "summary": "新报告"}


def test_corrections_racing_on_one_cadre_keep_one_chain(services, reports):
    """Two corrections of one cadre's report at once (one making it found unreported) and a new report: one
    unbroken chain, each correction applied whole, one admonishment opened."""
    target = reports["on time"]
    results = race(partial(_correct, services, target, found_unreported=True),
                   partial(_correct, services, target, summary="同时更正"),
                   partial(personal_reports.add_report, services, actor("org_dept"), "c1", NEW_REPORT))
    assert all(isinstance(result, dict) for result in results), results
    with services.db.unit_of_work(write=False) as session:
        log = session.execute(select(PersonalReportLog.seq, PersonalReportLog.action).where(
            PersonalReportLog.cadre_id == "c1").order_by(PersonalReportLog.id)).all()
        row = session.get(PersonalReport, target["id"])
    assert [e.seq for e in log] == [1, 2, 3, 4, 5]
    assert sorted(e.action for e in log[2:]) == ["correct", "correct", "report"]
    # Each restates the whole report: the later one wins whole (both are logged), never a mix of the two.
    assert (row.found_unreported, row.summary) in {(True, target["summary"]), (False, "同时更正")}
    assert row.case_id is not None  # opened once, by the correction making it found unreported, and kept
    assert check_cases(services, 3600) == (2, [])  # the late report's admonishment and this one: no third
    assert check_reports(services) == (2, [])


def test_corrections_racing_from_one_revision_let_one_through(services, reports):
    """Two clerks correct one report from its revision 0 at once (one making it found unreported): the revision is
    checked under the cadre's report-log lock, so exactly one passes and the other is a Conflict storing nothing."""
    target = reports["on time"]
    results = race(partial(_correct, services, target, 0, found_unreported=True),
                   partial(_correct, services, target, 0, summary="同时更正"))
    [passed] = [result for result in results if isinstance(result, dict)]
    [refused] = [result for result in results if not isinstance(result, dict)]
    assert isinstance(refused, Conflict) and "已被他人更正（第 1 次）" in refused.message, results
    with services.db.unit_of_work(write=False) as session:
        actions = session.scalars(select(PersonalReportLog.action).where(PersonalReportLog.cadre_id == "c1")
                                  .order_by(PersonalReportLog.seq)).all()
        row = session.get(PersonalReport, target["id"])
    assert actions == ["report", "report", "correct"] and passed["revision"] == 1
    assert (row.found_unreported, row.summary) == (passed["found_unreported"], passed["summary"])
    assert (row.case_id is not None) == passed["found_unreported"]  # the refused one opened nothing
    assert check_cases(services, 3600) == (1 + passed["found_unreported"], [])
    assert check_reports(services) == (2, [])


# Anchors: a log rewritten consistently (its later hashes and the cadre's head recomputed) passes the chain check,
# and `check --anchor` still names the cadre.

LOG = PersonalReportLog.__table__


def _behind_the_triggers(services, statements: list) -> None:
    """Run SQL on the log as a superuser (PostgreSQL: triggers off) or the SQLite file's holder (triggers dropped)."""
    with services.db.write_engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            connection.execute(text("DROP TRIGGER personal_report_log_no_update"))
            connection.execute(text("DROP TRIGGER personal_report_log_no_delete"))
        for statement in statements:
            connection.execute(statement)


def _rewrite_consistently(services, report_id: int) -> None:
    """The report's summary rewritten, and its entry, every later hash and the cadre's head made to fit."""
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(select(LOG).where(LOG.c.cadre_id == "c1").order_by(LOG.c.seq)).all()
    statements, previous = [_by_id(report_id).values(summary="无变动")], GENESIS
    for row in rows:
        values = row._asdict()
        if values["detail"]["report_id"] == report_id:
            values["detail"] = {**values["detail"], "summary_sha256": hashlib.sha256("无变动".encode()).hexdigest()}
        values["hash"] = report_entry_hash(SimpleNamespace(**values), previous)
        statements.append(update(LOG).where(LOG.c.id == row.id).values(detail=values["detail"], hash=values["hash"]))
        previous = values["hash"]
    statements.append(update(Cadre).where(Cadre.id == "c1").values(report_hash=previous))
    _behind_the_triggers(services, statements)


def test_a_consistent_rewrite_of_a_report_log_is_named_by_the_anchor(services, reports):
    anchor = take_anchor(services, KEY)
    assert [head[:2] for head in anchor["report_logs"]] == [["c1", 2], ["c2", 1]]
    assert anchor_faults(services, anchor, KEY) == []
    _rewrite_consistently(services, reports["on time"]["id"])
    assert check_reports(services) == (2, [])  # the chain alone cannot see it
    faults = anchor_faults(services, anchor, KEY)
    assert len(faults) == 1 and faults[0].startswith("cadre c1: ") and "rewritten" in faults[0], faults


def test_log_entries_deleted_after_the_anchor_are_named(services, reports):
    anchor = take_anchor(services)
    _behind_the_triggers(services, [delete(LOG).where(LOG.c.cadre_id == "c2")])
    faults = anchor_faults(services, anchor)
    assert len(faults) == 1 and faults[0].startswith("cadre c2: ") and "is gone" in faults[0], faults


def test_an_anchor_of_cases_only_taken_before_the_report_logs_is_still_checked(services, reports):
    anchor = take_anchor(services)
    old = {"format": anchors.CASES_ONLY, "taken_at": anchor["taken_at"], "cases": anchor["cases"]}
    old["digest"] = anchors._digest(old)  # as the release before it wrote it
    assert anchor_faults(services, old) == []
    old["report_logs"] = [["c1", 1, "0" * 64]]  # not part of a format-1 anchor: ignored, proves nothing
    assert anchor_faults(services, old) == []


@pytest.mark.parametrize("heads", [[["c1", "1", "x"]], [["", 1, "0" * 64]], [["c" * 65, 1, "0" * 64]], {"c1": 1}])
def test_a_malformed_report_log_list_makes_the_anchor_unusable(services, reports, heads):
    anchor = take_anchor(services)
    anchor["report_logs"] = heads
    anchor["digest"] = anchors._digest(anchor)
    with pytest.raises(AnchorUnusable, match="malformed"):
        anchor_faults(services, anchor)
