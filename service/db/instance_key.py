"""The instance's own session-signing key, generated once and kept beside its database.

Used when SECRET_KEY is left empty. SQLite: a file `<database file>.secret_key` (mode 0600) next to
the database, put in place by hard-linking a finished temporary file, so two processes starting
together both end up reading the one key that won. PostgreSQL: a row of `instance_secrets`, inserted
with ON CONFLICT DO NOTHING and read back, so every web process on every machine signs alike.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url

from .models import InstanceSecret
from .uow import Database

KEY_NAME = "secret_key"
FILE_SUFFIX = ".secret_key"


def instance_key(db: Database) -> str:
    """The instance's signing key, created on first use."""
    if not db.is_sqlite:
        return _row_key(db)
    path = key_file(db.url)
    return _file_key(path) if path is not None else _new_key()  # in-memory SQLite: this process only


def key_file(url: str) -> Path | None:
    """Where a SQLite database keeps its key (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    path = Path(database)
    return path.with_name(path.name + FILE_SUFFIX)


def _new_key() -> str:
    return secrets.token_urlsafe(48)


def _file_key(path: Path) -> str:
    if not path.exists():
        _publish(path, _new_key())
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key; delete it to have a new one made (密钥文件无效)")
    return key


def _publish(path: Path, key: str) -> None:
    """Write the key to a private temporary file, then link it into place unless another process won."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-key-")  # mkstemp makes it 0600
    try:
        with os.fdopen(handle, "w", encoding="ascii") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process published first: everyone uses that one
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _row_key(db: Database) -> str:
    with db.unit_of_work() as session:
        session.execute(insert(InstanceSecret).values(name=KEY_NAME, value=_new_key())
                        .on_conflict_do_nothing(index_elements=["name"]))
        key = session.scalar(select(InstanceSecret.value).where(InstanceSecret.name == KEY_NAME))
        if key is None:  # the row was just inserted or already there: it cannot be missing
            raise RuntimeError("the instance key row is missing")
        return key
