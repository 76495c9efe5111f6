"""A load balancer's checks (`/api/health`, `/api/ready`) and the worker's heartbeat, which readiness and the
inspectors' dashboard show: deadlines move only while some worker polls."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import text, update

from service.db.models import WorkerHeartbeat, utcnow
from service.db.schema import head_revision
from service.usecases import health
from service.worker import run_worker
from tests.web.test_web_shell import csrf_token, login

WARNING_NEVER = "后台处理程序从未在本库运行"
WARNING_LATE = "后台处理程序已有一段时间未运行"


def poll_once(services) -> None:
    run_worker(services, threading.Event(), once=True)


def set_last_poll(services, minutes_ago: float) -> None:
    with services.db.unit_of_work() as session:
        session.execute(update(WorkerHeartbeat).values(polled_at=utcnow() - timedelta(minutes=minutes_ago)))


def test_health_answers_without_a_login_and_sets_no_cookie(client):
    response = client.get("/api/health")
    assert (response.status_code, response.json) == (200, {"status": "ok"})
    assert "Set-Cookie" not in response.headers and response.headers["Cache-Control"] == "no-store"


def test_ready_says_when_a_worker_last_polled(client, services):
    first = client.get("/api/ready")
    assert first.status_code == 200
    assert first.json == {"status": "ready", "checks": {"database": "ok", "executor": "ok"},
                          "worker": {"state": "never", "last_poll": None}}
    poll_once(services)
    polled = client.get("/api/ready").json["worker"]
    assert polled["state"] == "ok" and polled["last_poll"] is not None
    set_last_poll(services, 6)  # past the 5 minutes a busy poll may take (polls every 5 s in the tests)
    assert client.get("/api/ready").json["worker"]["state"] == "late"
    poll_once(services)
    assert client.get("/api/ready").json["worker"]["state"] == "ok"


def test_a_late_worker_is_measured_against_its_poll_interval_when_that_is_longer(services, monkeypatch):
    set_last_poll(services, 0)
    monkeypatch.setitem(services.settings, "WORKER_POLL_SECONDS", 60)  # late after 10 polls: 10 minutes
    assert health.worker_state(services, utcnow() + timedelta(minutes=9))["state"] == "ok"
    assert health.worker_state(services, utcnow() + timedelta(minutes=11))["state"] == "late"


def test_a_database_behind_this_codes_schema_is_not_ready_and_says_no_more(client, services, caplog):
    with services.db.unit_of_work() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0022'"))
    response = client.get("/api/ready")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable" and response.json["checks"]["database"] == "failed"
    assert "0022" not in response.get_data(as_text=True)  # the reason is for the log, not for anyone asking
    assert f"at 0022, this code expects {head_revision()}" in caplog.text
    with services.db.unit_of_work() as session:
        session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()})
    assert client.get("/api/ready").status_code == 200


def test_an_executor_that_cannot_run_a_step_is_not_ready(client, services, monkeypatch):
    def broken(*_args):
        raise OSError("the executor's pipe is closed")
    monkeypatch.setattr(services.runner, "check_rule", broken)
    response = client.get("/api/ready")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "executor": "failed"}


def test_a_burst_of_readiness_checks_runs_the_executor_once_a_second(client, services, monkeypatch):
    """Anyone may ask, so asking must not keep the executors (which every step needs) busy with checks."""
    asked = []
    real = services.runner.check_rule
    monkeypatch.setattr(services.runner, "check_rule", lambda *args: asked.append(args) or real(*args))
    monkeypatch.setattr(health, "clock", lambda: 1000.0)
    assert all(client.get("/api/ready").status_code == 200 for _ in range(20))
    assert len(asked) == 1
    monkeypatch.setattr(health, "clock", lambda: 1000.0 + health.EXECUTOR_CHECK_SECONDS)
    assert client.get("/api/ready").status_code == 200 and len(asked) == 2


def test_the_dashboard_warns_while_no_worker_polls(client, services):
    login(client, "discipline")
    page = client.get("/dashboard").get_data(as_text=True)
    assert WARNING_NEVER in page and WARNING_LATE not in page
    poll_once(services)
    page = client.get("/dashboard").get_data(as_text=True)
    assert WARNING_NEVER not in page and WARNING_LATE not in page
    set_last_poll(services, 30)
    page = client.get("/dashboard").get_data(as_text=True)
    assert WARNING_LATE in page and 'id="worker-state"' in page
    client.post("/lang", data={"lang": "en", "next": "/dashboard", "csrf_token": csrf_token(client, "/dashboard")})
    assert "The worker has not run for a while" in client.get("/dashboard").get_data(as_text=True)
