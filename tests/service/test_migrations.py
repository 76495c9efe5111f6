"""Alembic migrations: an old database with data upgrades to head, and head is exactly the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from service import create_app
from service.db.models import Base
from service.db.schema import upgrade
from service.usecases import cadres, cases, tasks
from tests.conftest import actor, database_url, make_settings

BPMN = Path(__file__).resolve().parents[2] / "bpmn"


def _first_migration_with_data(url: str) -> None:
    """What a database made by migration 0001 looked like, with a deployed version and an open case."""
    engine = create_engine(url)
    upgrade(engine, "0001")
    bpmn = (BPMN / "admonishment.bpmn").read_text()
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO process_versions (id, process_key, version, name, bpmn_xml, dmn_files, content_hash, "
            "deployed_by, deployed_at) VALUES (1, 'admonishment', 1, '诫勉谈话', :xml, '{}', 'h1', 'old', "
            "CURRENT_TIMESTAMP)"), {"xml": bpmn})
        connection.execute(text(
            "INSERT INTO cadres (id, name, unit, post, post_level, post_started_on) "
            "VALUES ('old1', '旧数据', '县局', '科长', 'middle', '2019-05-01')"))
    engine.dispose()


def test_a_database_made_by_the_first_migration_with_data_upgrades_to_head(tmp_path: Path) -> None:
    """Rows written under migration 0001 survive the upgrade, and the app then works on them."""
    url = database_url(tmp_path)
    _first_migration_with_data(url)
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    services.db.create_schema()  # what `cadreflow init-db` does: upgrade to head

    cadre = cadres.get_cadre(services, actor("admin"), "old1")
    assert (cadre["name"], cadre["post"], cadre["learning"]) == ("旧数据", "科长", [])
    case = cases.start_case(services, actor("discipline"), "admonishment", "old1",
                            {"trigger": "complaint", "summary": "升级后新建"})
    assert (case["process_version"], case["incident"]) == (1, None)
    after = tasks.complete_task(services, actor("discipline"), case["open_tasks"][0]["id"],
                                {"form": "dismiss", "reason": "不予诫勉"})
    assert after["outcome"] == "dismissed"
    with services.db.write_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM learning_records")).scalar() == 0
    services.db.dispose()


def test_head_is_exactly_the_models(tmp_path: Path) -> None:
    """Autogenerate finds nothing to add: every model change came with its migration."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()
