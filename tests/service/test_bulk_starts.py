"""Bulk starts: many cadres' cases opened in batches, resumable, idempotent per cadre (and year)."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import func, select

from service.db.models import Notification
from service.usecases import bulk, check
from tests.conftest import actor
from tests.service.test_concurrency import race
from tests.sql import statements_sent


def test_an_assessment_opens_once_per_cadre_and_year_across_batches_and_reruns(county, services):
    """The year's assessment for leading cadres: 25 cases; the same job again opens nothing; another year does."""
    job = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026},
                          'post_level == "leading"', "field:year")
    assert bulk.run_batch(services, job["id"]) == 10  # resumable: one batch, then the rest later
    assert bulk.get_job(services, actor("org_dept"), job["id"])["cursor"] == "k009"
    bulk.run_jobs(services)
    done = bulk.get_job(services, actor("org_dept"), job["id"])
    assert (done["status"], done["opened"], done["failed"]) == ("done", 25, 0)
    again = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026},
                            'post_level == "leading"', "field:year")
    bulk.run_jobs(services)
    assert bulk.get_job(services, actor("org_dept"), again["id"])["opened"] == 0
    next_year = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2027},
                                'post_level == "leading"', "field:year")
    bulk.run_jobs(services)
    assert bulk.get_job(services, actor("org_dept"), next_year["id"])["opened"] == 25
    listed = county.get("/api/cases", query_string={"process": "annual_assessment", "per_page": 100}).json
    assert listed["total"] == 50


def test_failures_are_counted_with_their_reason_and_the_rest_open(county, services):
    """Data the start form refuses (a year out of range) fails every case of the job, visibly, opening none."""
    job = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": "soon"}, None, "open")
    bulk.run_jobs(services)
    done = bulk.get_job(services, actor("org_dept"), job["id"])
    assert (done["opened"], done["failed"]) == (0, 30) and "year" in done["errors"][0]["fields"]


def test_the_api_takes_a_job_and_shows_its_progress(county, services):
    """POST /api/bulk-starts → 202 with the job; GET shows progress; other roles are refused; bad input 422."""
    response = county.post("/api/bulk-starts", as_="org_dept",
                           json={"process": "annual_assessment", "data": {"year": 2026}, "dedupe": "field:year"})
    assert response.status_code == 202 and response.json["status"] == "running"
    bulk.run_jobs(services)
    progress = county.get(f"/api/bulk-starts/{response.json['id']}", as_="org_dept").json
    assert progress["opened"] == 30 and progress["status"] == "done"
    assert county.post("/api/bulk-starts", as_="audit", json={"process": "annual_assessment"}).status_code == 403
    assert county.get(f"/api/bulk-starts/{response.json['id']}", as_="audit").status_code == 404
    bad = county.post("/api/bulk-starts", as_="org_dept", json={"process": "annual_assessment", "dedupe": "x"})
    assert bad.status_code == 422 and "dedupe" in bad.json["error"]["fields"]


def test_the_command_shows_progress_and_ends_with_the_totals(county, app):
    """cadreflow bulk-start prints each batch and the totals."""
    result = app.test_cli_runner().invoke(args=["bulk-start", "annual_assessment", "--data", '{"year": 2026}',
                                                "--for", 'post_level == "leading"', "--dedupe", "field:year"])
    assert result.exit_code == 0, result.output
    assert "done: 25 opened" in result.output and result.output.count("opened") >= 3


def test_a_batch_stores_whole_cases_with_statements_that_do_not_grow_with_it(county, services, monkeypatch):
    """Cases opened together pass the whole-case check (state, tasks, chained history), carry their
    notifications and go on like any case; a batch of 20 sends as many SQL statements as one of 10."""
    counts = []
    for size, year in ((5, 2025), (10, 2026), (20, 2027)):  # the first batch warms the caches
        monkeypatch.setattr(bulk, "BATCH", size)
        job = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": year}, None, "field:year")
        with statements_sent(services.db) as sent:
            assert bulk.run_batch(services, job["id"]) == size
        counts.append(len(sent))
    assert counts[1] == counts[2], counts
    checked, faults = check.check_cases(services, grace_seconds=3600)
    assert checked == 35 and faults == []
    listed = county.get("/api/cases", query_string={"process": "annual_assessment", "per_page": 1}).json
    case_id = listed["items"][0]["id"]
    task = county.open_task(case_id, "democratic_assessment")
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Notification).where(
            Notification.task_id == task["id"], Notification.kind == "new_task"))
    votes = {"votes_excellent": 3, "votes_competent": 7, "votes_basic": 0, "votes_incompetent": 0,
             "performance_summary": "良好"}
    assert county.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": votes}).status_code == 200


