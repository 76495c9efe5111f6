"""Timer start events a designer may get wrong: refused at deploy, or contained at run time, never a worker or a
deploy left broken for everyone after them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select, update

from service.db.models import Cadre, ScheduledStart
from service.usecases import bulk, schedules
from service.worker import run_worker
from tests.api.support import assert_error
from tests.conformance.bpmn import chain, definitions, end, form, start, user


def timer_process(key: str, kind: str, value: str, task: str = "a") -> bytes:
    timer = f'<bpmn:timerEventDefinition id="td"><bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition>'
    return definitions(key, start(definition=timer) + user(task) + end() + chain("start", task, "end"),
                       {"org_dept": [task]})


def plain_process(key: str, task: str) -> bytes:
    return definitions(key, start() + user(task) + end() + chain("start", task, "end"), {"org_dept": [task]})


def deploy(api, key, body):
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=body, content_type="application/xml")


@pytest.mark.parametrize("cycle", ['"R/2020-01-01T00:00:00Z/P9999Y"', '"R/2020-01-01T00:00:00Z/PT0S"',
                                   '"R3/2020-01-01T00:00:00Z/PT59M"'])
def test_a_cycle_the_scheduler_could_not_follow_is_refused_at_deploy(api, cycle):
    """Past the year 9999 every poll would fail; shorter than an hour every poll opens cases for every cadre."""
    problem = assert_error(deploy(api, "cyclic", timer_process("cyclic", "timeCycle", cycle)), 422)["errors"][0]
    assert "定时启动无法计算" in problem["message"]
    assert api.get("/api/processes/cyclic").status_code == 404


def test_an_hourly_or_longer_cycle_deploys_and_ends_after_its_repetitions(api, services):
    assert deploy(api, "cyclic", timer_process("cyclic", "timeCycle", '"R2/2020-01-01T00:00:00Z/PT1H"')).status_code \
        == 201
    fired = [schedules.fire_due(services, now=datetime(2020, 1, 1, hour, 30, tzinfo=UTC)) for hour in range(3)]
    assert fired == [1, 1, 0]


def test_a_cycle_down_for_long_fires_once_then_ends_after_its_repetitions(api, services):
    """Both firings missed: the newer one fires, the older is skipped, and the schedule is over."""
    assert deploy(api, "cyclic", timer_process("cyclic", "timeCycle", '"R2/2020-01-01T00:00:00Z/PT1H"')).status_code \
        == 201
    fired = [schedules.fire_due(services, now=datetime(2030, 1, 1, tzinfo=UTC)) for _ in range(3)]
    assert fired == [1, 0, 0]
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(ScheduledStart.next_due).where(ScheduledStart.process_key == "cyclic")) is None


def test_a_cycle_begun_long_ago_catches_up_in_a_few_steps_not_one_per_missed_firing(api, services, monkeypatch,
                                                                                    caplog):
    """An hourly cycle whose start a designer put decades back: its first firing skipped every hour since, one
    computed firing and one kept datetime each, in the worker under the schedule's lock (from the year 1: 17 million,
    about 85 s and a gigabyte). Whole intervals of fixed length are skipped at once; the newest due firing fires,
    the next one is the next hour."""
    assert deploy(api, "ancient", timer_process("ancient", "timeCycle", '"R/1990-01-01T00:00:00Z/PT1H"')) \
        .status_code == 201
    steps = []
    real_add = schedules.add_duration
    monkeypatch.setattr(schedules, "add_duration", lambda moment, duration: steps.append(1) or
                        real_add(moment, duration))
    now = datetime(2030, 6, 1, 12, 30, tzinfo=UTC)
    assert schedules.fire_due(services, now=now) == 1
    assert len(steps) < 100, len(steps)
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(ScheduledStart.next_due).where(ScheduledStart.process_key == "ancient")) \
            .astimezone(UTC) == datetime(2030, 6, 1, 13, tzinfo=UTC)
    missed = (datetime(2030, 6, 1, 12) - datetime(1990, 1, 1)) // timedelta(hours=1)
    assert f"{missed} missed firing(s) skipped (1990-01-01 08:00, 1990-01-01 09:00," in caplog.text, caplog.text


def test_a_long_missed_cycle_of_many_repetitions_fires_its_last_and_ends(api, services, caplog):
    """Leaping over missed firings counts them off the repetitions: the last one fires, and no other after it."""
    assert deploy(api, "counted", timer_process("counted", "timeCycle", '"R100000/1990-01-01T00:00:00Z/PT1H"')) \
        .status_code == 201
    assert [schedules.fire_due(services, now=datetime(2030, 1, 1, tzinfo=UTC)) for _ in range(2)] == [1, 0]
    with services.db.unit_of_work(write=False) as session:
        row = session.scalar(select(ScheduledStart).where(ScheduledStart.process_key == "counted"))
        assert row.next_due is None and row.last_fired_at is not None
    last = (datetime(1990, 1, 1, tzinfo=UTC) + timedelta(hours=99_999)).astimezone(services.zone)
    assert "counted: 99999 missed firing(s) skipped" in caplog.text, caplog.text  # of 100,000: the last fires
    assert f"only the newest due, {last:%Y-%m-%d %H:%M}, fires" in caplog.text, caplog.text


@pytest.mark.parametrize(("kind", "value", "next_due"), [
    ("timeDate", '"2027-01-01T00:00:00+08:00"', None),
    ("timeCycle", '"R/2027-01-01T00:00:00+08:00/P1Y"', datetime(2027, 12, 31, 16, tzinfo=UTC)),
])
def test_a_new_version_goes_on_from_the_last_firing_and_fires_none_again(api, services, kind, value, next_due):
    """A designer fixes a label in February: the New Year firing does not come again (a case for every cadre
    whose first one is closed by then); a cycle's next firing stays next New Year."""
    new_year = datetime(2026, 12, 31, 16, 1, tzinfo=UTC)
    assert deploy(api, "yearly", timer_process("yearly", kind, value)).status_code == 201
    assert schedules.fire_due(services, now=new_year) == 1
    assert deploy(api, "yearly", timer_process("yearly", kind, value, task="b")).status_code == 201
    assert schedules.fire_due(services, now=datetime(2027, 2, 1, tzinfo=UTC)) == 0
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(ScheduledStart.next_due).where(ScheduledStart.process_key == "yearly")) \
            == next_due


