"""ISSUE 12.3 — integrity_report 述职述廉 (PROCESSES §8): opening per year, public disclosure and rating, tallies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from service.db.models import Disclosure, DisclosureRating
from service.errors import Conflict
from service.usecases import bulk, proof
from service.usecases.timers import fire_due_timers
from tests.api.support import ADMONISHMENT, CaseApi, app_from_template, assert_error, hold_in_incident, make_api
from tests.conformance.bpmn import chain, definitions, end, start, user
from tests.conftest import SLOW_DEADLINES

PROCESS = "integrity_report"
PERIOD = 4  # seconds of disclosure in the `short` app: enough to rate a few times, short enough to wait out
REPORTS = {"duty_report": "全年履职：完成重点项目十二项", "integrity_report": "廉洁自律：无违规情况"}


@pytest.fixture
def short_app(template, tmp_path) -> Iterator:
    app = app_from_template(template, tmp_path / "short", DEADLINES={**SLOW_DEADLINES, "disclosure": f"PT{PERIOD}S"},
                            PUBLIC_POST_LIMIT=1000)
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def short_api(short_app, template):
    return make_api(short_app, template)


def open_year(api, year=2026, as_="org_dept"):
    return api.post("/api/integrity-reports", as_=as_, json={"year": year})


def to_disclosure(api, case_id):
    api.complete(case_id, "submit_report", **REPORTS)
    return api.complete(case_id, "committee_hearing", opinion="报告客观真实")


def rate(api, disclosure_id, rating, address="203.0.113.1", **extra):
    return api.client.post(f"/public/disclosures/{disclosure_id}/ratings", json={"rating": rating, **extra},
                           environ_base={"REMOTE_ADDR": address})


def public_list(api):
    response = api.client.get("/public/disclosures")
    assert response.status_code == 200, response.json
    return response.json


def disclosed(api, case_id):
    """The disclosure id of a case that has reached its public disclosure."""
    to_disclosure(api, case_id)
    return next(item["id"] for item in api.get("/api/disclosures", as_="org_head").json["items"]
                if item["case_id"] == case_id)


def wait_out(api, app):
    time.sleep(PERIOD + 0.3)
    assert fire_due_timers(app.extensions["cadreflow"]) >= 1


# Opening.

def test_open_for_every_leading_cadre_once_per_year(api):
    """Every leading cadre holding a post gets one case per year; a repeat opens nothing."""
    api.create_cadre("c1")
    api.create_cadre("c2", post_level="middle")
    api.create_cadre("c3", post="")  # leading, but holds no post
    api.create_cadre("c4")
    first = open_year(api)
    assert first.status_code == 200, first.json
    opened = first.json["opened"]
    assert [api.case(case_id)["cadre_id"] for case_id in opened] == ["c1", "c4"]
    assert all(api.case(case_id)["data"]["year"] == 2026 for case_id in opened)
    assert api.open_elements(opened[0]) == ["submit_report"]
    assert open_year(api).json["opened"] == []
    assert len(open_year(api, 2027).json["opened"]) == 2


def test_open_refuses_other_roles_and_bad_years(api, cadre):
    """Only org_dept (and admin) opens; the year must be an integer year."""
    assert_error(open_year(api, as_="discipline"), 403)
    assert_error(open_year(api, as_="designer"), 403)
    for year in ("2026", 1999, 2101, None, True, 2026.5):
        assert_error(open_year(api, year), 422, fields={"year"})
    assert_error(api.post("/api/integrity-reports", as_="org_dept", json={"year": 2026, "x": 1}), 422)
    assert api.get("/api/cases", query_string={"process": PROCESS}).json["total"] == 0


def test_cli_opens_once(app, api, cadre):
    """`cadreflow integrity-reports --year Y` opens the year's cases, and nothing on a second run."""
    runner = app.test_cli_runner()
    first = runner.invoke(args=["integrity-reports", "--year", "2026"])
    assert first.exit_code == 0, first.output
    assert "1 述职述廉 case(s) opened for 2026" in first.output
    second = runner.invoke(args=["integrity-reports", "--year", "2026"])
    assert "0 述职述廉 case(s) opened" in second.output and "1 cadre(s) already have one" in second.output
    assert runner.invoke(args=["integrity-reports", "--year", "19"]).exit_code != 0


