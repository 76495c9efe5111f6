"""The timer worker across restarts, and the layering of settings."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service import create_app
from service.cli import init_database
from service.config import load_settings
from service.usecases import cadres, cases, tasks
from service.worker import run_worker
from tests.conftest import actor, make_settings

VETTING = {"proposed_post": "局长", "selection_method": "competitive"}
CADRE = {"id": "w1", "name": "孙丽", "unit": "县林业局", "post": "副局长", "post_level": "leading",
         "post_started_on": "2017-04-01"}


def _case_waiting_for_public_notice(services) -> int:
    cadres.create_cadre(services, actor("org_dept"), CADRE)
    case = cases.start_case(services, actor("org_dept"), "pre_appointment_vetting", "w1", VETTING)
    for task in case["open_tasks"]:
        data = {"opinion": "positive"} if task["element_id"] != "democratic_evaluation" else {
            "votes_approve": 9, "votes_basic": 0, "votes_disapprove": 0}
        tasks.complete_task(services, actor("org_dept"), task["id"], data)
    review = cases.get_case(services, actor("org_head"), case["id"])["open_tasks"][0]
    after = tasks.complete_task(services, actor("org_head"), review["id"], {"decision": "approve"})
    assert after["open_tasks"] == [] and after["next_timer_due"] is not None
    return case["id"]


def test_a_timer_due_while_nothing_ran_fires_at_the_next_start_and_only_once(tmp_path: Path) -> None:
    """A case whose timer fell due while no process ran is moved by the first poll of a new worker, once."""
    settings = make_settings(tmp_path, DEADLINES={"public_notice": "PT1S"})
    first = create_app(settings).extensions["cadreflow"]
    init_database(first)
    case_id = _case_waiting_for_public_notice(first)
    first.db.dispose()  # everything stops
    time.sleep(1.2)

    restarted = create_app(settings).extensions["cadreflow"]
    assert run_worker(restarted, threading.Event(), once=True) == 1
    assert run_worker(restarted, threading.Event(), once=True) == 0
    case = cases.get_case(restarted, actor("admin"), case_id)
    assert [t["element_id"] for t in case["open_tasks"]] == ["committee_decision"]
    history = cases.case_history(restarted, actor("admin"), case_id)
    assert [h["actor"] for h in history if h["action"] == "timer"] == ["system"]
    restarted.db.dispose()


def test_deadlines_from_the_environment_override_one_key_and_keep_the_others() -> None:
    """CADREFLOW_DEADLINES as JSON changes the named deadline only; defaults stay for the rest."""
    settings = load_settings(environ={"CADREFLOW_DEADLINES": '{"public_notice": "PT5S"}',
                                      "CADREFLOW_WORKER_POLL_SECONDS": "0.5"})
    assert settings["DEADLINES"]["public_notice"] == "PT5S"
    assert settings["DEADLINES"]["investigation"] == "P60D"
    assert settings["WORKER_POLL_SECONDS"] == 0.5


def test_a_text_setting_from_the_environment_is_kept_as_written(tmp_path: Path) -> None:
    """CADREFLOW_<KEY> overrides a text setting with exactly its value: one that happens to read as JSON (a
    password "1.50", a key of digits and a dot, "true") is not turned into a number or a flag and back into other
    text (1.5); a number or a table setting is still read as JSON."""
    key = "3.14159265358979323846264338327950288419716939937510"
    settings = load_settings(environ={"CADREFLOW_SMTP_PASSWORD": "1.50", "CADREFLOW_SMTP_USER": "true",
                                      "CADREFLOW_MAIL_FROM": "1e3", "CADREFLOW_SECRET_KEY": key,
                                      "CADREFLOW_WORKER_POLL_SECONDS": "0.5"})
    assert (settings["SMTP_PASSWORD"], settings["SMTP_USER"], settings["MAIL_FROM"]) == ("1.50", "true", "1e3")
    assert settings["SECRET_KEY"] == key and settings["WORKER_POLL_SECONDS"] == 0.5


def test_a_text_setting_written_as_a_json_string_is_still_unquoted(tmp_path: Path) -> None:
    """Before text settings were taken as written, every CADREFLOW_<KEY> was read as JSON, so an operator could
    quote a value ("…"): such a deployment must keep its value at the upgrade (a quoted SECRET_KEY taken with its
    quotes would silently end every login, a quoted DATABASE_URL stop the start)."""
    url = f"sqlite:///{tmp_path}/x.sqlite3"
    settings = load_settings(environ={"CADREFLOW_DATABASE_URL": f'"{url}"', "CADREFLOW_SMTP_PASSWORD": '"1.50"',
                                      "CADREFLOW_MAIL_FROM": r'"a\"b"'})
    assert (settings["DATABASE_URL"], settings["SMTP_PASSWORD"], settings["MAIL_FROM"]) == (url, "1.50", 'a"b')


def test_a_config_file_is_overridden_by_the_environment(tmp_path: Path) -> None:
    """The file named by CADREFLOW_CONFIG overrides the defaults; CADREFLOW_<KEY> overrides the file."""
    config = tmp_path / "site.toml"
    config.write_text('SCRIPT_TIMEOUT_SECONDS = 2.5\nTOKEN_TTL_HOURS = 1\n[DEADLINES]\ninquiry_reply = "P20D"\n')
    settings = load_settings(environ={"CADREFLOW_CONFIG": str(config), "CADREFLOW_TOKEN_TTL_HOURS": "3"})
    assert settings["SCRIPT_TIMEOUT_SECONDS"] == 2.5
    assert settings["TOKEN_TTL_HOURS"] == 3
    assert settings["DEADLINES"]["inquiry_reply"] == "P20D" and settings["DEADLINES"]["public_notice"] == "P5D"


def test_one_case_whose_timer_step_fails_holds_back_no_other(fast_api, fast_services, monkeypatch) -> None:
    """Two cases due at once; the first one's step fails. A refusal (a service error) holds that case as an incident,
    out of the next polls; anything unexpected is logged. Either way the other case's timer fires."""
    from service.errors import Invalid
    from service.usecases import timers
    from tests.api.support import TIMER_WAIT, start_accountability

    fast_api.create_cadre("c1")
    fast_api.create_cadre("c2")
    real_step = timers.run_step
    for failure in (Invalid("the step made what cannot be stored"), RuntimeError("a bug")):
        broken, other = start_accountability(fast_api, "c1")["id"], start_accountability(fast_api, "c2")["id"]

        def failing_step(services, session, case, *args, failure=failure, broken=broken):
            if case.id == broken:
                raise failure
            return real_step(services, session, case, *args)
        monkeypatch.setattr(timers, "run_step", failing_step)
        recorded = len(fast_api.history(other))
        time.sleep(TIMER_WAIT)
        assert timers.fire_due_timers(fast_services) == 1
        assert len(fast_api.history(other)) > recorded  # the other case's deadline fired
        held = fast_api.case(broken)
        if isinstance(failure, Invalid):
            assert held["status"] == "incident" and "定时步骤失败" in held["incident"]["message"]
        else:
            assert held["status"] == "open"


