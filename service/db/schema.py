"""Create or upgrade the schema with Alembic (migrations in service/db/migrations)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class MigrationRefused(Exception):
    """A migration cannot run on the data the database holds; it changed nothing and says what to fix."""


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (head by default); a new database is created from scratch."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@cache
def head_revision() -> str:
    """The newest migration this code carries (read once)."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None, "service/db/migrations has no revision"
    return head


def current_revision(connection: Connection) -> str | None:
    """The migration the database was last brought to (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()
