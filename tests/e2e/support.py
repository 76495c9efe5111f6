"""A real `cadreflow serve` process for end-to-end tests, and a small JSON client over urllib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD, copy_database, database_url
from tests.net import free_port

CLI = [sys.executable, "-c", "from service.cli import main; main()"]


class Http:
    """A tiny JSON client over urllib: what any outside client would do."""

    def __init__(self, base: str, process: subprocess.Popen | None = None, env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.base = base
        self.process = process
        self.log = log  # what the server process printed
        self.env = env or {}
        self.tokens: dict[str, str] = {}

    def request(self, method: str, path: str, body: Any = None, as_: str | None = None, raw: bytes | None = None,
                content_type: str = "application/json", timeout: float = 30) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if as_:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def login(self, username: str, password: str = PASSWORD) -> None:
        status, body = self.request("POST", "/api/auth/token", {"username": username, "password": password})
        assert status == 200, body
        self.tokens[username] = body["token"]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Run a `cadreflow` command against the server's database."""
        return subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, timeout=300)


def server_env(tmp_path: Path, **settings: Any) -> dict[str, str]:
    """The environment of a server on tmp_path's test database (a SQLite file, or PostgreSQL in the suite's
    PostgreSQL pass), with CADREFLOW_* settings."""
    env = {**os.environ, "CADREFLOW_DATABASE_URL": database_url(tmp_path), "CADREFLOW_WORKER_POLL_SECONDS": "0.2"}
    env.update({f"CADREFLOW_{key}": value if isinstance(value, str) else json.dumps(value)
                for key, value in settings.items()})
    return env


@contextmanager
def running_server(role_users_template: Path, tmp_path: Path, **settings: Any) -> Iterator[Http]:
    """`cadreflow serve` until the block ends, on a copy of the suite's template database (schema, shipped
    processes, one user per role named after it). tests/e2e/test_commands.py runs init-db and create-user
    themselves; `prepare_database` runs them for servers with other users."""
    env = server_env(tmp_path, **settings)
    copy_database(role_users_template, tmp_path)
    with serving(tmp_path, env, 1) as (http,):
        yield http


def prepare_database(env: dict[str, str], users: dict[str, str]) -> None:
    """init-db, then each user (name → role) with PASSWORD."""
    subprocess.run([*CLI, "init-db"], env=env, check=True, capture_output=True)
    for name, role in users.items():
        subprocess.run([*CLI, "create-user", name, "--password", PASSWORD, "--role", role],
                       env=env, check=True, capture_output=True)


@contextmanager
def serving(tmp_path: Path, env: dict[str, str], count: int) -> Iterator[list[Http]]:
    """`count` `cadreflow serve` processes on the database of `env`, each on its own port, until the block
    ends (several processes on one database and one Redis: what a deployment behind a balancer runs)."""
    processes: list[subprocess.Popen] = []
    servers: list[Http] = []
    try:
        for index in range(count):
            port, log_path = free_port(), tmp_path / f"serve-{index}.log"
            with log_path.open("wb") as log:
                processes.append(subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT))
            servers.append(Http(f"http://127.0.0.1:{port}", processes[-1], env, log_path))
            _wait_until_up(servers[-1], processes[-1], log_path)
        yield servers
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_up(http: Http, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            http.request("GET", "/api/processes")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")
