"""The PostgreSQL pool checks a connection before use only when it rested: one idle across a server-side
disconnect is replaced, and a busy one costs no extra round trip. A database out of reach (down, restarting,
a connection killed under a request) is `Unavailable`, a 503 to retry, never a 500."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from service.db import uow
from service.db.uow import Database
from service.errors import Unavailable
from tests.conftest import TEST_POSTGRES, _postgres_admin, database_url

pytestmark = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only (set CADREFLOW_TEST_POSTGRES)")


def _backend_pid(database: Database) -> int:
    with database.unit_of_work(write=False) as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")))


def _terminate(pid: int) -> None:
    with _postgres_admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def database(tmp_path):
    database = Database(database_url(tmp_path))
    yield database
    database.dispose()


def test_a_connection_killed_while_idle_is_replaced_before_use(database, monkeypatch):
    pid = _backend_pid(database)
    _terminate(pid)
    monkeypatch.setattr(uow, "IDLE_BEFORE_PING", 0.0)  # it rested long enough to be checked
    assert _backend_pid(database) != pid


def test_without_the_check_the_dead_connection_would_fail_the_request(database, monkeypatch):
    """A connection that came back a moment ago is trusted without a round trip, so a kill in between shows."""
    pid = _backend_pid(database)
    _terminate(pid)
    monkeypatch.setattr(uow, "IDLE_BEFORE_PING", 3600.0)
    with pytest.raises(Unavailable):  # retry in a moment: the database is there, this connection was not
        _backend_pid(database)
    assert _backend_pid(database) != pid  # the pool threw the dead one away


def test_a_server_nobody_listens_at_is_unavailable_and_a_bad_statement_is_not(database):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = Database(f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing")
    try:
        with pytest.raises(Unavailable), gone.unit_of_work() as session:
            session.execute(text("SELECT 1"))
        with pytest.raises(Unavailable):
            gone.read_rows(text("SELECT 1"), {})
    finally:
        gone.dispose()
    with pytest.raises(ProgrammingError), database.unit_of_work(write=False) as session:
        session.execute(text("SELECT no_such_column FROM cases"))


def test_a_request_whose_connection_was_killed_is_a_503_and_the_next_one_is_served(api, monkeypatch):
    """Audit finding: while PostgreSQL restarted, requests answered 500. The one that drew a dead connection is a
    503 with Retry-After, in the API's error shape; the pool replaces the connection and the next request works."""
    monkeypatch.setattr(uow, "IDLE_BEFORE_PING", 3600.0)
    assert api.get("/api/cases", as_="discipline").status_code == 200
    database = api.client.application.extensions["cadreflow"].db
    with _postgres_admin() as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                      "AND pid <> pg_backend_pid() AND application_name <> %s",
                      (database.write_engine.url.database, uow.LISTENER_NAME))
    refused = api.get("/api/cases", as_="discipline")
    assert refused.status_code == 503 and refused.json["error"]["code"] == "unavailable"
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.get("/api/cases", as_="discipline").status_code == 200

