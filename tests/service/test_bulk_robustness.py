"""Bulk starts that go wrong: a filter that cannot run is refused up front, a batch that fails at run time
ends its own job as failed (visibly) without holding up the jobs after it, and the `field:` dedupe compares
start values as JSON values (2031 and 2031.0 are one year)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.db.models import Case, StartJob
from service.errors import Invalid
from service.usecases import bulk
from tests.conftest import actor
from workflows.engine import EngineError

LEADING = 'post_level == "leading"'


def _jobs(services) -> int:
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(StartJob)) or 0


def _years(services) -> dict[str, list[object]]:
    """Each cadre's annual assessments, by their start year (as stored, int or float)."""
    with services.db.unit_of_work(write=False) as session:
        found: dict[str, list[object]] = {}
        for cadre_id, data in session.execute(select(Case.cadre_id, Case.data).where(
                Case.process_key == "annual_assessment").order_by(Case.id)):
            found.setdefault(cadre_id, []).append(data["year"])
        return found


@pytest.mark.parametrize("expression", ["((", "1/0", "undefined_name"])
def test_a_filter_that_cannot_be_evaluated_is_refused_when_the_job_is_asked_for(county, app, services, expression):
    """POST /api/bulk-starts with a filter that does not compile or evaluate is a 422 naming `filter`
    (Chinese first), and no job is left behind to fail on every worker pass; the command refuses it too."""
    response = county.post("/api/bulk-starts", as_="org_dept",
                           json={"process": "annual_assessment", "filter": expression, "data": {"year": 2026}})
    assert response.status_code == 422, response.json
    message = response.json["error"]["fields"]["filter"]
    assert message.startswith("表达式无法执行") and "(the expression cannot be evaluated)" in message, message
    with pytest.raises(Invalid) as refused:
        bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026}, expression, "open")
    assert set(refused.value.fields or {}) == {"filter"}
    result = app.test_cli_runner().invoke(args=["bulk-start", "annual_assessment", "--data", '{"year": 2026}',
                                                "--for", expression])
    assert result.exit_code == 1 and "filter: 表达式无法执行" in result.output, result.output  # a message, no traceback
    assert _jobs(services) == 0
    assert bulk.run_jobs(services) == 0 and _years(services) == {}


def test_a_filter_is_checked_in_an_empty_county_too(api, services):
    """With no cadre to try it on, the filter runs on a sample of what it sees: a broken one is refused, a
    sound one is taken."""
    bad = api.post("/api/bulk-starts", as_="org_dept", json={"process": "annual_assessment", "filter": "((",
                                                             "data": {"year": 2026}})
    assert bad.status_code == 422 and "filter" in bad.json["error"]["fields"], bad.json
    good = api.post("/api/bulk-starts", as_="org_dept", json={"process": "annual_assessment", "filter": LEADING,
                                                              "data": {"year": 2026}})
    assert good.status_code == 202, good.json


def test_a_filter_failing_on_one_cadre_fails_its_job_visibly_and_the_next_job_still_runs(county, services):
    """A filter that passes the check on the first cadre but divides by zero on k015: the job opens its first
    batch, then stops as `failed` with the error (naming the cadre and the filter) in its API view, opening
    nothing of the failing batch; the valid job asked for after it runs to the end, and later passes leave
    the failed job alone."""
    broken = county.post("/api/bulk-starts", as_="org_dept", json={
        "process": "annual_assessment", "data": {"year": 2026}, "dedupe": "field:year",
        "filter": 'post_level == "leading" and 1 / (id != "k015") > 0'})
    assert broken.status_code == 202, broken.json
    valid = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2027}, LEADING, "field:year")
    bulk.run_jobs(services)
    view = county.get(f"/api/bulk-starts/{broken.json['id']}", as_="org_dept").json
    assert (view["status"], view["opened"], view["cursor"]) == ("failed", 10, "k009"), view
    assert view["finished_at"] is not None
    (error,) = view["errors"]
    assert error["cadre_id"] == "k015" and "k015" in error["error"], error
    assert "division by zero" in error["fields"]["filter"], error
    done = bulk.get_job(services, actor("org_dept"), valid["id"])
    assert (done["status"], done["opened"], done["failed"]) == ("done", 25, 0), done
    years = _years(services)
    assert sorted(cadre for cadre, opened in years.items() if 2026 in opened) == [f"k{n:03}" for n in range(10)]
    assert bulk.run_jobs(services) == 0
    assert county.get(f"/api/bulk-starts/{broken.json['id']}", as_="org_dept").json == view