def start_by_hand(api, cadre_id="c1", year=2026):
    return api.post("/api/cases", as_="org_dept",
                    json={"process": PROCESS, "cadre_id": cadre_id, "data": {"year": year}})


def test_never_twice_for_a_cadre_and_year_however_started(api, cadre):
    """By hand or by the yearly opening, a second case for a cadre and year is 409 (or skipped); a cancelled
    one does not count."""
    first = start_by_hand(api)
    assert first.status_code == 201, first.json
    assert_error(start_by_hand(api), 409, fields={"year"})
    assert open_year(api).json == {"opened": [], "skipped": 1, "failed": []}
    assert start_by_hand(api, year=2027).status_code == 201
    assert_error(start_by_hand(api, year=2027), 409, fields={"year"})
    assert api.post(f"/api/cases/{first.json['id']}/cancel", json={"reason": "重复发起"}).status_code == 200
    assert start_by_hand(api).status_code == 201
    assert api.get("/api/cases", query_string={"process": PROCESS}).json["total"] == 3


@pytest.mark.parametrize("level", ["middle", "staff"])
def test_only_leading_cadres_report(api, level):
    """述职述廉 is for leading cadres (§8): a start for another is 422 on `cadre_id`."""
    api.create_cadre("c2", post_level=level)
    assert_error(start_by_hand(api, "c2"), 422, fields={"cadre_id"})
    assert api.get("/api/cases", query_string={"process": PROCESS}).json["total"] == 0


def test_a_bulk_start_refuses_non_leading_cadres_and_a_second_case(api, services):
    """A bulk start for every cadre: the leading one without a case opens; a middle cadre fails on `cadre_id`, and
    one whose case is in incident (unfinished, so the `open` dedupe counts it) is skipped."""
    api.create_cadre("c1")
    api.create_cadre("c2")
    api.create_cadre("c3", post_level="middle")
    hold_in_incident(services, start_by_hand(api, "c1").json["id"])
    job = api.post("/api/bulk-starts", as_="org_dept", json={"process": PROCESS, "data": {"year": 2026}})
    assert job.status_code == 202, job.json
    bulk.run_jobs(services)
    done = api.get(f"/api/bulk-starts/{job.json['id']}", as_="org_dept").json
    assert (done["opened"], done["skipped"], done["failed"]) == (1, 1, 1)
    assert {error["cadre_id"]: set(error["fields"]) for error in done["errors"]} == {"c3": {"cadre_id"}}
    cases = api.get("/api/cases", query_string={"process": PROCESS}).json["items"]
    assert sorted((c["cadre_id"], c["status"]) for c in cases) == [("c1", "incident"), ("c2", "open")]


def test_a_refusal_tells_a_starter_only_what_it_may_read(api):
    """A starter who may choose any cadre but not read its file (audit, made a starter) learns neither the cadre's
    post level nor that it has a case, nor the case's id: one 422 for either reason; org_dept, who reads both,
    gets the precise reason."""
    api.create_cadre("c1")
    api.create_cadre("c2", post_level="middle")
    assert api.put(f"/api/processes/{PROCESS}/starters", json={"roles": ["org_dept", "audit"]}).status_code == 200
    case_id = start_by_hand(api).json["id"]
    told = []
    for cadre_id in ("c1", "c2"):
        response = api.post("/api/cases", as_="audit", json={"process": PROCESS, "cadre_id": cadre_id,
                                                              "data": {"year": 2026}})
        error = assert_error(response, 422, fields={"cadre_id"})
        assert str(case_id) not in error["message"].replace(cadre_id, "") and "领导干部" not in str(error), error
        told.append((error["message"].replace(cadre_id, "<id>"), error["fields"]))
    assert told[0] == told[1], told
    assert "不符合发起条件" in told[0][0]
    assert f"case {case_id}" in assert_error(start_by_hand(api), 409, fields={"year"})["message"]
    assert "不是领导干部" in str(assert_error(start_by_hand(api, "c2"), 422, fields={"cadre_id"}))