def test_a_database_out_of_reach_during_a_timer_step_holds_no_case(fast_api, fast_services, monkeypatch) -> None:
    """The database failing over while a timer step commits is no refusal of the step: the case stays open, out
    of no poll, and its timer fires at the next one (held as an incident, it would wait for a person)."""
    from service.errors import Unavailable
    from service.usecases import timers
    from tests.api.support import TIMER_WAIT, start_accountability

    fast_api.create_cadre("c1")
    case_id = start_accountability(fast_api, "c1")["id"]
    real_step = timers.run_step

    def unreachable(*args):
        raise Unavailable("the database cannot be reached right now")
    monkeypatch.setattr(timers, "run_step", unreachable)
    time.sleep(TIMER_WAIT)
    assert timers.fire_due_timers(fast_services) == 0
    assert fast_api.case(case_id)["status"] == "open"
    monkeypatch.setattr(timers, "run_step", real_step)
    recorded = len(fast_api.history(case_id))
    assert timers.fire_due_timers(fast_services) == 1
    assert len(fast_api.history(case_id)) > recorded


def test_a_case_that_moved_on_before_its_failed_timer_step_is_held_is_left_as_it_is(fast_api, fast_services,
                                                                                   monkeypatch) -> None:
    """A timer step refused, then a person cancels the case before the worker holds it: the hold finds the case
    no longer open with its timer due and leaves it cancelled (not an incident over a finished case)."""
    from service.errors import Invalid
    from service.usecases import timers
    from service.usecases.check import check_cases
    from tests.api.support import TIMER_WAIT, start_accountability

    fast_api.create_cadre("c1")
    case_id = start_accountability(fast_api, "c1")["id"]

    def refused(*args):
        raise Invalid("the step made what cannot be stored")
    real_fire = timers.fire_case_timers

    def cancelled_meanwhile(services, failing_id):
        try:
            return real_fire(services, failing_id)
        finally:
            cases.cancel_case(services, actor("admin"), failing_id, "撤销")
    monkeypatch.setattr(timers, "run_step", refused)
    monkeypatch.setattr(timers, "fire_case_timers", cancelled_meanwhile)
    time.sleep(TIMER_WAIT)
    assert timers.fire_due_timers(fast_services) == 0
    assert fast_api.case(case_id)["status"] == "cancelled"
    assert [entry["action"] for entry in fast_api.history(case_id)][-1] == "cancel"
    assert check_cases(fast_services, 3600) == (1, [])