def test_a_job_whose_batch_cannot_run_now_does_not_hold_up_the_jobs_after_it(county, services, monkeypatch):
    """An executor that does not start for one job's filter is not the filter's fault: that job stays running,
    to be tried again on the next pass, while the job after it opens its cases."""
    stuck = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2026}, "id != 'k001'",
                            "field:year")
    after = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2027}, None, "field:year")
    real_select = services.runner.select

    def select(expression, scopes):
        if expression == "id != 'k001'":
            raise EngineError("a step executor did not start: ChannelTimeout")
        return real_select(expression, scopes)
    monkeypatch.setattr(services.runner, "select", select)
    assert bulk.run_jobs(services) == 30
    assert bulk.get_job(services, actor("org_dept"), stuck["id"])["status"] == "running"
    assert bulk.get_job(services, actor("org_dept"), after["id"])["status"] == "done"
    monkeypatch.setattr(services.runner, "select", real_select)
    assert bulk.run_jobs(services) == 29  # the executor is back: the job goes on where it was
    assert bulk.get_job(services, actor("org_dept"), stuck["id"])["status"] == "done"


def test_a_year_sent_as_2031_0_is_the_year_2031_and_opens_no_second_assessment(county, services):
    """The start form takes 2031.0 as an integer; a second job for 2031.0 finds every cadre's 2031 assessment
    and opens nothing, and the job (and so each case) keeps the year as the integer 2031."""
    first = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2031}, LEADING, "field:year")
    bulk.run_jobs(services)
    assert bulk.get_job(services, actor("org_dept"), first["id"])["opened"] == 25
    again = county.post("/api/bulk-starts", as_="org_dept", json={
        "process": "annual_assessment", "data": {"year": 2031.0}, "filter": LEADING, "dedupe": "field:year"})
    assert again.status_code == 202, again.json
    assert type(again.json["data"]["year"]) is int, again.json
    bulk.run_jobs(services)
    done = bulk.get_job(services, actor("org_dept"), again.json["id"])
    assert (done["status"], done["opened"], done["skipped"]) == ("done", 0, 25), done
    years = _years(services)
    assert len(years) == 25 and all(opened == [2031] for opened in years.values()), years


def test_an_assessment_stored_with_2031_0_counts_for_a_job_of_2031(county, services):
    """A case whose start data holds the year as 2031.0 (a single start, or a job asked for before this was
    mended) is the 2031 assessment of its cadre for the `field:year` dedupe."""
    county.start("annual_assessment", "k000", as_="org_dept", year=2031.0)
    assert _years(services) == {"k000": [2031.0]}
    job = bulk.create_job(services, actor("org_dept"), "annual_assessment", {"year": 2031}, LEADING, "field:year")
    bulk.run_jobs(services)
    done = bulk.get_job(services, actor("org_dept"), job["id"])
    assert (done["opened"], done["skipped"]) == (24, 1), done
    assert len(_years(services)["k000"]) == 1


def test_the_command_says_when_its_job_failed(county, app):
    """`cadreflow bulk-start` runs the job itself: when a batch fails as a whole it exits 1 saying why, after the
    progress of the batches before it, not 'done'."""
    result = app.test_cli_runner().invoke(args=["bulk-start", "annual_assessment", "--data", '{"year": 2028}',
                                                "--for", 'post_level == "leading" and 1 / (id != "k015") > 0'])
    assert result.exit_code == 1, result.output
    assert "opened 10" in result.output and "the job failed after 10 opened" in result.output, result.output
    assert "k015" in result.output and "done:" not in result.output