def test_a_bulk_start_tells_its_author_only_what_it_may_read(api, services):
    """A bulk start's errors follow the same rule: a non-leading cadre's error names no post level for an author
    who may not read its file."""
    api.create_cadre("c1", post_level="middle")
    assert api.put(f"/api/processes/{PROCESS}/starters", json={"roles": ["org_dept", "audit"]}).status_code == 200
    job = api.post("/api/bulk-starts", as_="audit", json={"process": PROCESS, "data": {"year": 2026}})
    assert job.status_code == 202, job.json
    bulk.run_jobs(services)
    done = api.get(f"/api/bulk-starts/{job.json['id']}", as_="audit").json
    assert done["failed"] == 1 and [error["cadre_id"] for error in done["errors"]] == ["c1"], done
    assert "领导干部" not in str(done["errors"]) and "不符合发起条件" in done["errors"][0]["error"], done


def test_another_starter_reads_a_bulk_starts_errors_as_it_may_know_them(api, services):
    """org_dept's job fails on a middle cadre; audit, also a starter, may follow the job but not read that cadre's
    file: it sees the failure, not the reason; org_dept still sees why."""
    api.create_cadre("c1", post_level="middle")
    assert api.put(f"/api/processes/{PROCESS}/starters", json={"roles": ["org_dept", "audit"]}).status_code == 200
    job = api.post("/api/bulk-starts", as_="org_dept", json={"process": PROCESS, "data": {"year": 2026}})
    bulk.run_jobs(services)
    url = f"/api/bulk-starts/{job.json['id']}"
    assert "不是领导干部" in str(api.get(url, as_="org_dept").json["errors"])
    seen = api.get(url, as_="audit").json
    assert seen["failed"] == 1 and [error["cadre_id"] for error in seen["errors"]] == ["c1"], seen
    assert "领导干部" not in str(seen["errors"]) and "不符合发起条件" in seen["errors"][0]["error"], seen


CALLER = "integrity_caller"
YEAR_FORM = {"type": "object", "title": "年度", "properties": {"year": {"type": "integer", "title": "年度"}},
             "required": ["year"]}


def deploy_caller(api, lanes=None):
    """A designer's process that asks for a year, then calls 述职述廉 for its cadre."""
    call = f'<bpmn:callActivity id="call" name="述职述廉" calledElement="{PROCESS}"/>'
    body = start() + user("pick", YEAR_FORM) + call + end() + chain("start", "pick", "call", "end")
    deployed = api.post(f"/api/processes/{CALLER}/versions", as_="designer", content_type="application/xml",
                        data=definitions(CALLER, body, lanes or {"org_dept": ["pick"]}))
    assert deployed.status_code == 201, deployed.json
    assert api.put(f"/api/processes/{CALLER}/starters", json={"roles": ["org_dept"]}).status_code == 200


def test_a_call_activity_refused_by_the_start_rule_is_the_callers_incident(api, cadre):
    """The rule refuses the child at the call activity: the caller's step is stored as an incident there (not a
    422 that leaves the task impossible to complete), and a retry once the records allow it opens the child."""
    deploy_caller(api)
    api.create_cadre("c2", post_level="middle")
    middle = api.start(CALLER, "c2", as_="org_dept")["id"]
    held = api.complete(middle, "pick", year=2026)
    assert held["status"] == "incident" and held["incident"]["element_id"] == "call", held
    assert "述职述廉只适用于领导干部" in held["incident"]["message"]

    existing = start_by_hand(api, "c1").json["id"]
    leading = api.start(CALLER, "c1", as_="org_dept")["id"]
    assert "该年度已有述职述廉" in api.complete(leading, "pick", year=2026)["incident"]["message"]
    assert api.post(f"/api/cases/{existing}/cancel", json={"reason": "重复发起"}).status_code == 200
    retried = api.post(f"/api/cases/{leading}/retry")
    assert retried.status_code == 200, retried.json
    assert retried.json["status"] == "open"
    children = api.get("/api/cases", query_string={"process": PROCESS, "status": "open"}).json["items"]
    assert [(c["cadre_id"], c["parent_case_id"]) for c in children] == [("c1", leading)]


