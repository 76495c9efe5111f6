"""Shared fixtures: a fresh database per test, the app, an API client that logs in by role."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from service import create_app
from service.cli import init_database
from service.usecases import logins, users
from service.usecases.context import Actor, Services

ROLES = ["org_dept", "org_head", "committee", "discipline", "discipline_head", "audit", "audit_head",
         "designer", "admin"]
PASSWORD = "pw-for-tests"
# A strong random key per session: weak keys are refused at start, and none is published here.
TEST_SECRET_KEY = secrets.token_urlsafe(48)
FAST_DEADLINES = {"public_notice": "PT1S", "inquiry_reply": "PT1S", "rectification": "PT1S",
                  "audit_fieldwork": "PT1S", "preliminary_verification": "PT1S", "investigation": "PT1S",
                  "disclosure": "PT1S", "report_triage": "PT1S", "report_reply": "PT1S"}
SLOW_DEADLINES = {key: "P30D" for key in FAST_DEADLINES}
QUICK_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")  # see _quicken_logins


# Set CADREFLOW_TEST_POSTGRES (e.g. postgresql+psycopg://postgres@127.0.0.1) to run the suite on
# PostgreSQL: each test folder then gets its own database instead of a SQLite file.
TEST_POSTGRES = os.environ.get("CADREFLOW_TEST_POSTGRES", "").rstrip("/")
# Databases carry the pid of the pytest session that made them, so parallel sessions (several
# checkouts, several helpers) never drop each other's databases.
TEST_DB_FAMILY = "cft_"
TEST_DB_PREFIX = f"{TEST_DB_FAMILY}{os.getpid()}_"
# The PostgreSQL databases this session made, in order: each test drops those made while it ran.
_MADE: list[str] = []


def database_url(folder: Path) -> str:
    """The test database of a folder: a SQLite file in it, or a PostgreSQL database named after it."""
    if not TEST_POSTGRES:
        return f"sqlite:///{folder / 'test.sqlite3'}"
    name = _database_name(folder)
    with _postgres_admin() as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')
            _MADE.append(name)
    return f"{TEST_POSTGRES}/{name}"


def copy_database(source: Path, target: Path) -> None:
    """Give `target` a copy of `source`'s database (a file copy, or CREATE DATABASE ... TEMPLATE)."""
    if not TEST_POSTGRES:
        shutil.copyfile(source / "test.sqlite3", target / "test.sqlite3")
        return
    with _postgres_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{_database_name(target)}"')
        admin.execute(f'CREATE DATABASE "{_database_name(target)}" TEMPLATE "{_database_name(source)}"')
    _MADE.append(_database_name(target))


def _database_name(folder: Path) -> str:
    return TEST_DB_PREFIX + hashlib.sha256(str(folder).encode()).hexdigest()[:24]


def _postgres_admin() -> Any:
    import psycopg

    return psycopg.connect(TEST_POSTGRES.replace("+psycopg", "") + "/postgres", autocommit=True)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """On PostgreSQL, drop this session's databases when it ends (and those of sessions that died)."""
    if TEST_POSTGRES:
        _drop_databases(lambda name: not _session_alive(name))
    yield
    if TEST_POSTGRES:
        _drop_databases(lambda name: name.startswith(TEST_DB_PREFIX))


@pytest.fixture(autouse=True)
def _drop_the_tests_databases() -> Iterator[None]:
    """On PostgreSQL, drop the databases a test made once it ends (its fixtures' engines disposed by then).
    A drop takes about 0.1 s and drops queue on the server: left to the session's end, a worker's thousand
    drops held every worker of the run for minutes. Wider-scoped fixtures are set up before this one, so
    the templates they make are not the test's to drop."""
    first = len(_MADE)
    yield
    if TEST_POSTGRES and len(_MADE) > first:
        made = set(_MADE[first:])
        del _MADE[first:]
        _drop_databases(made.__contains__)