def test_a_running_job_can_be_cancelled_by_its_starters_and_opens_nothing_more(county, services):
    """POST /api/bulk-starts/<id>/cancel: the cases of the batches already run stay, no later batch opens one;
    a second cancel is a 409; a role that may not start the process does not see the job (404)."""
    job = county.post("/api/bulk-starts", as_="org_dept",
                      json={"process": "annual_assessment", "filter": LEADING, "data": {"year": 2029}}).json
    assert bulk.run_batch(services, job["id"]) is not None  # one batch of 10
    assert county.post(f"/api/bulk-starts/{job['id']}/cancel", as_="audit").status_code == 404
    cancelled = county.post(f"/api/bulk-starts/{job['id']}/cancel", as_="org_dept")
    assert cancelled.status_code == 200, cancelled.json
    assert (cancelled.json["status"], cancelled.json["opened"]) == ("cancelled", 10)
    assert cancelled.json["finished_at"]
    assert bulk.run_jobs(services) == 0
    assert len(_years(services)) == 10
    again = county.post(f"/api/bulk-starts/{job['id']}/cancel", as_="org_dept")
    assert again.status_code == 409 and "cancelled" in again.json["error"]["message"]
    assert county.post("/api/bulk-starts/999999/cancel", as_="org_dept").status_code == 404


def test_a_job_tells_its_author_nothing_of_cases_it_may_not_read(county, services):
    """Audit finding: org_dept, which may start admonishments but reads none, asked for a job whose filter chose
    nobody and learnt from `skipped` how many cadres had an open admonishment, and from `field:<any key>` what
    they held, without opening a case. Now only chosen cadres are deduped, `field:` names a
    start-form field, and the split of opened and already-there is for readers of every case of the process."""
    for cadre_id in ("k001", "k002"):
        start = county.post("/api/cases", as_="discipline", json={
            "process": "admonishment", "cadre_id": cadre_id, "data": {"trigger": "complaint", "summary": "反映问题"}})
        assert start.status_code == 201, start.json
    assert county.get("/api/cases", as_="org_dept").json["items"] == []  # org_dept reads no admonishment
    refused = county.post("/api/bulk-starts", as_="org_dept", json={
        "process": "admonishment", "data": {"minutes": "谈话"}, "dedupe": "field:minutes"})  # a later task's field
    assert "dedupe" in refused.json["error"]["fields"], refused.json
    probe = county.post("/api/bulk-starts", as_="org_dept", json={
        "process": "admonishment", "filter": 'id == "nobody"', "data": {"trigger": "complaint", "summary": "查"},
        "dedupe": "open"})
    assert probe.status_code == 202, probe.json
    bulk.run_jobs(services)
    job = county.get(f"/api/bulk-starts/{probe.json['id']}", as_="org_dept").json
    assert job["status"] == "done" and job["settled"] == 0 and job["opened"] is None and job["skipped"] is None
    chosen = county.post("/api/bulk-starts", as_="org_dept", json={
        "process": "admonishment", "filter": 'id in ("k001", "k003")', "data": {"trigger": "complaint",
                                                                                "summary": "查"}, "dedupe": "open"})
    bulk.run_jobs(services)
    seen_by_author = county.get(f"/api/bulk-starts/{chosen.json['id']}", as_="org_dept").json
    assert (seen_by_author["settled"], seen_by_author["opened"], seen_by_author["skipped"]) == (2, None, None)
    seen_by_discipline = county.get(f"/api/bulk-starts/{chosen.json['id']}", as_="discipline").json
    assert (seen_by_discipline["opened"], seen_by_discipline["skipped"]) == (1, 1)
