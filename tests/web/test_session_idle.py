"""A web session ends WEB_SESSION_IDLE_MINUTES after the last request it served (a browser left open on a shared
office computer), within its fixed SESSION_TTL_HOURS; a request moves the deadline on but stores it at most once a
minute; a kept holder (service/db/credentials.py) never outlives the deadline; API tokens keep their fixed lifetime.

The clock is the service's own (`logins.utcnow`, and the monotonic time the credential cache counts in), moved on
by the test: nothing here waits for real time to pass."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.db import credentials
from service.db.models import WebSession
from service.usecases import logins
from tests.api.support import Template, app_from_template
from tests.conftest import PASSWORD
from tests.sql import statements_sent
from tests.web.test_web_shell import login

IDLE_MESSAGE = "您已长时间未操作，会话已结束，请重新登录。"
PLEASE_LOG_IN = "请先登录。"


class Clock:
    """The service's time, moved on by `advance` (the wall clock of logins.py and the cache's monotonic one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.offset = timedelta()
        real_utcnow = logins.utcnow
        monkeypatch.setattr(logins, "utcnow", lambda: real_utcnow() + self.offset)
        monkeypatch.setattr(credentials, "time", SimpleNamespace(
            monotonic=lambda: time.monotonic() + self.offset.total_seconds()))

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def make_app(template: Template, folder: Path, **overrides: object) -> Iterator[Flask]:
    app = app_from_template(template, folder, **{"WEB_SESSION_IDLE_MINUTES": 30, **overrides})
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def app(template: Template, tmp_path: Path) -> Iterator[Flask]:
    """The cache on (SQLite counts changes; PostgreSQL keeps answers once its listener runs)."""
    yield from make_app(template, tmp_path / "app", CREDENTIAL_CACHE_SECONDS=30)


@pytest.fixture
def uncached(template: Template, tmp_path: Path) -> Iterator[Flask]:
    """The cache off: every request asks the database, so only the refresh rule keeps writes rare."""
    yield from make_app(template, tmp_path / "uncached", CREDENTIAL_CACHE_SECONDS=0)


def page(client) -> tuple[int, str]:
    """A page of a logged-in user: its status, and where it redirects to."""
    response = client.get("/account/password")
    return response.status_code, response.headers.get("Location", "")


def flashed(client) -> str:
    return client.get("/login").get_data(as_text=True)


def open_sessions(app: Flask) -> int:
    with app.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        return session.scalar(select(func.count()).select_from(WebSession)) or 0


def refreshes(app: Flask, client, requests: int) -> int:
    """How many of `requests` page requests stored the session's last request (UPDATE web_sessions)."""
    with statements_sent(app.extensions["cadreflow"].db) as sent:
        for _ in range(requests):
            assert page(client)[0] == 200
    return sum(statement.starts("UPDATE web_sessions") for statement in sent)


def test_a_session_left_idle_ends_and_the_login_page_says_why(app, client, clock):
    login(client, "org_dept")
    assert page(client)[0] == 200
    clock.advance(minutes=30, seconds=1)
    status, location = page(client)
    assert status == 302 and location.startswith("/login?next=")
    text = flashed(client)
    assert IDLE_MESSAGE in text and PLEASE_LOG_IN not in text
    assert open_sessions(app) == 0  # ended for good: its row is gone
    assert page(client)[0] == 302 and PLEASE_LOG_IN in flashed(client)  # said once; then an ordinary logout


def test_the_idle_message_is_english_in_english(app, client, clock):
    login(client, "org_dept")
    client.set_cookie("lang", "en")
    clock.advance(minutes=31)
    assert page(client)[0] == 302
    assert "Your session ended after a period of inactivity; please log in again." in flashed(client)


def test_use_slides_the_deadline_past_the_idle_time(app, client, clock):
    login(client, "org_dept")
    for _ in range(4):  # two hours of a request every 29 minutes
        clock.advance(minutes=29)
        assert page(client)[0] == 200


def test_requests_store_the_last_one_at_most_once_a_minute(uncached, clock):
    client = uncached.test_client()
    login(client, "org_dept")
    assert refreshes(uncached, client, 5) == 0  # the login stored it
    clock.advance(seconds=61)
    assert refreshes(uncached, client, 5) == 1
    clock.advance(seconds=30)
    assert refreshes(uncached, client, 5) == 0


def test_a_kept_holder_does_not_outlive_the_idle_deadline(app, client, clock):
    """Once the holder is kept (no lookup any more), time past the deadline still ends the session."""
    login(client, "org_dept")
    db = app.extensions["cadreflow"].db

    def looked_up() -> bool:
        with statements_sent(db) as sent:
            assert page(client)[0] == 200
        return any("web_sessions" in statement.statement for statement in sent)

    deadline = time.monotonic() + 5
    while looked_up():  # on PostgreSQL answers are kept once the listener has started
        assert time.monotonic() < deadline, "the session's holder was never kept"
        time.sleep(0.02)
    clock.advance(minutes=31)
    assert page(client)[0] == 302 and IDLE_MESSAGE in flashed(client)


def test_the_fixed_lifetime_still_holds_for_a_session_in_use(app, client, clock):
    login(client, "org_dept")
    for _ in range(28):  # 11 h 40 min of a request every 25 minutes
        clock.advance(minutes=25)
        assert page(client)[0] == 200
    clock.advance(minutes=25)  # past SESSION_TTL_HOURS (12), though used 25 minutes ago
    assert page(client)[0] == 302
    text = flashed(client)
    assert PLEASE_LOG_IN in text and IDLE_MESSAGE not in text


def test_zero_turns_the_idle_time_off(template, tmp_path, clock):
    for app in make_app(template, tmp_path / "off", WEB_SESSION_IDLE_MINUTES=0):
        client = app.test_client()
        login(client, "org_dept")
        with statements_sent(app.extensions["cadreflow"].db) as sent:
            clock.advance(hours=11)
            assert page(client)[0] == 200
        assert not any(statement.starts("UPDATE web_sessions") for statement in sent)


def test_api_tokens_keep_their_fixed_lifetime(app, client, clock):
    token = client.post("/api/auth/token", json={"username": "org_dept", "password": PASSWORD}).json["token"]
    clock.advance(hours=11)
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