def test_a_next_firing_past_the_calendar_ends_the_schedule_not_the_worker(api, services):
    """A schedule stored before deploy refused such cycles: it fires what is due, then ends."""
    assert deploy(api, "cyclic", timer_process("cyclic", "timeCycle", '"R/2020-01-01T00:00:00Z/P1D"')).status_code \
        == 201
    with services.db.unit_of_work() as session:
        session.scalar(select(ScheduledStart).where(ScheduledStart.process_key == "cyclic")).interval = "P9999Y"
    assert schedules.fire_due(services) == 1
    with services.db.unit_of_work(write=False) as session:
        assert session.scalar(select(ScheduledStart.next_due).where(ScheduledStart.process_key == "cyclic")) is None


def test_a_refused_deploy_leaves_nothing_behind_for_the_next_one(api):
    """The refused version's row was flushed and rolled back; SQLite gives its id to the next version. The next
    deploy must neither inherit its refusal nor run its diagram."""
    refused = deploy(api, "bad_timer", timer_process("bad_timer", "timeDate", '"9999-12-31T23:59:59-14:00"',
                                                     task="hidden_task"))
    assert_error(refused, 422)
    assert deploy(api, "fine", plain_process("fine", "visible_task")).status_code == 201
    assert api.put("/api/processes/fine/starters", json={"roles": ["org_dept"]}).status_code == 200
    api.create_cadre("c1")
    case = api.start("fine", "c1", as_="org_dept")
    assert [t["element_id"] for t in case["open_tasks"]] == ["visible_task"]


def test_one_failing_stage_does_not_stop_the_others(api, services, monkeypatch):
    """The timer starts fail on every poll: the bulk starts, the next stage, still run."""
    api.create_cadre("c1")
    job = api.post("/api/bulk-starts", as_="org_dept", json={"process": "integrity_report", "data": {"year": 2026}})
    assert job.status_code == 202, job.json

    def broken(_services):
        raise OverflowError("date value out of range")
    monkeypatch.setattr(schedules, "fire_due", broken)
    run_worker(services, threading.Event(), once=True)
    assert api.get(f"/api/bulk-starts/{job.json['id']}", as_="org_dept").json["opened"] == 1


