"""No fixed secret: an instance without SECRET_KEY generates one key, keeps it beside its database, shares it."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from service import create_app
from service.cli import init_database
from service.config import SettingsError
from service.db.instance_key import instance_key, key_file
from service.db.uow import Database
from service.usecases import users
from tests.conftest import PASSWORD, TEST_POSTGRES, database_url, make_settings

ONE_KEY = "from service.db.instance_key import instance_key; from service.db.uow import Database; " \
          "import sys; print(instance_key(Database(sys.argv[1])))"


def test_the_shipped_defaults_have_no_secret_key():
    """config/defaults.toml ships an empty SECRET_KEY, never a placeholder."""
    text = (Path(__file__).resolve().parents[2] / "config" / "defaults.toml").read_text(encoding="utf-8")
    assert re.search(r'^SECRET_KEY = ""$', text, re.M)


def test_two_apps_on_one_database_share_the_generated_key(tmp_path):
    """A session cookie made by one web process is accepted by another process of the same instance."""
    first = create_app(make_settings(tmp_path, SECRET_KEY=""))
    init_database(first.extensions["cadreflow"])
    users.create_user(first.extensions["cadreflow"], "someone", PASSWORD, ["audit"])
    second = create_app(make_settings(tmp_path, SECRET_KEY=""))
    client = first.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": "someone", "password": PASSWORD,
                                       "csrf_token": token}).status_code == 302
    other = second.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    assert other.get("/inbox").status_code == 200
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    for app in (first, second):
        app.extensions["cadreflow"].db.dispose()


@pytest.mark.skipif(bool(TEST_POSTGRES), reason="the key file is SQLite's; PostgreSQL keeps a row (tested below)")
def test_on_sqlite_the_key_is_a_private_file_beside_the_database(tmp_path):
    """`<database>.secret_key`, mode 0600, read back unchanged by the next process."""
    url = database_url(tmp_path)
    database = Database(url)
    key = instance_key(database)
    path = key_file(url)
    assert path == tmp_path / "test.sqlite3.secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == key
    again = Database(url)
    assert instance_key(again) == key
    again.dispose()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".secret-key-")]  # no temporary file left
    database.dispose()


def test_processes_starting_together_agree_on_one_key(tmp_path):
    """Six processes asking for the key of a fresh database at the same moment all get the same one."""
    url = database_url(tmp_path)
    if TEST_POSTGRES:
        schema = Database(url)
        schema.create_schema()
        schema.dispose()
    root = Path(__file__).resolve().parents[2]
    processes = [subprocess.Popen([sys.executable, "-c", ONE_KEY, url], cwd=root, stdout=subprocess.PIPE, text=True)
                 for _ in range(6)]
    keys = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert len(keys) == 1 and len(keys.pop()) >= 32


@pytest.mark.skipif(not TEST_POSTGRES, reason="PostgreSQL only (set CADREFLOW_TEST_POSTGRES)")
def test_on_postgresql_the_key_is_one_row_of_instance_secrets(tmp_path):
    """The key lives in `instance_secrets`; a second Database object reads the same row."""
    from sqlalchemy import text

    database = Database(database_url(tmp_path))
    database.create_schema()
    key = instance_key(database)
    with database.write_engine.connect() as connection:
        rows = connection.execute(text("SELECT name, value FROM instance_secrets")).all()
    assert [tuple(row) for row in rows] == [("secret_key", key)]
    again = Database(database.url)
    assert instance_key(again) == key
    again.dispose()
    database.dispose()


def test_an_in_memory_database_gets_a_key_for_its_process_only():
    """No file to keep it in: a random key, still a strong one."""
    database = Database("sqlite://")
    assert key_file("sqlite://") is None and len(instance_key(database)) >= 32
    database.dispose()


def test_the_cli_refuses_to_start_with_the_old_placeholder(tmp_path):
    """`cadreflow serve` with SECRET_KEY=change-me-in-production exits at once, saying why."""
    env = {**os.environ, "CADREFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
           "CADREFLOW_SECRET_KEY": "change-me-in-production"}
    done = subprocess.run([sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode != 0 and "SECRET_KEY" in done.stderr and "Traceback" not in done.stderr


BROKEN_KEYS = {"too short": lambda path: path.write_text("short"), "binary": lambda path: path.write_bytes(
    bytes(range(256)) * 2), "control characters": lambda path: path.write_text("\x00" * 48),
               "a folder": lambda path: path.mkdir()}


@pytest.mark.parametrize("breaking", BROKEN_KEYS.values(), ids=BROKEN_KEYS.keys())
def test_a_broken_key_file_refuses_the_start_naming_the_file(tmp_path, breaking):
    """Not `serving` and then a 500 on every request: create_app refuses, naming the file and what to do."""
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    breaking(key_file(url))
    with pytest.raises(SettingsError, match=re.escape(str(key_file(url))) + ".*delete it"):
        create_app(make_settings(tmp_path, DATABASE_URL=url, SECRET_KEY=""))


def test_a_present_key_file_is_read_at_start(tmp_path):
    """A good file is the app's key from the start; a set SECRET_KEY still wins over it."""
    url, kept = f"sqlite:///{tmp_path / 'x.sqlite3'}", "k" * 20 + "0123456789abcdefghij\n"
    key_file(url).write_text(kept)
    assert create_app(make_settings(tmp_path, DATABASE_URL=url, SECRET_KEY="")).secret_key == kept.strip()
    assert create_app(make_settings(tmp_path, DATABASE_URL=url)).secret_key != kept.strip()


