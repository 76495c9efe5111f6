"""ISSUE 6 — rotation_review (PROCESSES §6): the scan (API, CLI, daily worker), keep/rotate/exchange."""

from __future__ import annotations

from datetime import date

import pytest

from service.usecases import bulk
from service.usecases.rotation import run_daily_scan
from tests.api.support import DEPARTURE, assert_error, hold_in_incident

ROTATION = "rotation_review"
SCAN_DAY = "2026-06-15"


def make_cadres(api):
    """Cadres on both sides of each threshold as of SCAN_DAY."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")   # exactly 10 years
    api.create_cadre("lead9", post_level="leading", post_started_on="2016-06-16")    # one day short
    api.create_cadre("lead25", post_level="leading", post_started_on="2001-01-01")   # long past
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")      # exactly 3 years
    api.create_cadre("mid2", post_level="middle", post_started_on="2023-06-16")      # one day short
    api.create_cadre("staff30", post_level="staff", post_started_on="1996-01-01")    # staff: never
    api.create_cadre("nopost", post_level="leading", post_started_on="2000-01-01", post="")  # empty post


def scan(api, on=SCAN_DAY, as_="org_dept"):
    return api.post("/api/rotation-scan", as_=as_, json={"on": on} if on is not None else None)


def opened_by_cadre(response):
    return {item["cadre_id"]: item for item in response.json["opened"]}


def rotation_cases(api, **params):
    return api.get("/api/cases", query_string={"process": ROTATION, **params}).json


def start_review(api, cadre_id, rule, post_level, years=12):
    return api.start(ROTATION, cadre_id, as_="org_dept", rule=rule, years_in_post=years, post_level=post_level)


def start_raw(api, cadre_id, **data):
    return api.post("/api/cases", as_="org_dept", json={"process": ROTATION, "cadre_id": cadre_id, "data": data})


@pytest.fixture
def on_scan_day(services):
    """Today is SCAN_DAY, so a review started by hand is due exactly as the scan on that day finds it."""
    services.today = lambda: date.fromisoformat(SCAN_DAY)
    return services


# The scan.

def test_scan_opens_one_case_per_due_cadre(api):
    """Leading ≥ 10 full years → mandatory, middle ≥ 3 → advised (anniversary counts); others none."""
    make_cadres(api)
    response = scan(api)
    assert response.status_code == 201, response.json
    opened = opened_by_cadre(response)
    assert set(opened) == {"lead10", "lead25", "mid3"}
    assert (opened["lead10"]["rule"], opened["lead10"]["years_in_post"]) == ("mandatory", 10)
    assert (opened["lead25"]["rule"], opened["lead25"]["years_in_post"]) == ("mandatory", 25)
    assert (opened["mid3"]["rule"], opened["mid3"]["years_in_post"]) == ("advised", 3)
    for cadre_id, item in opened.items():
        case = api.case(item["case_id"])
        assert (case["process"], case["cadre_id"], case["status"]) == (ROTATION, cadre_id, "open")
        assert (case["data"]["rule"], case["data"]["years_in_post"]) == (item["rule"], item["years_in_post"])
        assert [(t["element_id"], t["role"]) for t in case["open_tasks"]] == [("rotation_plan", "org_dept")]
    assert rotation_cases(api)["total"] == 3


def test_second_scan_opens_none_while_open_but_newly_due_ones(api):
    """A second scan opens nothing for cadres with an open review; a later date opens the newly due only."""
    make_cadres(api)
    assert scan(api).status_code == 201
    again = scan(api)
    assert again.status_code == 200 and again.json["opened"] == []
    later = scan(api, on="2026-06-16")
    assert set(opened_by_cadre(later)) == {"lead9", "mid2"}
    assert scan(api, on="2040-01-01").json["opened"] == []
    assert rotation_cases(api)["total"] == 5
    assert {c["cadre_id"] for c in rotation_cases(api)["items"]} == {"lead10", "lead9", "lead25", "mid3", "mid2"}


def test_scan_opens_no_second_review_while_one_is_in_incident(api, services):
    """A review held in incident (an automatic step failed) is unfinished: the next scan leaves its cadre alone."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    case_id = opened_by_cadre(scan(api))["lead10"]["case_id"]
    hold_in_incident(services, case_id)
    assert api.case(case_id)["status"] == "incident"
    assert scan(api, on="2026-06-16").json["opened"] == []
    assert rotation_cases(api)["total"] == 1


@pytest.mark.parametrize(("started", "on", "due"), [
    ("2016-02-29", "2026-02-28", False),
    ("2016-02-29", "2026-03-01", True),
    ("2016-12-31", "2026-12-30", False),
    ("2016-12-31", "2026-12-31", True),
])
def test_full_years_around_leap_days_and_year_ends(api, started, on, due):
    """Full years: a leap-day start is due from 1 March ten years on; a year-end start on its anniversary."""
    api.create_cadre("c1", post_level="leading", post_started_on=started)
    assert bool(scan(api, on=on).json["opened"]) is due