def test_asking_which_cadres_have_their_case_reads_only_their_cases(county, services):
    """The question every batch asks (which of these cadres have their case of the process) is answered from
    the (cadre, process) index, not by reading every case of the process: without statistics, which SQLite
    keeps none of, the process_key index made a bulk start quadratic in the county (issue 14, target 4)."""
    if not services.db.is_sqlite:
        pytest.skip("SQLite's plan: PostgreSQL's planner follows its statistics, refreshed by the next test")
    job = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026}, None, "field:year")
    with statements_sent(services.db) as sent:
        assert bulk.run_batch(services, job["id"]) == 10
    statement, parameters = next(s for s in sent
                                 if " ".join(s.statement.split()).startswith("SELECT cases.cadre_id, cases.data FROM"))
    with services.db.write_engine.connect() as connection:
        plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                           parameters))
    assert "ix_cases_cadre_process (cadre_id=? AND process_key=?)" in plan, plan


def test_a_long_job_refreshes_the_planners_statistics_of_the_tables_it_fills(county, services, monkeypatch):
    """On PostgreSQL a job ANALYZEs cases and tasks each time it has opened another ANALYZE_EVERY cases, after
    its batch commits: a plan made on a near-empty table would read the whole table in every batch."""
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite keeps no planner statistics to refresh")
    monkeypatch.setattr(bulk, "ANALYZE_EVERY", 15)
    analysed = "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN ('cases', 'tasks')"

    def last_analysed() -> dict[str, object]:
        with services.db.write_engine.connect() as connection:
            return dict(connection.exec_driver_sql(analysed).all())
    job = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026}, None, "field:year")
    before = last_analysed()
    assert bulk.run_batch(services, job["id"]) == 10  # 10 opened: under the mark, nothing refreshed
    assert last_analysed() == before
    assert bulk.run_batch(services, job["id"]) == 10  # 20: past 15, both tables analysed
    after = last_analysed()
    assert set(after) == {"cases", "tasks"} and all(after[name] != before.get(name) for name in after), after


def org_dept_job_one_batch_in(county, services) -> dict:
    """org_dept's job for the year's assessments of all 30 cadres, its first batch of 10 opened."""
    job = county.post("/api/bulk-starts", as_="org_dept", json={"process": "annual_assessment",
                                                                 "data": {"year": 2026}, "dedupe": "field:year"}).json
    assert bulk.run_batch(services, job["id"]) == 10
    return job


@pytest.mark.parametrize("revoke", [{"active": False}, {"roles": ["audit"]}], ids=["deactivated", "role-taken-away"])
def test_a_job_stops_when_its_author_may_no_longer_start_the_process(county, services, revoke):
    """A job outlives neither its author's account nor the author's right to start the process: the next batch
    ends it as failed, saying why, and the cases it opened before stay. Before, every batch ran as an admin."""
    job = org_dept_job_one_batch_in(county, services)
    cursor = bulk.get_job(services, actor("admin"), job["id"])["cursor"]
    assert county.patch("/api/users/org_dept", as_="admin", json=revoke).status_code == 200
    assert bulk.run_batch(services, job["id"]) is None
    ended = bulk.get_job(services, actor("admin"), job["id"])
    assert (ended["status"], ended["opened"], ended["cursor"]) == ("failed", 10, cursor)
    assert "org_dept" in ended["errors"][-1]["error"] and "annual_assessment" in ended["errors"][-1]["error"]
    listed = county.get("/api/cases", as_="admin", query_string={"process": "annual_assessment"}).json
    assert listed["total"] == 10
    bulk.run_jobs(services)
    assert county.get("/api/cases", as_="admin", query_string={"process": "annual_assessment"}).json["total"] == 10


def test_a_job_goes_on_as_its_author_holds_the_right_still(county, services):
    """The author's roles, not an admin's, open the cases: a change that leaves the starter role keeps the job."""
    job = org_dept_job_one_batch_in(county, services)
    assert county.patch("/api/users/org_dept", as_="admin", json={"roles": ["org_dept", "audit"]}).status_code == 200
    bulk.run_jobs(services)
    done = bulk.get_job(services, actor("admin"), job["id"])
    assert (done["status"], done["opened"], done["failed"]) == ("done", 30, 0)


def test_two_jobs_of_one_year_running_at_once_open_one_assessment_per_cadre(county, services, monkeypatch):
    """The same bulk start asked for twice (twice in the page, or the command beside the worker), their batches run
    by two processes at once: each cadre still gets one assessment of the year. Both batches reading which cadres
    have their case before either commits would open it twice; the second waits for the first's cadres instead."""
    jobs = [bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026},
                            'post_level == "leading"', "field:year")["id"] for _ in range(2)]
    both_read = threading.Barrier(2, timeout=3)
    real = bulk.already_started

    def read_then_meet(*args):
        found = real(*args)
        # Let the other batch read too, if it can, before this one opens its cases; it cannot while it waits for
        # this one's cadres, and the barrier then breaks.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return found
    monkeypatch.setattr(bulk, "already_started", read_then_meet)
    assert sum(race(*(lambda job=job: bulk.run_batch(services, job) for job in jobs))) == 10
    listed = county.get("/api/cases", query_string={"process": "annual_assessment", "per_page": 100}).json
    assert sorted(case["cadre_id"] for case in listed["items"]) == [f"k{n:03}" for n in range(10)]