def test_a_callers_incident_names_no_case_its_readers_may_not_read(api, cadre):
    """The call is checked as the system, which reads every case; but the incident is read by whoever reads the
    caller. audit owns a lane of the caller, not of 述职述廉: it reads the refusal's reason, and no id of the case
    that refused it, in the case or its history (the case page and the tracker show the same stored incident)."""
    deploy_caller(api, {"org_dept": ["pick"], "audit": ["end"]})
    existing = start_by_hand(api, "c1").json["id"]
    leading = api.start(CALLER, "c1", as_="org_dept")["id"]
    held = api.complete(leading, "pick", year=2026)
    assert held["status"] == "incident" and held["incident"]["element_id"] == "call", held
    assert api.get(f"/api/cases/{existing}", as_="audit").status_code == 404
    seen = api.get(f"/api/cases/{leading}", as_="audit")
    assert seen.status_code == 200 and "该年度已有述职述廉" in seen.json["incident"]["message"], seen.json
    history = api.get(f"/api/cases/{leading}/history", as_="audit")
    assert history.status_code == 200, history.json
    for told in (str(seen.json), str(history.json)):
        assert f"case {existing}" not in told and f"案件 {existing}" not in told, told


# The process over HTTP.

def test_reports_are_public_only_during_the_disclosure(api, cadre):
    """Nothing is public before the committee hearing; after it the reports are listed without login."""
    case_id = open_year(api).json["opened"][0]
    api.complete(case_id, "submit_report", **REPORTS)
    assert public_list(api) == []
    api.complete(case_id, "committee_hearing", opinion="报告客观真实")
    [item] = public_list(api)
    assert {k: item[k] for k in ("cadre_name", "unit", "post", "year", "duty_report", "integrity_report")} == {
        "cadre_name": "张三", "unit": "县发改局", "post": "副局长", "year": 2026, **REPORTS}
    assert item["ends_on"] and item["tally"] == {"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0,
                                                 "total": 0}
    assert "case_id" not in item and "opinion" not in item
    assert api.client.get(f"/public/disclosures/{item['id']}").json["id"] == item["id"]
    assert_error(api.client.get("/public/disclosures/999"), 404)


def test_a_disclosure_ends_on_the_countys_date(app, api, cadre):
    """`ends_on` is the day in TIMEZONE (Asia/Shanghai): a period ending 17:00 UTC ends the next day there."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    with app.extensions["cadreflow"].db.unit_of_work() as session:
        session.execute(update(Disclosure).where(Disclosure.id == disclosure_id)
                        .values(ends_at=datetime(2099, 3, 1, 17, 0, tzinfo=UTC)))
    [item] = public_list(api)
    assert (item["ends_on"], item["ends_at"][:16]) == ("2099-03-02", "2099-03-01T17:00")
    assert api.client.get(f"/public/disclosures/{disclosure_id}").json["ends_on"] == "2099-03-02"


def test_rating_once_per_address(api, cadre):
    """Each address rates a disclosure once (409 after); other addresses count; the tally follows."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    first = rate(api, disclosure_id, "satisfied", comment="工作扎实")
    assert first.status_code == 201, first.json
    assert first.json["tally"]["satisfied"] == 1
    assert_error(rate(api, disclosure_id, "dissatisfied"), 409)
    assert rate(api, disclosure_id, "dissatisfied", "203.0.113.2").status_code == 201
    assert rate(api, disclosure_id, "basically_satisfied", "2001:db8::1").status_code == 201
    staff = api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json
    assert staff["tally"] == {"satisfied": 1, "basically_satisfied": 1, "dissatisfied": 1, "total": 3}
    assert staff["comments"] == [{"rating": "satisfied", "comment": "工作扎实"}]
    assert staff["status"] == "running"


def test_an_ipv6_client_rates_once_per_64(api, cadre):
    """Rotating through one's /64 gains nothing: the 50 addresses rate once; another /64 is another voter."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    statuses = [rate(api, disclosure_id, "dissatisfied", f"2001:db8:1:2::{i:x}").status_code for i in range(1, 51)]
    assert statuses[0] == 201 and set(statuses[1:]) <= {409, 429}
    assert rate(api, disclosure_id, "satisfied", "2001:db8:1:3::1").status_code == 201
    assert rate(api, disclosure_id, "satisfied", "203.0.113.1").status_code == 201
    assert rate(api, disclosure_id, "satisfied", "203.0.113.2").status_code == 201  # IPv4: each address alone
    tally = api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]
    assert (tally["dissatisfied"], tally["total"]) == (1, 4)


def test_the_database_refuses_a_second_rating_from_one_address(app, api, cadre):
    """The unique key on (disclosure, hashed address) holds even when the service is bypassed."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    assert rate(api, disclosure_id, "satisfied").status_code == 201
    services = app.extensions["cadreflow"]
    with services.db.unit_of_work(write=False) as session:
        stored = session.query(DisclosureRating).one()
        assert "203.0.113.1" not in stored.address_hash and len(stored.address_hash) == 64
        digest = stored.address_hash
    with pytest.raises(Conflict) as refused, services.db.unit_of_work() as session:
        session.add(DisclosureRating(disclosure_id=disclosure_id, address_hash=digest, rating="dissatisfied"))
    assert isinstance(refused.value.__cause__, IntegrityError)  # the constraint, reported as a 409


