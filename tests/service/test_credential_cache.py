"""A web process keeps who holds a token between requests, and forgets it whenever a change to logins, users or
roles is made, from whichever process or SQL session it comes: PostgreSQL announces it (NOTIFY), SQLite counts it
(triggers and `PRAGMA data_version`). On PostgreSQL nothing is kept while the listener is down. Two apps on one
database stand for two web processes."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import update

from service import create_app
from service.db import credentials
from service.db.credentials import LISTENER_NAME, CredentialCache, NotifiedCache, PolledCache
from service.db.models import ApiToken, utcnow
from service.usecases import logins, users
from service.usecases.context import Actor
from tests.api.support import Template, app_from_template
from tests.conftest import PASSWORD, TEST_POSTGRES, _database_name, _postgres_admin, make_settings
from tests.sql import statements_sent

postgres_only = pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only (set CADREFLOW_TEST_POSTGRES)")
KEEP = {"CREDENTIAL_CACHE_SECONDS": 30}


@pytest.fixture
def processes(template: Template, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    """Two apps with the cache on, on one copy of the template database."""
    first = app_from_template(template, tmp_path / "db", **KEEP)
    second = create_app(make_settings(tmp_path / "db", **KEEP))
    yield first, second
    for app in (first, second):
        app.extensions["cadreflow"].db.dispose()


def me(app: Flask, token: str) -> tuple[int, bool]:
    """The status of GET /api/auth/me with `token`, and whether it asked the database whose token it is."""
    with statements_sent(app.extensions["cadreflow"].db) as sent:
        response = app.test_client().get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, any("api_tokens" in statement.statement for statement in sent)


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kept(app: Flask, token: str) -> bool:
    """Asked until the answer is kept (the listener starts with the first request)."""
    return eventually(lambda: me(app, token) == (200, False))


def token_of(app: Flask, username: str) -> str:
    return logins.issue_token(app.extensions["cadreflow"], username, PASSWORD)["token"]


def sql(tmp_path: Path, statement: str, *parameters: object) -> None:
    """Run a statement (%s placeholders) as an administrator's SQL session would, outside the service."""
    if not TEST_POSTGRES:
        with sqlite3.connect(tmp_path / "db" / "test.sqlite3") as connection:
            connection.execute(statement.replace("%s", "?"), parameters)
        connection.close()
        return
    import psycopg

    with psycopg.connect(f"{TEST_POSTGRES.replace('+psycopg', '')}/{_database_name(tmp_path / 'db')}",
                         autocommit=True) as connection:
        connection.execute(statement, parameters)


def test_a_holder_is_asked_once_then_kept(processes):
    _, second = processes
    token = token_of(second, "org_dept")
    assert me(second, token) == (200, True)
    assert kept(second, token)
    assert [me(second, token) for _ in range(5)] == [(200, False)] * 5


def test_a_logout_in_one_process_ends_the_token_in_the_other(processes):
    first, second = processes
    token = token_of(first, "org_dept")
    assert kept(second, token)
    response = first.test_client().delete("/api/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    assert eventually(lambda: me(second, token)[0] == 401)
    assert me(second, token) == (401, True)  # a refused token is asked again, never kept


def test_the_process_that_logs_out_forgets_at_its_commit(processes):
    first, _ = processes
    token = token_of(first, "org_dept")
    assert kept(first, token)
    first.test_client().delete("/api/auth/token", headers={"Authorization": f"Bearer {token}"})
    assert me(first, token) == (401, True)  # at once, not when the notification arrives


def test_a_deactivation_and_a_role_change_in_another_process_end_the_tokens(processes):
    first, second = processes
    services = first.extensions["cadreflow"]
    admin = Actor("admin", frozenset({"admin"}))
    token, other = token_of(first, "org_dept"), token_of(first, "audit")
    assert kept(second, token) and kept(second, other)
    users.update_user(services, admin, "org_dept", active=False)
    users.update_user(services, admin, "audit", roles=["audit", "audit_head"])
    assert eventually(lambda: me(second, token)[0] == 401 and me(second, other)[0] == 401)


def test_changes_made_in_sql_reach_every_process(processes, tmp_path):
    first, second = processes
    token = token_of(first, "committee")
    assert kept(second, token)
    sql(tmp_path, "INSERT INTO user_roles (user_id, role) SELECT id, 'discipline' FROM users WHERE username = %s",
        "committee")
    assert eventually(lambda: second.test_client().get("/api/auth/me", headers={
        "Authorization": f"Bearer {token}"}).json["roles"] == ["committee", "discipline"])
    assert kept(second, token)
    sql(tmp_path, "UPDATE users SET active = %s WHERE username = %s", False, "committee")
    assert eventually(lambda: me(second, token)[0] == 401)


def test_a_kept_answer_ends_with_its_token(processes):
    first, second = processes
    token = token_of(first, "org_head")
    services = first.extensions["cadreflow"]
    with services.db.unit_of_work() as session:
        session.execute(update(ApiToken).where(ApiToken.token_hash == logins.secret_hash(services, token))
                        .values(expires_at=utcnow() + timedelta(seconds=1)))
    assert kept(second, token)
    time.sleep(1.2)
    assert me(second, token) == (401, True)


@postgres_only
def test_nothing_is_kept_while_not_listening(processes, tmp_path, monkeypatch):
    first, second = processes
    cache = second.extensions["cadreflow"].db.credentials
    token, later = token_of(first, "discipline"), token_of(first, "discipline_head")
    assert kept(second, token)
    monkeypatch.setattr(credentials, "RECONNECT_SECONDS", 30.0)  # stays down for the rest of the test
    with _postgres_admin() as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                      "AND datname = %s", (LISTENER_NAME, _database_name(tmp_path / "db")))
    assert eventually(lambda: cache.generation() is None)
    assert [me(second, later) for _ in range(3)] == [(200, True)] * 3  # asked each time, nothing kept
    # A change nobody hears: the answer kept before the listener died is gone with it.
    sql(tmp_path, "DELETE FROM api_tokens WHERE token_hash = %s",
        logins.secret_hash(first.extensions["cadreflow"], token))
    assert me(second, token) == (401, True)


def test_an_answer_read_before_a_change_is_not_kept(processes):
    _, second = processes
    cache = second.extensions["cadreflow"].db.credentials
    assert isinstance(cache, CredentialCache)
    assert eventually(lambda: cache.generation() is not None)  # PostgreSQL: once listening
    before = cache.generation()
    cache.forget_all()  # a change heard while the answer was being read
    cache.put("key", "stale", before, 60)
    assert cache.get("key") is None
    cache.put("key", "fresh", cache.generation(), 60)
    assert cache.get("key") == "fresh"
    cache.put("short", "brief", cache.generation(), 0.05)  # its token expires sooner than the setting
    time.sleep(0.1)
    assert cache.get("short") is None


def test_a_forked_process_trusts_nothing_it_inherited(processes):
    """gunicorn --preload forks an app built in its master: the child has the memory, not the listener."""
    _, second = processes
    token = token_of(second, "org_dept")
    assert kept(second, token)
    cache = second.extensions["cadreflow"].db.credentials
    key = ("api_tokens", logins.secret_hash(second.extensions["cadreflow"], token))
    assert cache.get(key) is not None
    child = os.fork()
    if child == 0:  # exits at once, touching no connection it inherited
        os._exit(0 if cache.get(key) is None else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get(key) is not None  # the parent still listens and keeps it


def test_each_database_has_its_way_of_seeing_changes(processes):
    cache = processes[0].extensions["cadreflow"].db.credentials
    assert isinstance(cache, NotifiedCache if TEST_POSTGRES else PolledCache)