def with_filter(key: str, expression: str) -> bytes:
    return timer_process(key, "timeDate", '"2020-01-01T00:00:00+08:00"').replace(
        b'isExecutable="true">', b'isExecutable="true" xmlns:cadreflow="http://cadreflow.example/schema/1.0" '
        b'cadreflow:startFor="' + escape(expression, {'"': "&quot;"}).encode() + b'">', 1)


def test_a_filter_failing_on_a_departed_cadre_is_refused_at_deploy(api, services):
    """A departed cadre has no post start: compared with a date, the filter fails on that cadre, and the whole
    firing's job with it, so no cadre of the county gets a case. Refused at deploy; guarded, it deploys."""
    problem = assert_error(deploy(api, "tenure", with_filter("tenure", 'post_started_on <= "2016-01-01"')), 422)
    assert "筛选表达式执行失败" in problem["errors"][0]["message"]
    guarded = with_filter("tenure", 'post != "" and post_started_on <= "2016-01-01"')
    assert deploy(api, "tenure", guarded).status_code == 201


def test_without_a_filter_each_firing_opens_one_case_per_cadre_holding_a_post_and_none_twice(api, services):
    """docs/api.md: no `cadreflow:startFor` picks every cadre holding a post; each case runs the flow once (a cycle
    begun before it must not run it again per repetition past); a cadre whose case of the process is still open
    gets no second one at the next firing, and one whose case ended gets a new one."""
    for cadre_id in ("c1", "c2", "c3"):
        api.create_cadre(cadre_id)
    with services.db.unit_of_work() as session:
        session.execute(update(Cadre).where(Cadre.id == "c3").values(post=""))  # left its post
    body = timer_process("yearly", "timeCycle", '"R3/2020-01-01T00:00:00Z/P1Y"')
    assert deploy(api, "yearly", body).status_code == 201

    def fire(year: int) -> list[tuple[str, list[str]]]:
        assert schedules.fire_due(services, now=datetime(year, 1, 1, 1, tzinfo=UTC)) == 1
        bulk.run_jobs(services)
        cases = api.get("/api/cases", as_="admin", query_string={"process": "yearly", "status": "open"}).json
        return sorted((c["cadre_id"], api.open_elements(c["id"])) for c in cases["items"])

    assert fire(2020) == [("c1", ["a"]), ("c2", ["a"])]
    c1_case = next(c["id"] for c in api.get("/api/cases", as_="admin", query_string={"process": "yearly"}).json[
        "items"] if c["cadre_id"] == "c1")
    assert api.complete(c1_case, "a", ok=True)["status"] == "completed"
    assert fire(2021) == [("c1", ["a"]), ("c2", ["a"])]  # c1's ended: a new one; c2's still open: none more
    assert api.get("/api/cases", as_="admin", query_string={"process": "yearly"}).json["total"] == 3


def test_a_timer_start_whose_start_form_asks_for_what_no_firing_gives_is_refused_at_deploy(api, services):
    """A firing gives a case its cadre, `year` and `fired_on`, nothing else: a start form requiring another field
    deployed, and each firing then opened no case for any cadre."""
    api.create_cadre("c1")
    text, year = {"type": "string", "title": "标题"}, {"type": "integer", "title": "年度"}
    schema = {"type": "object", "title": "发起", "additionalProperties": False, "required": ["year", "title"],
              "properties": {"cadre_id": {"type": "string", "title": "干部"}, "year": year,
                             "title": text}}
    timer = '<bpmn:timerEventDefinition id="td"><bpmn:timeDate>"2020-01-01T00:00:00+08:00"</bpmn:timeDate>' \
            "</bpmn:timerEventDefinition>"
    body = definitions("asks", f'<bpmn:startEvent id="start"><bpmn:extensionElements>{form(schema)}'
                       f"</bpmn:extensionElements>{timer}</bpmn:startEvent>" + user("a") + end()
                       + chain("start", "a", "end"), {"org_dept": ["a"]})
    problems = assert_error(deploy(api, "asks", body), 422)["errors"]
    assert [p["element_id"] for p in problems] == ["start"] and "title" in problems[0]["message"], problems
    assert deploy(api, "asks", body.replace(b'"required": ["year", "title"]', b'"required": ["year"]')).status_code \
        == 201
    assert schedules.fire_due(services, now=datetime(2021, 1, 1, tzinfo=UTC)) == 1
    assert bulk.run_jobs(services) == 1