@pytest.mark.parametrize(("body", "fields"), [
    ({"rating": "great"}, {"rating"}),
    ({}, {"rating"}),
    ({"rating": "satisfied", "comment": 5}, {"comment"}),
    ({"rating": "satisfied", "comment": "<script>alert(1)</script>"}, {"comment"}),
    ({"rating": "satisfied", "comment": "&lt;script&gt;alert(1)&#60;/script&#x3e;"}, {"comment"}),  # entities too
    ({"rating": "satisfied", "comment": "很" * 2001}, {"comment"}),
    ({"rating": "satisfied", "extra": 1}, {"extra"}),
    ({"rating": "satisfied", "comment": "好\u0000"}, {"comment"}),  # PostgreSQL refuses NUL in text
    ({"rating": "satisfied", "comment": "满意\u202e意满不"}, {"comment"}),  # a bidi override: shown reversed
    ({"rating": "satisfied", "comment": "好\x1b[2J"}, {"comment"}),  # a terminal escape
])
def test_bad_ratings_are_422_and_not_stored(api, cadre, body, fields):
    """A rating outside the three values, a non-text, markup (a tag or an entity), NUL or too long comment,
    unknown fields: 422."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    response = api.client.post(f"/public/disclosures/{disclosure_id}/ratings", json=body)
    assert_error(response, 422, fields=fields)
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 0


def test_malformed_and_unknown(api, cadre):
    """Not JSON is a 400; an unknown disclosure a 404."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    assert_error(api.client.post(f"/public/disclosures/{disclosure_id}/ratings", data="x"), 400)
    assert_error(rate(api, 999, "satisfied"), 404)


def test_a_body_over_a_megabyte_is_413_and_not_stored(api, cadre):
    """docs/api.md: public bodies over 1 MB are 413 (JSON error), like the portal's reports, not a 422 rating."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    assert_error(rate(api, disclosure_id, "satisfied", comment="很" * 400_000), 413)  # 1.2 MB of UTF-8
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 0


def test_public_posts_are_rate_limited(template, tmp_path):
    """Past PUBLIC_POST_LIMIT submissions (10 here, the fewest settings allow) an address gets 429 with
    Retry-After; a refused rating (409) counts too."""
    app = app_from_template(template, tmp_path / "limited", PUBLIC_POST_LIMIT=10)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        disclosure_id = disclosed(api, open_year(api).json["opened"][0])
        assert rate(api, disclosure_id, "satisfied").status_code == 201
        assert [rate(api, disclosure_id, "satisfied").status_code for _ in range(9)] == [409] * 9
        limited = rate(api, disclosure_id, "satisfied")
        assert_error(limited, 429)
        assert int(limited.headers["Retry-After"]) > 0
        assert rate(api, disclosure_id, "satisfied", "198.51.100.7").status_code == 201  # another address
        # Reports and ratings share one count: the other address, past its tenth POST, may not report.
        challenge = api.client.get("/public/challenge").json
        body = {"subject_name": "张三", "subject_unit": "县交通局", "category": "inaction", "content": "反映问题",
                "pow_challenge": challenge["challenge"], "pow_nonce": proof.solve(challenge["challenge"],
                                                                                  challenge["bits"])}
        assert [rate(api, disclosure_id, "satisfied", "198.51.100.7").status_code for _ in range(9)] == [409] * 9
        assert_error(api.client.post("/public/reports", json=body, environ_base={"REMOTE_ADDR": "198.51.100.7"}),
                     429)
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_staff_reads_follow_the_policy(api, cadre):
    """Lanes of the process and discipline read disclosures; audit sees none; designer and outsiders may not."""
    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    for role in ("org_dept", "org_head", "committee", "discipline", "discipline_head", "admin"):
        assert [i["id"] for i in api.get("/api/disclosures", as_=role).json["items"]] == [disclosure_id], role
        assert api.get(f"/api/disclosures/{disclosure_id}", as_=role).status_code == 200
    assert api.get("/api/disclosures", as_="audit").json["items"] == []
    assert_error(api.get(f"/api/disclosures/{disclosure_id}", as_="audit"), 404)
    assert_error(api.get("/api/disclosures", as_="designer"), 403)
    assert_error(api.client.get("/api/disclosures"), 401)
    assert api.get("/api/disclosures", as_="org_head", query_string={"year": 2025}).json["items"] == []


def test_a_staff_read_of_a_disclosure_is_logged_as_a_read_of_its_case(api, cadre):
    """Its reports are the case's data: the read is in the access log (`disclosure`, naming case and cadre), as
    every read of a case's detail is; a refused one (404) is not."""
    case_id = open_year(api).json["opened"][0]
    disclosure_id = disclosed(api, case_id)
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="committee").status_code == 200
    assert_error(api.get(f"/api/disclosures/{disclosure_id}", as_="audit"), 404)
    log = api.get("/api/access-log", as_="discipline_head", query_string={"username": "committee"}).json["items"]
    assert [(e["what"], e["case_id"], e["cadre_id"]) for e in log] == [("disclosure", case_id, "c1")]
    assert api.get("/api/access-log", as_="discipline_head", query_string={"username": "audit"}).json["total"] == 0