def _drop_databases(wanted: Any) -> None:
    with _postgres_admin() as admin:
        names = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                              (TEST_DB_FAMILY + "%",)).fetchall()
        for (name,) in names:
            if wanted(name):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _session_alive(name: str) -> bool:
    """Whether the pytest session whose pid a database name carries still runs."""
    pid = name[len(TEST_DB_FAMILY):].split("_", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {"DATABASE_URL": database_url(tmp_path), "SECRET_KEY": TEST_SECRET_KEY,
            "DEADLINES": SLOW_DEADLINES, "WORKER_POLL_SECONDS": 0.2,
            "ATTACHMENT_STORE": str(tmp_path / "attachments"),  # on PostgreSQL too: never the repository's instance/
            # On SQLite as shipped (it checks for changes before each use, no thread). Off in PostgreSQL's
            # in-process apps, most never disposed (a listening connection each); on there in
            # tests/service/test_credential_cache.py and in the load test's web processes.
            "CREDENTIAL_CACHE_SECONDS": 0 if TEST_POSTGRES else 30,
            **overrides}


def seal_database(folder: Path) -> None:
    """Make a folder's database whole for `copy_database`: fold a SQLite file's write-ahead log into it."""
    database = folder / "test.sqlite3"
    if database.exists():
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
        connection.close()


def seed_database(folder: Path, people: dict[str, list[str]], tokens: bool = False) -> dict[str, str]:
    """Build `folder`'s database once, to be copied for each test: the schema, the shipped processes and each
    person (name → roles) with PASSWORD, sealed for copying; each person's API token when `tokens`."""
    services: Services = create_app(make_settings(folder)).extensions["cadreflow"]
    try:
        init_database(services)
        with _quick_logins():
            for name, roles in people.items():
                users.create_user(services, name, PASSWORD, roles)
        issued = {name: logins.issue_token(services, name, PASSWORD)["token"] for name in people} if tokens else {}
    finally:
        services.db.dispose()
    seal_database(folder)
    return issued


@contextmanager
def _quick_logins() -> Iterator[None]:
    """Store a one-round PBKDF2 hash of PASSWORD in place of the shipped scrypt one for the seeded users. The suite
    logs in thousands of times, at 0.1-0.2 s a scrypt check on these machines; the login code is the same (werkzeug
    reads the method from the hash), and accounts the tests make through the service still get the shipped hash.
    Stored by the service itself, so the account log vouches for it (a hash written with SQL is a fault of `check`)."""
    real = users.generate_password_hash
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "generate_password_hash", lambda password: QUICK_HASH if password == PASSWORD
                      else real(password))
        yield


@pytest.fixture(scope="session")
def role_users_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database made once per session (schema, shipped processes, one user per role), copied for each test:
    deploying every process and hashing nine passwords cost seconds, which every test paid before."""
    folder = tmp_path_factory.mktemp("role_users")
    seed_database(folder, {role: [role] for role in ROLES})
    return folder


@pytest.fixture
def app(role_users_template: Path, tmp_path: Path) -> Iterator[Flask]:
    """An app on its own copy of a database with the shipped processes deployed and one user per role."""
    copy_database(role_users_template, tmp_path)
    app = create_app(make_settings(tmp_path))
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def services(app: Flask) -> Services:
    return app.extensions["cadreflow"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def actor(role: str) -> Actor:
    """The demo user of a role, as an actor for calling use cases directly."""
    return Actor(role, frozenset({role}))


class Api:
    """A JSON API client that logs in as a role's user and remembers its token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self.tokens:
            response = self.client.post("/api/auth/token", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.json
            self.tokens[username] = response.json["token"]
        return self.tokens[username]

    def call(self, method: str, url: str, as_: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.token(as_)}"
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url: str, as_: str = "admin", **kwargs: Any) -> Any:
        return self.call("GET", url, as_, **kwargs)

    def post(self, url: str, as_: str = "admin", **kwargs: Any) -> Any:
        return self.call("POST", url, as_, **kwargs)

    def patch(self, url: str, as_: str = "admin", **kwargs: Any) -> Any:
        return self.call("PATCH", url, as_, **kwargs)

    def put(self, url: str, as_: str = "admin", **kwargs: Any) -> Any:
        return self.call("PUT", url, as_, **kwargs)

    # Conveniences for driving cases.

    def create_cadre(self, cadre_id: str = "c1", post_level: str = "leading", **fields: Any) -> dict:
        body = {"id": cadre_id, "name": "张三", "unit": "县发改局", "post": "副局长", "post_level": post_level,
                "post_started_on": "2015-03-01", **fields}
        response = self.post("/api/cadres", as_="org_dept", json=body)
        assert response.status_code == 201, response.json
        return response.json

    def start(self, process: str, cadre_id: str = "c1", as_: str = "admin", **data: Any) -> dict:
        response = self.post("/api/cases", as_=as_, json={"process": process, "cadre_id": cadre_id, "data": data})
        assert response.status_code == 201, response.json
        return response.json

    def open_task(self, case_id: int, element_id: str) -> dict:
        case = self.get(f"/api/cases/{case_id}").json
        found = [t for t in case["open_tasks"] if t["element_id"] == element_id]
        assert found, f"{element_id} not open; open: {[t['element_id'] for t in case['open_tasks']]}"
        return found[0]

    def complete(self, case_id: int, element_id: str, as_: str | None = None, **data: Any) -> dict:
        task = self.open_task(case_id, element_id)
        response = self.post(f"/api/tasks/{task['id']}/complete", as_=as_ or task["role"], json={"data": data})
        assert response.status_code == 200, response.json
        return response.json


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group tests for pytest-xdist (`make test` runs `--dist loadgroup`): a test file stays on one worker, so
    its module fixtures start once; the browser journeys all share one worker, in file order, because they
    share one `cadreflow serve` per worker and some count what earlier journeys left on it."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        group = "ui" if module.startswith("tests/ui/") else module
        item.add_marker(pytest.mark.xdist_group(name=group))