def test_scan_skips_empty_posts_and_staff(api):
    """Only a staff cadre and a cadre without post: nothing is opened (200, empty list)."""
    api.create_cadre("staff30", post_level="staff", post_started_on="1990-01-01")
    api.create_cadre("nopost", post_level="middle", post_started_on="1990-01-01", post="")
    response = scan(api)
    assert response.status_code == 200 and response.json["opened"] == []
    assert rotation_cases(api)["total"] == 0


def test_scan_after_a_closed_review_opens_again(api):
    """Once a cadre's review is closed, the next scan may open a new one (only open reviews block)."""
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")
    case_id = opened_by_cadre(scan(api))["mid3"]["case_id"]
    api.complete(case_id, "rotation_plan", decision="keep", reason="工作需要")
    assert set(opened_by_cadre(scan(api))) == {"mid3"}


def test_scan_defaults_to_today(api, services):
    """Without a body the scan uses the service's today."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    services.today = lambda: date(2026, 6, 14)
    assert scan(api, on=None).json["opened"] == []
    services.today = lambda: date(2026, 6, 15)
    assert set(opened_by_cadre(scan(api, on=None))) == {"lead10"}


def test_a_scan_for_another_day_takes_the_facts_on_that_day(api, services):
    """The scan's day, not today, is the day its reviews' facts are taken on (the start rule asks it too)."""
    services.today = lambda: date(2026, 6, 14)  # lead10 is due only tomorrow, the scan's day
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    opened = opened_by_cadre(scan(api))
    assert api.case(opened["lead10"]["case_id"])["data"]["years_in_post"] == 10


@pytest.mark.parametrize("user", ["discipline", "org_head", "designer", "audit", "norole"])
def test_scan_is_for_org_dept(api, user):
    """Other roles → 403 and nothing is opened."""
    make_cadres(api)
    assert_error(scan(api, as_=user), 403)
    assert rotation_cases(api)["total"] == 0


def test_scan_anonymous_is_401(api):
    """Without a token → 401."""
    assert_error(api.call("POST", "/api/rotation-scan", None, json={"on": SCAN_DAY}), 401)


@pytest.mark.parametrize("on", ["2026-02-30", "15/06/2026", "", 20260615, ["2026-06-15"]])
def test_scan_bad_date_is_422(api, on):
    """A date that is not YYYY-MM-DD → 422 on `on`."""
    make_cadres(api)
    assert_error(scan(api, on=on), 422, fields={"on"})
    assert rotation_cases(api)["total"] == 0


def test_scan_unknown_field_or_bad_body(api):
    """Unknown fields → 422; a non-JSON body → 400."""
    assert_error(api.post("/api/rotation-scan", as_="org_dept", json={"on": SCAN_DAY, "x": 1}), 422)
    assert_error(api.post("/api/rotation-scan", as_="org_dept", data=b"{", content_type="application/json"), 400)


# The command line.

def test_cli_rotation_scan(app, api):
    """`cadreflow rotation-scan --on DATE` opens the due reviews and prints them; a rerun opens none."""
    make_cadres(api)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rotation-scan", "--on", SCAN_DAY])
    assert result.exit_code == 0, result.output
    assert "3 rotation review(s) opened" in result.output
    assert "lead10 mandatory (10 years)" in result.output and "mid3 advised (3 years)" in result.output
    assert "lead9" not in result.output and "staff30" not in result.output and "nopost" not in result.output
    assert rotation_cases(api)["total"] == 3
    again = runner.invoke(args=["rotation-scan", "--on", SCAN_DAY])
    assert again.exit_code == 0 and "0 rotation review(s) opened" in again.output
    assert rotation_cases(api)["total"] == 3


def test_cli_rotation_scan_bad_date(app, api):
    """A bad --on → non-zero exit and nothing opened."""
    make_cadres(api)
    result = app.test_cli_runner().invoke(args=["rotation-scan", "--on", "2026-13-01"])
    assert result.exit_code != 0
    assert rotation_cases(api)["total"] == 0


# The daily scan of the worker.

def test_daily_scan_runs_once_a_day(api, services):
    """run_daily_scan: the first call of a day scans; a second the same day returns None; the next day runs."""
    make_cadres(api)
    first = run_daily_scan(services, date(2026, 6, 15))
    assert {item["cadre_id"] for item in first} == {"lead10", "lead25", "mid3"}
    assert run_daily_scan(services, date(2026, 6, 15)) is None
    assert rotation_cases(api)["total"] == 3
    assert {item["cadre_id"] for item in run_daily_scan(services, date(2026, 6, 16))} == {"lead9", "mid2"}
    assert run_daily_scan(services, date(2026, 6, 16)) is None
    assert run_daily_scan(services, date(2026, 6, 17)) == []
    assert run_daily_scan(services, date(2026, 6, 15)) is None


def test_daily_scan_cases_are_started_by_system(api, services):
    """Cases opened by the daily scan record `system` as their starter."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    (item,) = run_daily_scan(services, date(2026, 6, 15))
    assert api.history(item["case_id"])[0]["actor"] == "system"