@pytest.mark.parametrize(("ratings", "outcome"), [
    (["satisfied", "satisfied", "dissatisfied"], "satisfactory"),
    (["satisfied", "dissatisfied", "dissatisfied"], "dissatisfied"),
    ([], "satisfactory"),
])
def test_period_end_tally_conclusion_and_record(short_app, short_api, ratings, outcome):
    """After the period the tally reaches org_head; the DMN concludes; the result is on the cadre."""
    api = short_api
    api.create_cadre("c1")
    case_id = open_year(api).json["opened"][0]
    disclosure_id = disclosed(api, case_id)
    for index, rating in enumerate(ratings):
        assert rate(api, disclosure_id, rating, f"192.0.2.{index + 1}").status_code == 201
    wait_out(api, short_app)
    assert public_list(api) == []
    assert_error(rate(api, disclosure_id, "satisfied", "192.0.2.200"), 409)
    case = api.case(case_id)
    assert [t["element_id"] for t in case["open_tasks"]] == ["evaluation_summary"]
    assert case["data"]["tally"]["total"] == len(ratings)
    case = api.complete(case_id, "evaluation_summary", conclusion="社会评议总体良好")
    assert case["status"] == "completed" and case["outcome"] == outcome
    assert api.cadre()["integrity_reviews"] == [
        {"year": 2026, "result": outcome, "case_id": case_id, "concluded_on": api.cadre()["integrity_reviews"][0]
         ["concluded_on"]}]
    staff = api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json
    assert (staff["status"], staff["result"], staff["conclusion"]) == ("closed", outcome, "社会评议总体良好")
    children = [api.case(child) for child in api.case(case_id)["child_case_ids"]]
    if outcome == "dissatisfied":
        assert [(c["process"], c["data"]["trigger"]) for c in children] == [(ADMONISHMENT, "public_evaluation")]
    else:
        assert children == []


def test_a_cancelled_case_leaves_the_public_page(api, cadre):
    """Cancelling a case during its disclosure takes the reports down and refuses further ratings."""
    case_id = open_year(api).json["opened"][0]
    disclosure_id = disclosed(api, case_id)
    assert [item["id"] for item in public_list(api)] == [disclosure_id]
    assert api.post(f"/api/cases/{case_id}/cancel", json={"reason": "干部已调离"}).status_code == 200
    assert public_list(api) == []
    assert_error(api.client.get(f"/public/disclosures/{disclosure_id}"), 404)
    assert_error(rate(api, disclosure_id, "satisfied"), 409)
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["status"] == "closed"


