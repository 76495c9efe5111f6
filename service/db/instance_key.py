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

from service.config import MIN_SECRET_KEY, SettingsError

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


# Said by every process that starts on such a database, and by `cadreflow check`: a key kept in the database it
# guards lets whoever can read that database forge any login, so a production database needs SECRET_KEY set.
KEY_IN_DATABASE = (
    "SECRET_KEY is not set, so the signing key is kept in the database (table instance_secrets): whoever can read "
    "the database can sign in as anyone. Set SECRET_KEY (at least 32 random characters) in the service's "
    "environment (未设置 SECRET_KEY，签名密钥保存在数据库中：能读取数据库的人即可冒充任何用户登录。"
    "请在服务的运行环境中设置 SECRET_KEY)")


def keeps_key_in_database(url: str) -> bool:
    """True when the generated key would live in the database itself (PostgreSQL), not in a private file."""
    return make_url(url).get_backend_name() != "sqlite"


def _new_key() -> str:
    return secrets.token_urlsafe(48)


def existing_key(url: str) -> str | None:
    """The key a SQLite database's file already holds, read at start so that a broken file stops the service
    there (BrokenKeyFile) instead of failing every request; None when there is no file yet (made at first use)
    or the key lives elsewhere (PostgreSQL, in memory)."""
    path = key_file(url) if make_url(url).get_backend_name() == "sqlite" else None
    return _read_key(path) if path is not None and os.path.lexists(path) else None


class BrokenKeyFile(SettingsError):
    """The instance's key file holds no usable key: the service refuses to start."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the instance key file {path} {problem}: delete it and a new key is made at the next start (everybody "
            f"is logged out and signs in again) (实例密钥文件 {path} 无效：删除后下次启动会生成新密钥，"
            "所有用户需重新登录)")


def _file_key(path: Path) -> str:
    if not path.exists():
        _publish(path, _new_key())
    return _read_key(path)


def _read_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise BrokenKeyFile(path, "is not text") from None
    except OSError as error:  # a folder in its place, a file this user may not read
        raise BrokenKeyFile(path, f"cannot be read ({error.strerror})") from None
    if len(key) < MIN_SECRET_KEY or not key.isprintable():
        raise BrokenKeyFile(path, f"holds no key of at least {MIN_SECRET_KEY} printable characters")
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