# The rotation plan.

def test_keep_is_refused_for_a_mandatory_rotation(api):
    """keep on a mandatory review → 422 on `decision`; the task stays open; rotate is then accepted."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    case_id = opened_by_cadre(scan(api))["lead10"]["case_id"]
    task_id = api.open_task(case_id, "rotation_plan")["id"]
    assert_error(api.complete_raw(task_id, "org_dept", {"decision": "keep", "reason": "工作需要"}), 422,
                 fields={"decision"})
    assert api.open_elements(case_id) == ["rotation_plan"] and api.case(case_id)["status"] == "open"
    assert api.complete(case_id, "rotation_plan", decision="rotate", reason="到期轮岗")["outcome"] == "rotating"


def test_keep_is_allowed_for_an_advised_rotation(api):
    """keep on an advised review → outcome kept, no child case."""
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")
    case_id = opened_by_cadre(scan(api))["mid3"]["case_id"]
    case = api.complete(case_id, "rotation_plan", decision="keep", reason="工作需要")
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", "kept", [])


@pytest.mark.parametrize("decision", ["rotate", "exchange"])
def test_rotating_a_leading_cadre_starts_a_departure_audit(api, decision):
    """rotate/exchange of a leading cadre → outcome rotating and a child departure_audit (reason rotation)."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    case_id = opened_by_cadre(scan(api))["lead10"]["case_id"]
    case = api.complete(case_id, "rotation_plan", decision=decision, reason="到期交流")
    assert (case["status"], case["outcome"]) == ("completed", "rotating")
    assert len(case["child_case_ids"]) == 1
    child = api.case(case["child_case_ids"][0])
    assert (child["process"], child["cadre_id"], child["parent_case_id"]) == (DEPARTURE, "lead10", case_id)
    assert child["data"]["departure_reason"] == "rotation" and child["status"] == "open"
    assert [t["element_id"] for t in child["open_tasks"]] == ["assign_audit_team"]
    assert api.cadre("lead10")["post"] == "副局长"


@pytest.mark.parametrize("decision", ["rotate", "exchange"])
def test_rotating_a_middle_cadre_has_no_child(api, decision):
    """rotate/exchange of a middle cadre → outcome rotating, no departure audit."""
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")
    case_id = opened_by_cadre(scan(api))["mid3"]["case_id"]
    case = api.complete(case_id, "rotation_plan", decision=decision, reason="交流")
    assert (case["status"], case["outcome"], case["child_case_ids"]) == ("completed", "rotating", [])
    assert api.get("/api/cases", query_string={"process": DEPARTURE}).json["total"] == 0


def test_rotation_plan_form_and_role(api):
    """reason is required, decision is an enum; only org_dept completes (discipline → 403)."""
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")
    case_id = opened_by_cadre(scan(api))["mid3"]["case_id"]
    task_id = api.open_task(case_id, "rotation_plan")["id"]
    assert_error(api.complete_raw(task_id, "org_dept", {"decision": "rotate"}), 422, fields={"reason"})
    assert_error(api.complete_raw(task_id, "org_dept", {"decision": "promote", "reason": "x"}), 422,
                 fields={"decision"})
    assert_error(api.complete_raw(task_id, "discipline", {"decision": "keep", "reason": "x"}), 403)
    assert api.open_elements(case_id) == ["rotation_plan"]


def test_started_by_hand_mandatory_keep_still_refused(api):
    """A review started directly (not by the scan) with rule mandatory also refuses keep."""
    api.create_cadre("c1", post_level="leading")
    case_id = start_review(api, "c1", "mandatory", "leading")["id"]
    task_id = api.open_task(case_id, "rotation_plan")["id"]
    assert_error(api.complete_raw(task_id, "org_dept", {"decision": "keep", "reason": "x"}), 422,
                 fields={"decision"})


# Started by hand: the facts come from the record, whatever the caller sends (§6).