def test_designers_edit_the_conclusion_table(short_app, short_api):
    """A designer redeploys integrity_report with the DMN's threshold raised to one half; new cases follow it."""
    import io

    from tests.engine.helpers import BPMN_DIR

    api = short_api
    api.create_cadre("c1")
    bpmn = (BPMN_DIR / "integrity_report.bpmn").read_bytes().replace("社会评议".encode(), "群众评议".encode(), 1)
    dmn = (BPMN_DIR / "integrity_conclusion.dmn").read_bytes().replace(
        b'tally["dissatisfied"] * 3 - tally["total"]', b'tally["dissatisfied"] * 2 - tally["total"]')
    files = {"integrity_report.bpmn": bpmn, "integrity_conclusion.dmn": dmn}
    data = {f"file{i}": (io.BytesIO(content), name) for i, (name, content) in enumerate(files.items())}
    deployed = api.post(f"/api/processes/{PROCESS}/versions", as_="designer", data=data,
                        content_type="multipart/form-data")
    assert deployed.status_code == 201, deployed.json
    case_id = open_year(api).json["opened"][0]
    assert api.case(case_id)["process_version"] == deployed.json["version"]
    disclosure_id = disclosed(api, case_id)
    for index, rating in enumerate(["dissatisfied", "dissatisfied", "satisfied", "satisfied", "satisfied"]):
        assert rate(api, disclosure_id, rating, f"192.0.2.{index + 1}").status_code == 201
    wait_out(api, short_app)
    case = api.complete(case_id, "evaluation_summary", conclusion="两名群众不满意")
    assert case["outcome"] == "satisfactory"  # 2 of 5: more than a third, not more than a half


def test_simultaneous_ratings_from_one_address_count_once(app, api, cadre):
    """Eight requests from one address at the same moment: one rating is stored, the others are 409s."""
    from concurrent.futures import ThreadPoolExecutor

    from service.errors import Conflict
    from service.usecases import disclosures

    disclosure_id = disclosed(api, open_year(api).json["opened"][0])
    services = app.extensions["cadreflow"]

    def one(_: int) -> str:
        try:
            disclosures.rate(services, disclosure_id, {"rating": "dissatisfied"}, "198.51.100.9", "k" * 40)
            return "stored"
        except Conflict:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(one, range(8)))
    assert outcomes == ["refused"] * 7 + ["stored"]
    assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 1


def test_an_address_rates_once_whether_or_not_a_page_has_loaded_the_instance_key(template, tmp_path):
    """Without SECRET_KEY the ratings' address hash is keyed with the instance's key from the first request on:
    a JSON rating before any page was served (the API opens no session) is the same voter as one after."""
    app = app_from_template(template, tmp_path / "keyless", SECRET_KEY="")
    try:
        api = CaseApi(app.test_client())  # its own logins: the template's tokens are keyed with its SECRET_KEY
        api.create_cadre("c1")
        disclosure_id = disclosed(api, open_year(api).json["opened"][0])
        assert rate(api, disclosure_id, "dissatisfied").status_code == 201
        assert api.client.get(f"/disclosures/{disclosure_id}").status_code == 200  # a page: its session loads the key
        assert_error(rate(api, disclosure_id, "dissatisfied"), 409)
        assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 1
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_one_48_cannot_decide_a_rating_by_rotating_its_64s(template, tmp_path):
    """More than a third `dissatisfied` opens an admonishment: a /48 (65,536 /64s, free from a tunnel broker) rates
    a disclosure at most PUBLIC_RATINGS_PER_NETWORK times; other networks and IPv4 addresses are not held by it."""
    app = app_from_template(template, tmp_path / "networks", PUBLIC_RATINGS_PER_NETWORK=3, PUBLIC_POST_LIMIT=1000)
    try:
        api = make_api(app, template)
        api.create_cadre("c1")
        disclosure_id = disclosed(api, open_year(api).json["opened"][0])
        statuses = [rate(api, disclosure_id, "dissatisfied", f"2001:db8:66:{i:x}::1").status_code for i in range(5)]
        assert statuses == [201, 201, 201, 409, 409]
        refused = rate(api, disclosure_id, "dissatisfied", "2001:db8:66:99::1")
        assert "评议次数上限" in assert_error(refused, 409)["message"]
        assert rate(api, disclosure_id, "satisfied", "2001:db8:67::1").status_code == 201
        assert rate(api, disclosure_id, "satisfied", "198.51.100.30").status_code == 201
        assert api.get(f"/api/disclosures/{disclosure_id}", as_="org_head").json["tally"]["total"] == 5
    finally:
        app.extensions["cadreflow"].db.dispose()
