"""The instance folder, the SQLite files and the attachment folders are the service's user's alone (reporters'
contacts, password hashes): made owner-only, tightened at start when an earlier start left them readable to all,
and never changed when another user owns them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from service import config
from service.db.uow import Database
from service.filestore import DirectoryStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_once(url: str) -> None:
    database = Database(url)
    with database.unit_of_work() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
    database.dispose()


def test_a_new_sqlite_database_and_its_wal_files_are_owner_only(tmp_path):
    path = tmp_path / "new.sqlite3"
    database = Database(f"sqlite:///{path}")
    with database.unit_of_work() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        files = [path, tmp_path / "new.sqlite3-wal", tmp_path / "new.sqlite3-shm"]
        assert [mode(file) for file in files] == [0o600] * 3  # while the WAL is open
    database.dispose()


def test_readable_sqlite_files_of_an_earlier_start_are_tightened(tmp_path):
    path = tmp_path / "old.sqlite3"
    write_once(f"sqlite:///{path}")
    files = [path, *(tmp_path / f"old.sqlite3{suffix}" for suffix in ("-wal", "-shm", "-journal"))]
    for file in files:
        file.touch()
        file.chmod(0o644)
    Database(f"sqlite:///{path}").dispose()
    assert [mode(file) for file in files] == [0o600] * 4


def test_the_instance_folder_is_owner_only(tmp_path, monkeypatch):
    """With no DATABASE_URL the service makes instance/ beside the project: 0700, and tightens an old 0755 one."""
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    config.load_settings(environ={})
    assert mode(tmp_path / "instance") == 0o700
    (tmp_path / "instance").chmod(0o755)
    settings = config.load_settings(environ={})
    assert mode(tmp_path / "instance") == 0o700 and settings["DATABASE_URL"].endswith("instance/cadreflow.sqlite3")


def test_attachment_folders_are_owner_only(tmp_path):
    root = tmp_path / "deep" / "attachments"
    digest = DirectoryStore(root).put(b"a reporter's letter")
    file = root / digest[:2] / digest
    assert [mode(folder) for folder in (tmp_path / "deep", root, file.parent)] == [0o700] * 3
    assert mode(file) == 0o600
    for folder in (root, file.parent):
        folder.chmod(0o755)
    DirectoryStore(root)  # the next start
    assert mode(root) == 0o700 and mode(file.parent) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_what_another_user_owns_is_left_as_it_is(tmp_path):
    """A folder or database file of another user (a shared mount, an administrator's copy) is not ours to change."""
    path, root = tmp_path / "theirs.sqlite3", tmp_path / "theirs"
    write_once(f"sqlite:///{path}")
    root.mkdir()
    for theirs in (path, root):
        theirs.chmod(0o644 if theirs.is_file() else 0o755)
        os.chown(theirs, 65534, 65534)
    Database(f"sqlite:///{path}").dispose()
    DirectoryStore(root)
    assert (mode(path), mode(root)) == (0o644, 0o755)
