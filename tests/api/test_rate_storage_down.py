"""The per-address counters' store (RATE_LIMIT_STORAGE, Redis) out of reach: the portal's POSTs and the logins
that count through it answer 503 with a Retry-After in the error shape, never a 500 and never a hang, and store
nothing. They fail closed: an attacker who can knock Redis over must not thereby lift the limits, the login
throttle or the proof of work's one use."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.db.models import PublicReport
from tests.api.support import Template, app_from_template, assert_error
from tests.api.test_public_portal import REPORT
from tests.api.test_public_portal_pages import FORM, browser_fields, hidden
from tests.conftest import PASSWORD
from tests.net import free_port  # nothing listens there: every connection is refused

HANG_BOUND = 30  # seconds: far above the store's timeout on a loaded machine, far below "forever"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that takes connections and never answers: a Redis hung or behind a dropped route."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def _app(template: Template, folder: Path, port: int) -> Flask:
    return app_from_template(template, folder, RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{port}/0", PUBLIC_POW_BITS=0)


def _assert_unavailable(response) -> None:
    assert_error(response, 503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0


def _nothing_stored(app: Flask) -> None:
    with app.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        assert session.query(PublicReport).count() == 0


def test_public_posts_are_503_when_the_counter_store_refuses(template, tmp_path):
    app = _app(template, tmp_path / "app", free_port())
    try:
        client = app.test_client()
        _assert_unavailable(client.post("/public/reports", json={**REPORT, "pow_challenge": "x", "pow_nonce": "0"}))
        page = client.post("/report", data={**FORM, **browser_fields(client, "/report")})
        assert page.status_code == 503 and "暂时无法使用" in page.get_data(as_text=True)
        assert page.headers["Cache-Control"] == "no-store"
        _nothing_stored(app)
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_a_silent_counter_store_is_503_within_its_timeout(template, tmp_path, silent_port):
    app = _app(template, tmp_path / "app", silent_port)
    try:
        started = time.monotonic()
        _assert_unavailable(app.test_client().post("/public/reports", json=REPORT))
        assert time.monotonic() - started < HANG_BOUND
        _nothing_stored(app)
    finally:
        app.extensions["cadreflow"].db.dispose()


def test_logins_are_503_when_the_counter_store_is_out_of_reach(template, tmp_path):
    app = _app(template, tmp_path / "app", free_port())
    try:
        client = app.test_client()
        _assert_unavailable(client.post("/api/auth/token", json={"username": "admin", "password": PASSWORD}))
        html = client.get("/login").get_data(as_text=True)
        page = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": hidden(html, "csrf_token")})
        assert page.status_code == 503 and "暂时无法使用" in page.get_data(as_text=True)
    finally:
        app.extensions["cadreflow"].db.dispose()