def test_a_hand_start_takes_the_records_facts_not_the_callers(api, on_scan_day):
    """A leading cadre started as `middle`/`advised`: the case says leading, mandatory, 10 years; keep is
    refused and rotate opens the departure audit first (先审计，后离任)."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    case = start_review(api, "lead10", "advised", "middle", years=1)
    assert {k: case["data"][k] for k in ("rule", "post_level", "years_in_post")} == {
        "rule": "mandatory", "post_level": "leading", "years_in_post": 10}
    task_id = api.open_task(case["id"], "rotation_plan")["id"]
    assert_error(api.complete_raw(task_id, "org_dept", {"decision": "keep", "reason": "x"}), 422, fields={"decision"})
    rotated = api.complete(case["id"], "rotation_plan", decision="rotate", reason="到期轮岗")
    assert [api.case(child)["process"] for child in rotated["child_case_ids"]] == [DEPARTURE]


def test_a_hand_start_needs_only_the_cadre(api, on_scan_day):
    """The start form asks for the cadre alone; the service fills rule, years and level from the record."""
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")
    response = start_raw(api, "mid3")
    assert response.status_code == 201, response.json
    data = response.json["data"]
    assert (data["rule"], data["post_level"], data["years_in_post"]) == ("advised", "middle", 3)


@pytest.mark.parametrize("cadre_id", ["lead9", "mid2", "staff30", "nopost"])
def test_a_hand_start_for_a_cadre_no_rule_applies_to_is_422(api, on_scan_day, cadre_id):
    """Not due (a day short), staff or without a post: 422 on `rule`, whatever rule the caller claims."""
    make_cadres(api)
    assert_error(start_raw(api, cadre_id, rule="mandatory", years_in_post=30, post_level="leading"), 422,
                 fields={"rule"})
    assert rotation_cases(api)["total"] == 0


def test_a_second_unfinished_review_is_409(api, services, on_scan_day):
    """While a cadre's review is open or in incident a hand start is 409; once it is closed one may start."""
    api.create_cadre("lead10", post_level="leading", post_started_on="2016-06-15")
    api.create_cadre("mid3", post_level="middle", post_started_on="2023-06-15")
    opened = opened_by_cadre(scan(api))
    assert_error(start_raw(api, "lead10"), 409, fields={"cadre_id"})
    hold_in_incident(services, opened["lead10"]["case_id"])
    assert_error(start_raw(api, "lead10"), 409, fields={"cadre_id"})
    api.complete(opened["mid3"]["case_id"], "rotation_plan", decision="keep", reason="工作需要")
    assert start_raw(api, "mid3").status_code == 201
    assert rotation_cases(api)["total"] == 3


def test_a_refusal_names_only_what_its_starter_may_read(api, on_scan_day):
    """Made starters: committee reads every cadre's file but not the review (no lane): the precise reason, no case
    id; audit reads neither: one 422 on `cadre_id` for a cadre no rule applies to and for one under review."""
    make_cadres(api)
    case_id = opened_by_cadre(scan(api))["lead10"]["case_id"]
    assert api.put(f"/api/processes/{ROTATION}/starters",
                   json={"roles": ["org_dept", "committee", "audit"]}).status_code == 200

    def start_as(user, cadre_id):
        return api.post("/api/cases", as_=user, json={"process": ROTATION, "cadre_id": cadre_id, "data": {}})

    busy = assert_error(start_as("committee", "lead10"), 409, fields={"cadre_id"})
    assert "unfinished" in busy["message"] and f"case {case_id}" not in busy["message"], busy
    assert f"case {case_id}" in assert_error(start_raw(api, "lead10"), 409)["message"]
    assert_error(start_as("committee", "mid2"), 422, fields={"rule"})
    told = [assert_error(start_as("audit", cadre_id), 422, fields={"cadre_id"}) for cadre_id in ("lead10", "mid2")]
    assert told[0]["message"].replace("lead10", "mid2") == told[1]["message"] and "不符合发起条件" in told[1]["message"]
    assert f"case {case_id}" not in told[0]["message"] and "rule" not in told[0]["fields"], told


def test_a_bulk_start_opens_only_what_the_scan_would(api, services, on_scan_day):
    """A bulk start of reviews for every cadre: those with no rule fail on `rule`; one in incident is unfinished, so
    the `open` dedupe skips it like the open ones."""
    make_cadres(api)
    opened = opened_by_cadre(scan(api))
    hold_in_incident(services, opened["lead10"]["case_id"])
    job = api.post("/api/bulk-starts", as_="org_dept", json={"process": ROTATION})
    assert job.status_code == 202, job.json
    bulk.run_jobs(services)
    done = api.get(f"/api/bulk-starts/{job.json['id']}", as_="org_dept").json
    assert (done["opened"], done["skipped"], done["failed"]) == (0, 3, 3)
    assert {error["cadre_id"]: set(error["fields"]) for error in done["errors"]} == {
        "lead9": {"rule"}, "mid2": {"rule"}, "staff30": {"rule"}}
    assert rotation_cases(api)["total"] == 3
