"""Every `cadreflow` command an operator runs, each as a process of its own on one demo database, as on a server.

Tests that call a command inside the test process share that process's caches (parsed process versions, the
roles): a command that only works with them warm passes there and fails for the operator, as `resync-timers` once
did on its first run against `make run`'s database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service import create_app
from service.errors import ServiceError
from service.usecases import logins
from tests.conftest import copy_database, make_settings
from tests.e2e.support import CLI, server_env

# (arguments, what its summary says), in an order an operator might run them; {tmp} is the test's folder.
COMMANDS = [
    (["check"], "0 fault(s)"),
    (["anchor", "--out", "{tmp}/heads.json"], "anchored"),
    (["check", "--anchor", "{tmp}/heads.json"], "0 fault(s)"),
    (["rotation-scan"], "rotation review(s) opened"),
    (["early-warning-scan"], "cadre(s) scanned"),
    (["integrity-reports", "--year", "2026"], "述职述廉 case(s) opened for 2026"),
    (["bulk-start", "annual_assessment", "--data", '{"year": 2026}', "--dedupe", "field:year"], "done:"),
    (["resync-timers"], "due time(s) set"),
    (["mail-outbox"], "failed 0"),
    (["worker", "--once"], "timers fired"),
    (["check"], "0 fault(s)"),
]


def test_every_operators_command_runs_in_a_process_of_its_own(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    for setup in (["init-db"], ["demo"]):
        subprocess.run([*CLI, *setup], env=env, check=True, capture_output=True, timeout=300)
    for arguments, said in COMMANDS:
        command = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
        done = subprocess.run([*CLI, *command], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert said in done.stdout + done.stderr, (command, done.stdout[-2000:], done.stderr[-2000:])


def test_the_console_script_and_flask_app_service_are_the_same_commands(role_users_template: Path,
                                                                        tmp_path: Path) -> None:
    """The contract's two spellings: the installed `cadreflow` script, and `flask --app service` (a Flask CLI group):
    each creates a user, then updates its roles and password, and the account logs in as the last one left it."""
    copy_database(role_users_template, tmp_path)
    env = server_env(tmp_path)
    scripts = Path(sys.executable).parent
    spellings = {"cadreflow": [str(scripts / "cadreflow")], "flask": [str(scripts / "flask"), "--app", "service"]}
    for name, command in spellings.items():
        for roles, password in ((["audit"], "first-pass-1"), (["audit", "org_head"], "second-pass-2")):
            done = subprocess.run([*command, "create-user", f"via_{name}", "--password", password,
                                   *(arg for role in roles for arg in ("--role", role))],
                                  env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (name, done.stdout, done.stderr)
            assert f"user via_{name} roles {', '.join(roles)}" in done.stdout, (name, done.stdout)
    app = create_app(make_settings(tmp_path))
    try:
        services = app.extensions["cadreflow"]
        for name in spellings:
            issued = logins.issue_token(services, f"via_{name}", "second-pass-2")
            assert issued["user"] == {"username": f"via_{name}", "roles": ["audit", "org_head"]}
            with pytest.raises(ServiceError):
                logins.issue_token(services, f"via_{name}", "first-pass-1")
    finally:
        app.extensions["cadreflow"].db.dispose()