def test_a_slow_chore_holds_no_timer_past_its_poll(fast_api, fast_services, monkeypatch) -> None:
    """The contract: a due timer fires within WORKER_POLL_SECONDS (0.2 s here) of its due time. The worker's other
    chores can take far longer: the daily early-warning scan took 34 s over 100,000 cadres (bench/README.md), mail
    to a slow server its timeout. Here a daily scan that does not end until the test lets it: a timer falling due
    while it runs fires all the same (15 s catches a timer held by the scan, held here until the test ends, and no
    slow machine)."""
    from service import worker
    from tests.api.support import start_accountability

    released, scanning = threading.Event(), threading.Event()

    def slow_scan(_services) -> None:
        scanning.set()
        released.wait(60)

    monkeypatch.setattr(worker, "DAILY_SCANS", (("slow scan", slow_scan),))
    fast_api.create_cadre("c1")
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(fast_services, stop))
    thread.start()
    try:
        assert scanning.wait(30)
        case = start_accountability(fast_api, "c1")
        due = datetime.fromisoformat(case["next_timer_due"])
        fired = None
        while fired is None and datetime.now(UTC) < due + timedelta(seconds=15):
            time.sleep(0.1)
            fired = next((e for e in fast_api.history(case["id"]) if e["actor"] == "system"), None)
        assert fired is not None, "the timer waited for the scan"
        assert datetime.fromisoformat(fired["at"]) - due < timedelta(seconds=15)
    finally:
        released.set()
        stop.set()
        thread.join(60)
    assert not thread.is_alive()


def test_a_chores_round_that_fails_is_logged_and_the_next_one_runs(fast_services, monkeypatch, caplog) -> None:
    """The chores run in a thread beside the timers: a round failing outside its stages must not end that thread
    for good (bulk starts, scans and mail would stop while timers went on, unseen)."""
    from service import worker

    rounds: list[int] = []
    went_on = threading.Event()

    def flaky_round(self) -> int:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("the county's day cannot be read")
        went_on.set()
        return 0

    monkeypatch.setattr(worker.Chores, "run", flaky_round)
    stop = threading.Event()
    thread = threading.Thread(target=worker.Chores(fast_services).loop, args=(stop, 0.05))
    thread.start()
    try:
        assert went_on.wait(30)
    finally:
        stop.set()
        thread.join(30)
    assert "worker chores failed" in caplog.text
