"""Lists, counts, choices and CSV exports leave out what the caller may not read."""

from __future__ import annotations

import csv
import io
import re

import pytest

from service.usecases import designs, reports
from tests.api.support import ACCOUNTABILITY, DEPARTURE, VETTING, sanction
from tests.conftest import actor
from tests.policy.world import CADRE_OF, LONE_CADRE, WALKED, reads_cadre, reads_case

LISTERS = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head", "admin"]


@pytest.fixture
def world_app(world, tmp_path):
    app = world.app(tmp_path / "lists")
    yield app
    app.extensions["cadreflow"].db.dispose()


def readable_cases(world, user):
    return {case_id for process, case_id in world.cases.items() if reads_case(user, process)}


@pytest.mark.parametrize("user", LISTERS)
def test_case_list_tracker_and_csv_hold_exactly_the_readable_cases(world, world_app, user):
    """GET /api/cases, the tracker and its CSV: the cases the user may read, counted as such."""
    api = world.api(world_app)
    listed = api.get("/api/cases", as_=user).json
    assert {c["id"] for c in listed["items"]} == readable_cases(world, user)
    assert listed["total"] == len(readable_cases(world, user))
    web = world.web(world_app, user)
    page = web.get("/cases").get_data(as_text=True)
    assert {int(i) for i in re.findall(r'data-case-id="(\d+)"', page)} == readable_cases(world, user)
    rows = list(csv.DictReader(io.StringIO(web.get("/cases.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert {int(r["案件编号"]) for r in rows} == readable_cases(world, user)


@pytest.mark.parametrize("user", LISTERS)
def test_cadre_register_and_the_trackers_cadre_filter_hold_exactly_the_readable_cadres(world, world_app, user):
    """GET /api/cadres, the register page and the cadre picker's choices: the cadres the user may read."""
    wanted = {c for c in [*CADRE_OF.values(), LONE_CADRE] if reads_cadre(user, c)}
    api = world.api(world_app)
    assert {c["id"] for c in api.get("/api/cadres", as_=user).json} == wanted
    web = world.web(world_app, user)
    register = web.get("/cadres").get_data(as_text=True)
    assert set(re.findall(r'href="/cadres/([a-z0-9]+)"', register)) - {"new"} == wanted
    assert {c["id"] for c in web.get("/search/cadres").json} == wanted
    for cadre in [*CADRE_OF.values(), LONE_CADRE]:  # searching by id never finds an unreadable one
        assert {c["id"] for c in web.get(f"/search/cadres?q={cadre}").json} == {cadre} & wanted


@pytest.mark.parametrize("user", ["org_dept", "committee", "audit"])
def test_a_cadre_record_lists_only_the_readable_cases(world, world_app, user):
    """A cadre's cases are those the user may read; its own record is whole otherwise."""
    api = world.api(world_app)
    for process, cadre_id in CADRE_OF.items():
        if not reads_cadre(user, cadre_id):
            continue
        shown = api.get(f"/api/cadres/{cadre_id}", as_=user).json
        assert [c["id"] for c in shown["cases"]] == ([world.cases[process]] if reads_case(user, process) else [])


def test_a_sanction_of_an_unreadable_case_stays_on_the_record_without_its_case(world, world_app):
    """org_dept reads the cadre and its sanction, but not the accountability case: case_id is null, no link."""
    api = world.api(world_app)
    case = sanction(api, "public_apology", cadre_id=CADRE_OF[VETTING])
    for user, case_id in (("org_dept", None), ("discipline", case["id"])):
        shown = api.get(f"/api/cadres/{CADRE_OF[VETTING]}", as_=user).json
        assert [(s["sanction"], s["case_id"]) for s in shown["sanctions"]] == [("public_apology", case_id)]
    page = world.web(world_app, "org_dept").get(f"/cadres/{CADRE_OF[VETTING]}").get_data(as_text=True)
    assert "责令公开道歉" in page and f'href="/cases/{case["id"]}"' not in page


@pytest.mark.parametrize("user", ["org_head", "discipline"])
def test_dashboard_counts_only_the_readable_cases(world, world_app, user):
    """org_head's dashboard counts the vetting case only; discipline's counts all four."""
    board = reports.dashboard(world_app.extensions["cadreflow"], actor(user))
    counted = {row["process"] for row in board["open_by_process"]}
    assert counted == {p for p in world.cases if reads_case(user, p)}
    assert board["totals"]["open"] == len(readable_cases(world, user))
    assert board["per_month"][-1]["opened"] == len(readable_cases(world, user))


def test_designer_reads_aggregate_counts_but_no_case(world, world_app):
    """The designer's catalogue counts every open case; its case and cadre lists are refused."""
    catalog = designs.process_catalog(world_app.extensions["cadreflow"], actor("designer"))
    assert {p["key"]: p["open_cases"] for p in catalog if p["open_cases"]} == dict.fromkeys(world.cases, 1)
    page = world.web(world_app, "designer").get("/designer").get_data(as_text=True)
    assert 'href="/cases/' not in page and 'href="/cadres/' not in page
    api = world.api(world_app)
    for url in ("/api/cases", "/api/cadres", "/api/tasks"):
        assert api.get(url, as_="designer").status_code == 403
    assert {DEPARTURE, ACCOUNTABILITY} <= {p["key"] for p in api.get("/api/processes", as_="designer").json}


def test_no_role_reads_nothing_in_the_web_ui(world, world_app):
    """A user with no role: every case, task and cadre page is 404, every list 403."""
    web = world.web(world_app, "norole")
    assert {web.get(f"/cases/{case_id}").status_code for case_id in world.cases.values()} == {404}
    assert {web.get(f"/tasks/{task_id}").status_code for task_id in world.tasks.values()} == {404}
    assert {web.get(f"/cadres/{c}").status_code for c in [*CADRE_OF.values(), LONE_CADRE]} == {404}
    assert {web.get(url).status_code for url in ("/cases", "/cadres", "/inbox", "/cases.csv")} == {403}
    assert "norole" in WALKED


def test_no_role_reads_nothing_in_the_api_either_and_its_ids_answer_like_unknown_ones(world, world_app):
    """The same policy in the API as in the web UI: a user with no role gets each case, task, cadre and file of
    the world as the 404 of an unknown id (body and all), not a 403 that tells a record from a guess; lists 403."""
    api = world.api(world_app)
    case, task = str(next(iter(world.cases.values()))), next(iter(world.tasks.values()))
    attachment = str(next(iter(world.attachments.values())))
    reads = [("/api/cases/{}", case, "999999"), ("/api/cases/{}/history", case, "999999"),
             ("/api/cases/{}/diagram", case, "999999"), ("/api/cases/{}/comments", case, "999999"),
             ("/api/tasks/{}", task, "00000000-0000-4000-8000-000000000000"),
             ("/api/cadres/{}", LONE_CADRE, "nobody"), ("/api/cadres/{}/ledger?kind=integrity", LONE_CADRE, "nobody"),
             ("/api/attachments/{}", attachment, "999999")]
    for url, known, unknown in reads:
        mine, guess = api.get(url.format(known), as_="norole"), api.get(url.format(unknown), as_="norole")
        assert mine.status_code == 404 and guess.status_code == 404, (url, mine.json, guess.json)
        assert mine.json == {"error": {**guess.json["error"],
                                       "message": guess.json["error"]["message"].replace(unknown, known)}}
    for url in ("/api/cases", "/api/cadres", "/api/tasks"):
        assert api.get(url, as_="norole").status_code == 403
