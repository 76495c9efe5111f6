"""`cadreflow` commands refuse what they cannot do with a message and an exit code, never a traceback, and never
do something other than what was asked (a scan of year 9999, a port taken modulo 65536, a server without threads)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import waitress

from service import worker
from tests.e2e.support import CLI, server_env
from tests.engine.helpers import BPMN_DIR


def refused(result, exit_code: int) -> str:
    """A refusal said in a message, not a traceback: the command exits `exit_code`; its output."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return result.output


def case_total(api) -> int:
    return api.get("/api/cases").json["total"]


@pytest.mark.parametrize("command", ["rotation-scan", "early-warning-scan"])
@pytest.mark.parametrize("day", ["0001-01-01", "1949-09-30", "3000-01-01", "9999-12-31"])
def test_a_scan_day_lies_where_the_api_lets_it(app, api, cadre, command, day):
    """The bounds of the API's `on` (1949-10-01 … 2999-12-31): outside them a scan opens nothing and says why."""
    before = case_total(api)
    output = refused(app.test_cli_runner().invoke(args=[command, "--on", day]), 2)
    assert "--on" in output and "1949-10-01" in output and "2999-12-31" in output
    assert case_total(api) == before


@pytest.mark.parametrize("grace", ["nan", "inf", "-inf", "1e308", "-5"])
def test_check_grace_is_a_finite_number_of_seconds(app, grace):
    output = refused(app.test_cli_runner().invoke(args=["check", "--grace", grace]), 2)
    assert "--grace" in output and "case(s) checked" not in output


def test_check_grace_of_zero_is_allowed(app):
    assert app.test_cli_runner().invoke(args=["check", "--grace", "0"]).exit_code == 0


@pytest.mark.parametrize(("name", "content", "said"), [
    ("latin1.bpmn", "<definitions name='é'/>".encode("latin-1"), "UTF-8"),
    ("doctype.bpmn", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><definitions/>', "DOCTYPE"),
    ("empty.bpmn", b"", "XML syntax error"),
])
def test_deploy_of_an_unreadable_file_says_why(app, tmp_path: Path, name, content, said):
    path = tmp_path / name
    path.write_bytes(content)
    output = refused(app.test_cli_runner().invoke(args=["deploy", str(path)]), 1)
    assert said in output and f"{name}: the file cannot be read" in output


def test_deploy_names_the_unreadable_file_among_many_and_deploys_none(app, api, tmp_path: Path):
    """Of a folder of good files and one that cannot be read, the one is named, and no process is deployed."""
    good = BPMN_DIR / "admonishment.bpmn"
    (tmp_path / "a_good.bpmn").write_bytes(good.read_bytes())
    (tmp_path / "b_broken.dmn").write_bytes("<definitions name='é'/>".encode("latin-1"))
    versions = {p["key"]: p["version"] for p in api.get("/api/processes", as_="admin").json}
    output = refused(app.test_cli_runner().invoke(args=["deploy", str(tmp_path)]), 1)
    assert "b_broken.dmn: the file cannot be read" in output and "UTF-8" in output
    assert {p["key"]: p["version"] for p in api.get("/api/processes", as_="admin").json} == versions


@pytest.mark.parametrize("paths", [["/dev/null"], ["notes.txt"], ["folder"], ["no_process.bpmn"]])
def test_deploy_of_nothing_is_refused(app, tmp_path: Path, paths):
    """No .bpmn among the paths, or none with an executable process: exit 1, not a silent success."""
    (tmp_path / "notes.txt").write_text("a process, one day")
    (tmp_path / "folder").mkdir()
    (tmp_path / "no_process.bpmn").write_text(
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"/>')
    arguments = [path if path.startswith("/") else str(tmp_path / path) for path in paths]
    output = refused(app.test_cli_runner().invoke(args=["deploy", *arguments]), 1)
    assert "nothing to deploy" in output


@pytest.fixture
def never_serving(monkeypatch):
    """`serve` under test must refuse before it listens: should it get that far, it fails instead of serving
    forever, and no timer worker starts in the test's process."""
    monkeypatch.setattr(waitress, "create_server", lambda *args, **kwargs: pytest.fail("serve would listen"))
    monkeypatch.setattr(worker, "start_worker_thread", lambda services: None)


@pytest.mark.parametrize("option", [["--port", "74311"], ["--port", "0"], ["--port", "-1"], ["--threads", "0"],
                                    ["--threads", "100000"]])
def test_serve_refuses_a_port_or_thread_count_out_of_range(app, never_serving, option):
    output = refused(app.test_cli_runner().invoke(args=["serve", *option]), 2)
    assert option[0] in output and "serving on" not in output


def test_serve_says_it_cannot_listen_on_a_bad_host(app, monkeypatch):
    monkeypatch.setattr(worker, "start_worker_thread", lambda services: pytest.fail("a timer worker started"))
    output = refused(app.test_cli_runner().invoke(args=["serve", "--host", "999.1.1.1", "--port", "8000"]), 1)
    assert "cannot listen on 999.1.1.1 port 8000" in output and "serving on" not in output


def test_serve_says_it_cannot_listen_on_a_taken_port(tmp_path: Path):
    """In a process of its own: waitress starts its threads before it binds, and a failed bind leaves them."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CLI, "serve", "--port", str(port)], env=server_env(tmp_path), capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in done.stderr and "serving on" not in done.stdout
