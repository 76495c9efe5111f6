"""The PostgreSQL pool checks a connection before use only when it rested: one idle across a server-side
disconnect is replaced, and a busy one costs no extra round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from service.db import uow
from service.db.uow import Database
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
    with pytest.raises(OperationalError):
        _backend_pid(database)
    assert _backend_pid(database) != pid  # the pool threw the dead one away