def test_the_cli_refuses_to_serve_with_a_broken_key_file(tmp_path):
    """`cadreflow serve` on a database whose key file is a folder exits at once, naming it, no traceback."""
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    key_file(url).mkdir()
    env = {**os.environ, "CADREFLOW_DATABASE_URL": url, "CADREFLOW_SECRET_KEY": ""}
    done = subprocess.run([sys.executable, "-c", "from service.cli import main; main()", "serve", "--port", "1"],
                          env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode != 0 and "Traceback" not in done.stderr and "serving" not in done.stdout
    assert f"refusing to start: the instance key file {key_file(url)} cannot be read" in done.stderr


NO_SERVER = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # create_app does not connect


@pytest.mark.parametrize("url, key, warned", [
    (NO_SERVER, "", True),  # the generated key would sit in the database it guards
    (NO_SERVER, "k" * 8 + "0123456789abcdefghijklmnopqrstuvwxyz", False),
    ("sqlite:///{folder}/cadreflow.sqlite3", "", False),  # a private file beside the database, not in it
])
def test_a_process_on_postgresql_without_secret_key_says_so_at_start(tmp_path, caplog, url, key, warned):
    """Every web process (gunicorn's included) warns once at start; the docs' advice alone was easy to miss."""
    with caplog.at_level("WARNING", logger="service"):
        create_app(make_settings(tmp_path, DATABASE_URL=url.format(folder=tmp_path), SECRET_KEY=key))
    said = [record.getMessage() for record in caplog.records if "instance_secrets" in record.getMessage()]
    assert bool(said) is warned
    assert all("SECRET_KEY" in text and "未设置 SECRET_KEY" in text for text in said)


@pytest.mark.skipif(not TEST_POSTGRES, reason="the key is kept in the database only on PostgreSQL")
def test_check_on_postgresql_without_secret_key_warns_without_counting_a_fault(tmp_path):
    app = create_app(make_settings(tmp_path, SECRET_KEY=""))
    init_database(app.extensions["cadreflow"])
    try:
        result = app.test_cli_runner().invoke(args=["check"])
    finally:
        app.extensions["cadreflow"].db.dispose()
    assert result.exit_code == 0, result.output
    assert "0 fault(s)" in result.stdout
    assert result.stderr.startswith("warning: SECRET_KEY is not set") and "instance_secrets" in result.stderr
