"""Every `cadreflow` command an operator runs, each as a process of its own on one demo database, as on a server.

Tests that call a command inside the test process share that process's caches (parsed process versions, the
roles): a command that only works with them warm passes there and fails for the operator, as `resync-timers` once
did on its first run against `make run`'s database.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

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
