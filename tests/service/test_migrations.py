"""Alembic migrations: an old database with data upgrades to head, and head is exactly the models."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import DateTime, MetaData, Table, column, create_engine, inspect, select, table, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from service import create_app
from service.cli import init_database
from service.db.chain import password_digest
from service.db.models import Base
from service.db.schema import MigrationRefused, alembic_config, current_revision, upgrade
from service.usecases import cadres, cases, personal_reports, tasks, users
from service.usecases.account_log import check_account_log
from service.usecases.check import check_cases
from service.usecases.report_log import check_reports
from tests.conftest import PASSWORD, actor, database_url, make_settings

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
    with engine.connect() as connection, warnings.catch_warnings():
        if engine.dialect.name == "sqlite":  # SQLite's reflection cannot see an index on an expression (lower(...)):
            # both libraries say they skip it; 0026's test below checks that index on both backends.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


# Tables a 0003 database with cases needs, parents first; ids that come from sequences on PostgreSQL.
CASE_TABLES = ("process_versions", "cadres", "cases", "tasks", "history")
SERIAL_TABLES = ("process_versions", "cases", "history")
# An entry no service step writes, with what the hash's canonical form must survive on both backends.
ODD_ENTRY = {"actor": "审计员", "action": "message", "task": None,
             "at": datetime(2024, 3, 1, 8, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
             "detail": '{"name": "来信", "data": {"金额": 1234.5, "比例": 0.1, "big": 4611686018427387904, '
                       '"tiny": 1e-07, "列表": [1, 2.5, {"深": "层", "none": null, "yes": true}], "空": {}}}'}


def _cases_as_of_0003(tmp_path: Path) -> str:
    """A database at migration 0003 holding cases with their history, written as that schema's rows."""
    for folder in ("source", "old"):
        (tmp_path / folder).mkdir()
    source = create_app(make_settings(tmp_path / "source"))
    services = source.extensions["cadreflow"]
    init_database(services)
    users.create_user(services, "discipline", PASSWORD, ["discipline"])  # a claim needs its claimer's active account
    cadres.create_cadre(services, actor("org_dept"), {"id": "c1", "name": "张三", "unit": "县发改局",
                                                      "post": "副局长", "post_level": "leading",
                                                      "post_started_on": "2015-03-01"})
    for reason in ("约谈", "不予诫勉", "待定"):
        case = cases.start_case(services, actor("discipline"), "admonishment", "c1",
                                {"trigger": "complaint", "summary": "群众反映"})
        task_id = case["open_tasks"][0]["id"]
        tasks.claim_task(services, actor("discipline"), task_id)
        if reason != "待定":
            tasks.complete_task(services, actor("discipline"), task_id,
                                {"form": "talk" if reason == "约谈" else "dismiss", "reason": reason})
    url = database_url(tmp_path / "old")
    _copy_rows(services.db.write_engine, create_engine(url))
    services.db.dispose()
    return url


def _copy_rows(source, target) -> None:
    upgrade(target, "0003")
    with source.connect() as reading, target.begin() as writing:
        for name in CASE_TABLES:
            old, new = Table(name, MetaData(), autoload_with=writing), Table(name, MetaData(), autoload_with=reading)
            columns = [new.c[column.name] for column in old.columns]  # the 0003 columns only
            rows = [dict(row._mapping) for row in reading.execute(select(*columns).order_by(columns[0]))]
            writing.execute(old.insert(), rows)
        if target.dialect.name == "postgresql":  # rows came with their ids: move the sequences past them
            for name in SERIAL_TABLES:
                writing.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"(SELECT max(id) FROM {name}))"))
        case_id = writing.execute(text("SELECT max(id) FROM cases")).scalar()
        writing.execute(text("INSERT INTO history (case_id, at, actor, action, task, detail) VALUES "
                             "(:case_id, :at, :actor, :action, :task, :detail)"),
                        {**ODD_ENTRY, "at": ODD_ENTRY["at"].isoformat(sep=" "), "case_id": case_id})
    target.dispose()


def test_history_written_before_the_chain_is_chained_by_the_upgrade(tmp_path: Path) -> None:
    """Entries of a 0003 database get their sequences and hashes in id order per case, each case its head;
    check accepts every chain, new entries continue them, and the upgraded table is append-only."""
    url = _cases_as_of_0003(tmp_path)
    app = create_app(make_settings(tmp_path / "old"))
    services = app.extensions["cadreflow"]
    services.db.create_schema()
    assert check_cases(services, grace_seconds=3600) == (3, [])
    before = {c["id"]: cases.case_history(services, actor("admin"), c["id"])
              for c in cases.list_cases(services, actor("admin"), {"page": 1, "per_page": 10})["items"]}
    assert all([e["seq"] for e in h] == list(range(1, len(h) + 1)) for h in before.values())
    odd = before[max(before)][-1]
    assert (odd["actor"], datetime.fromisoformat(odd["at"])) == ("审计员", ODD_ENTRY["at"])
    assert odd["detail"]["data"]["列表"][2] == {"深": "层", "none": None, "yes": True}

    open_task = tasks.list_tasks(services, actor("admin"), {"case_id": max(before)})[0]
    tasks.unclaim_task(services, actor("discipline"), open_task["id"])
    tasks.complete_task(services, actor("discipline"), open_task["id"], {"form": "dismiss", "reason": "不予诫勉"})
    after = cases.case_history(services, actor("admin"), max(before))
    assert after[:len(before[max(before)])] == before[max(before)]
    assert [e["seq"] for e in after] == list(range(1, len(after) + 1)) and len(after) > len(before[max(before)]) + 1
    assert check_cases(services, grace_seconds=3600) == (3, [])
    engine = create_engine(url)
    with engine.connect() as connection:
        heads = connection.execute(text("SELECT sum(history_seq) FROM cases")).scalar()
        assert heads == connection.execute(text("SELECT count(*) FROM history")).scalar()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("UPDATE history SET actor = 'someone else'"))
    engine.dispose()
    services.db.dispose()


def test_need_to_know_backfills_lanes_of_deployed_versions_and_participants_of_cases(tmp_path: Path) -> None:
    """A database at 0003 with a vetting version and a worked case: the upgrade records the version's lanes
    and everyone who started, held, completed or claimed in the case, so reads keep working."""
    url = database_url(tmp_path)
    engine = create_engine(url)
    upgrade(engine, "0003")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO process_versions (id, process_key, version, name, bpmn_xml, dmn_files, content_hash, "
            "deployed_by, deployed_at) VALUES (1, 'pre_appointment_vetting', 1, '任前监督', :xml, '{}', 'h1', 'old', "
            "CURRENT_TIMESTAMP)"), {"xml": (BPMN / "pre_appointment_vetting.bpmn").read_text()})
        connection.execute(text("INSERT INTO cadres (id, name, unit, post, post_level) "
                                "VALUES ('c1', '旧数据', '县局', '科长', 'middle')"))
        connection.execute(text(
            "INSERT INTO cases (id, process_key, process_version_id, cadre_id, status, data, state, version, "
            "created_by, created_at, updated_at) VALUES (7, 'pre_appointment_vetting', 1, 'c1', 'open', '{}', '', 1, "
            "'starter', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        for task_id, assignee, completed_by in (("t1", "holder", None), ("t2", None, "finisher")):
            connection.execute(text(
                "INSERT INTO tasks (id, case_id, process_key, process_version_id, element_id, name, assignee, status, "
                "created_at, overdue, completed_by) VALUES (:id, 7, 'pre_appointment_vetting', 1, 'x', 'x', :who, "
                "'open', CURRENT_TIMESTAMP, false, :done)"), {"id": task_id, "who": assignee, "done": completed_by})
        connection.execute(text("INSERT INTO history (case_id, at, actor, action, detail) VALUES "
                                "(7, CURRENT_TIMESTAMP, 'claimer', 'claim', '{}'), "
                                "(7, CURRENT_TIMESTAMP, 'system', 'automatic', '{}')"))
    upgrade(engine)
    with engine.connect() as connection:
        lanes = set(connection.execute(text("SELECT role FROM process_lanes WHERE process_version_id = 1")).scalars())
        people = set(connection.execute(text("SELECT username FROM case_participants WHERE case_id = 7")).scalars())
    engine.dispose()
    assert lanes == {"org_dept", "org_head", "committee", "discipline"}
    assert people == {"starter", "holder", "finisher", "claimer"}


def test_0020_takes_reporters_contacts_out_of_the_search_index(tmp_path: Path) -> None:
    """A public report indexed before 0020 (its contact in `search_text`) is found by its content only after."""
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    init_database(services)
    report = {"channel": "hotline", "subject_name": "张三", "subject_unit": "县交通局", "category": "inaction",
              "content": "道路问题长期不予处理", "contact": "13800000000"}
    case_id = cases.start_case(services, actor("discipline"), "public_report", None, report)["id"]
    engine = services.db.write_engine
    with engine.begin() as connection:  # as 0019 left it: every data value indexed
        connection.execute(text("UPDATE cases SET search_text = search_text || ' 13800000000' WHERE id = :id"),
                           {"id": case_id})
        connection.execute(text("UPDATE alembic_version SET version_num = '0019'"))
    upgrade(engine, "0020")
    with engine.connect() as connection:
        indexed = connection.execute(text("SELECT search_text FROM cases WHERE id = :id"), {"id": case_id}).scalar()
    assert "13800000000" not in indexed and "道路问题" in indexed
    services.db.dispose()


def test_0025_logs_reports_stored_before_it_and_says_they_are_vouched_for_from_then_on(tmp_path: Path) -> None:
    """Reports stored before the personal-report log existed each get one `backfill` entry (the upgrade's time,
    `system`, a note that nothing before it is proven), chained per cadre: the database checks clean, and a report
    rewritten after the upgrade is named."""
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    init_database(services)
    for cadre_id in ("c1", "c2"):
        cadres.create_cadre(services, actor("org_dept"), {"id": cadre_id, "name": "张三", "unit": "县发改局",
                                                          "post": "副局长", "post_level": "leading",
                                                          "post_started_on": "2015-03-01"})
    made = [personal_reports.add_report(services, actor("org_dept"), cadre_id, {
        "kind": "property", "event_on": "2026-01-05", "reported_on": reported_on, "summary": summary})
        for cadre_id, reported_on, summary in (("c1", "2026-01-20", "购置住房"), ("c1", "2026-06-20", "出售车辆"),
                                               ("c2", "2026-01-06", "配偶经商"))]
    engine = services.db.write_engine
    config = alembic_config(engine)
    with engine.begin() as connection:  # as 0024 left it: reports, no log
        config.attributes["connection"] = connection
        command.downgrade(config, "0024")
    upgrade(engine)
    with engine.connect() as connection:
        log = connection.execute(text("SELECT cadre_id, seq, actor, action, detail FROM personal_report_log "
                                      "ORDER BY id")).all()
    assert [(row.cadre_id, row.seq, row.actor, row.action) for row in log] == [
        ("c1", 1, "system", "backfill"), ("c1", 2, "system", "backfill"), ("c2", 1, "system", "backfill")]
    details = [json.loads(row.detail) if isinstance(row.detail, str) else row.detail for row in log]
    assert [d["report_id"] for d in details] == [r["id"] for r in made]
    assert all("vouched for only from this entry on" in d["note"] for d in details)
    assert check_reports(services) == (2, [])
    with engine.begin() as connection:
        connection.execute(text("UPDATE personal_reports SET summary = '无' WHERE id = :id"), {"id": made[2]["id"]})
    assert check_reports(services)[1] == [f"cadre c2: personal report {made[2]['id']} differs from its history "
                                          "entry (记录与履历不符，可能被改动)"]
    services.db.dispose()


def test_0026_refuses_names_differing_in_case_alone_until_one_is_renamed(tmp_path: Path) -> None:
    """A database holding `Bob` and `bob` cannot take 0026's unique index on lower(username): the upgrade (and
    `cadreflow init-db`, without a traceback) names them and changes nothing; once one is renamed it goes on, and
    the index then refuses a lookalike whoever writes it."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0025")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, password_hash, active, mail_digest) VALUES "
                                "('Bob', 'x', true, false), ('bob', 'x', true, false), ('ann', 'x', true, false)"))
    with pytest.raises(MigrationRefused, match="Bob / bob") as refusal:
        upgrade(engine)
    assert "ann" not in str(refusal.value) and "仅大小写不同" in str(refusal.value)
    app = create_app(make_settings(tmp_path))
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "cannot upgrade the database" in result.output and "Bob / bob" in result.output
    with engine.connect() as connection:
        assert current_revision(connection) == "0025"
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 3
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET username = 'bob.old' WHERE username = 'bob'"))
    upgrade(engine)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, password_hash, active, mail_digest) "
                                "VALUES ('BOB.old', 'x', true, false)"))
    app.extensions["cadreflow"].db.dispose()
    engine.dispose()


def test_0027_logs_the_accounts_of_a_0026_database_and_holds_them_to_it_from_then_on(tmp_path: Path) -> None:
    """Each account of a 0026 database gets one `user.backfill` entry (its roles, whether it may log in, a note
    that how is not recorded), chained in id order with the head after them and the triggers on; the database then
    checks clean, a change after it extends the chain, and a role granted with SQL after the upgrade is named."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0026")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, password_hash, active, mail_digest) VALUES "
                                "('old_admin', 'x', true, false), ('gone_clerk', 'x', false, false)"))
        connection.execute(text("INSERT INTO user_roles (user_id, role) SELECT id, 'admin' FROM users "
                                "WHERE username = 'old_admin'"))
    upgrade(engine, "0027")
    with engine.connect() as connection:
        assert current_revision(connection) == "0027"
        log = connection.execute(text("SELECT seq, actor, action, target, detail FROM account_log ORDER BY id")).all()
        assert connection.execute(text("SELECT seq FROM account_log_head")).scalar() == 2
    assert [(row.seq, row.actor, row.action, row.target) for row in log] == [
        (1, "system", "user.backfill", "old_admin"), (2, "system", "user.backfill", "gone_clerk")]
    details = [json.loads(row.detail) if isinstance(row.detail, str) else row.detail for row in log]
    assert [(d["roles"], d["active"]) for d in details] == [(["admin"], True), ([], False)]
    assert all("how is not recorded" in d["note"] for d in details)
    upgrade(engine)  # the service's models are the newest migration's
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    assert check_account_log(services) == (6, [])  # and 0032 and 0033 one backfill entry each
    users.create_user(services, "clerk", PASSWORD, [], replace=False)
    assert check_account_log(services) == (7, [])
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO user_roles (user_id, role) SELECT id, 'discipline_head' FROM users "
                                "WHERE username = 'clerk'"))
    assert check_account_log(services)[1] == ["account log: user clerk holds roles ['discipline_head'], the account "
                                              "log says [] (账号角色与账号变更记录不符，可能被改动)"]
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM account_log"))
    with engine.begin() as connection:  # and back down: the log and its triggers go, the accounts stay
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0026")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM users")).scalar() == 3
    services.db.dispose()
    engine.dispose()


def test_0028_counts_the_timer_steps_of_stored_cases_from_0(tmp_path: Path) -> None:
    """A case stored before 0028 gets `timer_firings` 0 (nothing fired since a person acted, as far as anyone knows),
    and the column goes again on the way down, the case staying."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0027")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO process_versions (id, process_key, version, name, bpmn_xml, dmn_files, content_hash, "
            "deployed_by, deployed_at) VALUES (1, 'admonishment', 1, '诫勉谈话', :xml, '{}', 'h1', 'old', "
            "CURRENT_TIMESTAMP)"), {"xml": (BPMN / "admonishment.bpmn").read_text()})
        connection.execute(text(
            "INSERT INTO cases (id, process_key, process_version_id, status, data, state, version, created_by, "
            "created_at, updated_at) VALUES (7, 'admonishment', 1, 'open', '{}', '', 1, 'starter', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    upgrade(engine, "0028")
    with engine.connect() as connection:
        assert current_revision(connection) == "0028"
        assert connection.execute(text("SELECT timer_firings FROM cases WHERE id = 7")).scalar() == 0
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0027")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM cases")).scalar() == 1
    engine.dispose()


def test_0029_logs_the_roles_and_starters_stored_before_it_and_check_holds_them_to_it(tmp_path: Path) -> None:
    """Roles and starters seeded without an entry (as `init-db` did before) each get one backfill entry, chained
    after the log's last; a role an entry already defines gets none; the database then checks clean, a role
    redefined with SQL is named, and upgrading again after a downgrade adds nothing."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0027")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO roles (code, name_zh, name_en) VALUES ('org_dept', '组织部干部科', "
                                "'Organisation'), ('org_head', '组织部部长', 'Head'), ('audit', '审计局', 'Audit')"))
        connection.execute(text("UPDATE roles SET head_role = 'org_head' WHERE code = 'org_dept'"))
        connection.execute(text("INSERT INTO process_starters (process_key, role) VALUES ('vetting', 'org_dept'), "
                                "('vetting', 'audit'), ('admonishment', 'org_dept')"))
    upgrade(engine)
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    with engine.connect() as connection:
        log = connection.execute(text("SELECT seq, actor, action, target, detail FROM account_log ORDER BY id")).all()
    details = {row.target: json.loads(row.detail) if isinstance(row.detail, str) else row.detail for row in log}
    assert [(row.seq, row.actor, row.action, row.target) for row in log] == [
        (1, "system", "role.backfill", "audit"), (2, "system", "role.backfill", "org_dept"),
        (3, "system", "role.backfill", "org_head"), (4, "system", "process.backfill", "admonishment"),
        (5, "system", "process.backfill", "vetting")]
    assert details["org_dept"]["head_role"] == "org_head" and details["vetting"]["roles"] == ["audit", "org_dept"]
    assert all("how is not recorded" in detail["note"] for detail in details.values())
    assert check_account_log(services) == (5, [])
    with engine.begin() as connection:
        connection.execute(text("UPDATE roles SET head_role = NULL WHERE code = 'org_dept'"))
    assert check_account_log(services)[1] == [
        "account log: role org_dept is defined as {'name_zh': '组织部干部科', 'name_en': 'Organisation', "
        "'head_role': None}, the account log says {'name_zh': '组织部干部科', 'name_en': 'Organisation', "
        "'head_role': 'org_head'} (角色定义与账号变更记录不符，可能被改动)"]
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0027")
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM account_log")).scalar() == 5
    services.db.dispose()
    engine.dispose()


def test_0032_vouches_for_the_passwords_stored_before_it_and_check_holds_them_to_it(tmp_path: Path) -> None:
    """Each account of a 0030 database gets one `user.password_backfill` entry (a digest of its hash, never the hash,
    and whether it must replace the password), chained after the log's last; the database then checks clean, a hash
    written with SQL after the upgrade is named, and upgrading again after a downgrade adds nothing."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0026")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, password_hash, active, mail_digest) "
                                "VALUES ('old_admin', 'scrypt:old$hash', true, false), "
                                "('reset_clerk', 'scrypt:set$by-admin', true, false)"))
    upgrade(engine, "0030")
    with engine.begin() as connection:  # an admin's reset between 0030 and 0032, its entry naming no digest
        connection.execute(text("UPDATE users SET must_change_password = true WHERE username = 'reset_clerk'"))
    upgrade(engine, "0032")
    with engine.connect() as connection:
        assert current_revision(connection) == "0032"
        log = connection.execute(text("SELECT seq, actor, action, target, detail FROM account_log ORDER BY id")).all()
    details = [json.loads(row.detail) if isinstance(row.detail, str) else row.detail for row in log]
    assert [(row.seq, row.actor, row.action, row.target) for row in log] == [
        (1, "system", "user.backfill", "old_admin"), (2, "system", "user.backfill", "reset_clerk"),
        (3, "system", "user.password_backfill", "old_admin"), (4, "system", "user.password_backfill", "reset_clerk")]
    assert [(d["password_hash_sha256"], d["must_change_password"]) for d in details[2:]] == [
        (password_digest("scrypt:old$hash"), False), (password_digest("scrypt:set$by-admin"), True)]
    assert all("how is not recorded" in d["note"] for d in details[2:])
    assert "scrypt" not in json.dumps(details)
    upgrade(engine)
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    assert check_account_log(services) == (6, [])  # and 0033's mail backfill
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET password_hash = 'scrypt:mine$now' WHERE username = 'old_admin'"))
    assert check_account_log(services)[1] == [
        "account log: user old_admin's password is not the one the account log last set: it was replaced behind the "
        "service's back (账号密码与账号变更记录不符，可能被改动)"]
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0030")
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM account_log")).scalar() == 6
    services.db.dispose()
    engine.dispose()


def test_0033_vouches_for_the_mail_settings_stored_before_it_and_check_holds_them_to_it(tmp_path: Path) -> None:
    """Each account of a 0032 database gets one `user.mail_backfill` entry (its address and digest choice then, a
    note that how is not recorded), chained after the log's last: an address an admin set before, whose entry the
    replay would also give, and one written with SQL before the upgrade, which nothing can tell now, alike. The
    database then checks clean, an address written with SQL after the upgrade is named, and upgrading again after a
    downgrade adds nothing."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0026")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, password_hash, active, email, mail_digest) VALUES "
                                "('old_admin', 'x', true, NULL, false), "
                                "('head', 'x', true, 'head@example.gov.cn', true)"))
    upgrade(engine, "0032")
    upgrade(engine, "0033")
    with engine.connect() as connection:
        assert current_revision(connection) == "0033"
        log = connection.execute(text("SELECT seq, actor, action, target, detail FROM account_log "
                                      "WHERE seq > 4 ORDER BY id")).all()
        assert connection.execute(text("SELECT seq FROM account_log_head")).scalar() == 6
    details = [json.loads(row.detail) if isinstance(row.detail, str) else row.detail for row in log]
    assert [(row.seq, row.actor, row.action, row.target) for row in log] == [
        (5, "system", "user.mail_backfill", "old_admin"), (6, "system", "user.mail_backfill", "head")]
    assert [(d["email"], d["mail_digest"]) for d in details] == [("", False), ("head@example.gov.cn", True)]
    assert all("how is not recorded" in d["note"] for d in details)
    upgrade(engine)
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    assert check_account_log(services) == (6, [])
    with engine.begin() as connection:
        connection.execute(text("UPDATE users SET email = 'mole@example.org' WHERE username = 'head'"))
    assert check_account_log(services)[1] == [
        "account log: user head's mail settings are {'email': 'mole@example.org', 'mail_digest': True}, the account "
        "log says {'email': 'head@example.gov.cn', 'mail_digest': True} (账号邮件设置与账号变更记录不符，可能被改动)"]
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0032")
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM account_log")).scalar() == 6
    services.db.dispose()
    engine.dispose()


def test_0030_counts_open_sessions_as_seen_at_the_upgrade_and_keeps_their_refresh_from_the_notices(
        tmp_path: Path) -> None:
    """A session open before 0030 is taken as seen at the upgrade (nobody working is logged out by it, and it
    ends an idle time later), no account must change its password, the session's triggers still count a change of
    who holds it but not a refresh of its last request (SQLite's count; PostgreSQL's trigger has the same events),
    and the way back down drops both columns."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0029")
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, password_hash, active, mail_digest) "
                                "VALUES ('clerk', 'x', true, false)"))
        connection.execute(text("INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) SELECT "
                                "'h1', id, :at, :until FROM users"),
                           {"at": long_ago, "until": long_ago + timedelta(hours=12)})
    before = datetime.now(UTC)
    upgrade(engine, "0030")
    sessions = table("web_sessions", column("last_seen_at", DateTime(timezone=True)))
    with engine.connect() as connection:
        seen = connection.execute(select(sessions.c.last_seen_at)).scalar_one()
        assert connection.execute(text("SELECT must_change_password FROM users")).scalar_one() in (False, 0)
    assert (seen if seen.tzinfo else seen.replace(tzinfo=UTC)) >= before - timedelta(seconds=1)
    if engine.dialect.name == "sqlite":
        assert _credential_changes_after(engine, "UPDATE web_sessions SET last_seen_at = CURRENT_TIMESTAMP") == 0
        assert _credential_changes_after(engine, "UPDATE web_sessions SET expires_at = CURRENT_TIMESTAMP") == 1
        assert _credential_changes_after(engine, "DELETE FROM web_sessions") == 1
    else:
        with engine.connect() as connection:
            trigger = connection.execute(text("SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                                              "WHERE tgname = 'web_sessions_changed'")).scalar_one()
        assert "UPDATE OF token_hash, user_id, created_at, expires_at" in trigger and "DELETE" in trigger
    upgrade(engine)
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0029")
    with engine.connect() as connection:
        columns = {found["name"] for found in inspect(connection).get_columns("web_sessions")}
        assert "last_seen_at" not in columns and current_revision(connection) == "0029"
    engine.dispose()


def test_0031_keeps_the_ratings_stored_before_it_with_no_network(tmp_path: Path) -> None:
    """A rating stored before 0031 stays, with no network (it counts towards no /48's share), and the way back
    down drops the column and its index, the rating staying."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0030")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO process_versions (id, process_key, version, name, bpmn_xml, dmn_files, content_hash, "
            "deployed_by, deployed_at) VALUES (1, 'integrity_report', 1, '述职述廉', '<x/>', '{}', 'h1', 'old', "
            "CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO cadres (id, name, unit, post, post_level, post_started_on) "
                                 "VALUES ('c1', '旧数据', '县局', '局长', 'leading', '2019-05-01')"))
        connection.execute(text(
            "INSERT INTO cases (id, process_key, process_version_id, cadre_id, status, data, state, version, "
            "created_by, created_at, updated_at) VALUES (7, 'integrity_report', 1, 'c1', 'open', '{}', '', 1, "
            "'starter', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO disclosures (id, case_id, cadre_id, year, opened_at) "
                                "VALUES (3, 7, 'c1', 2026, CURRENT_TIMESTAMP)"))
        connection.execute(text("INSERT INTO disclosure_ratings (disclosure_id, address_hash, rating, at) "
                                "VALUES (3, 'a1', 'satisfied', CURRENT_TIMESTAMP)"))
    upgrade(engine, "0031")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT network_hash FROM disclosure_ratings")).all() == [(None,)]
        indexes = {found["name"] for found in inspect(connection).get_indexes("disclosure_ratings")}
        assert "ix_disclosure_ratings_network" in indexes
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0030")
    with engine.connect() as connection:
        columns = {found["name"] for found in inspect(connection).get_columns("disclosure_ratings")}
        assert "network_hash" not in columns and current_revision(connection) == "0030"
        assert connection.execute(text("SELECT rating FROM disclosure_ratings")).all() == [("satisfied",)]
    engine.dispose()


def test_0039_adds_the_idempotency_keys_and_the_way_back_drops_them(tmp_path: Path) -> None:
    """0039 adds the API's idempotency keys, one per user and key (a second row for the pair is refused), and
    the way back down drops the table and its index; the rest of the database stays."""
    engine = create_engine(database_url(tmp_path))
    upgrade(engine, "0033")
    upgrade(engine, "0039")
    row = ("INSERT INTO idempotency_keys (username, key, request_sha256, created_at) "
           "VALUES ('org_dept', 'k1', 'h', CURRENT_TIMESTAMP)")
    with engine.begin() as connection:
        connection.execute(text(row))
        assert "ix_idempotency_keys_created_at" in {
            found["name"] for found in inspect(connection).get_indexes("idempotency_keys")}
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(row))
    with engine.begin() as connection:
        connection.execute(text(row.replace("'org_dept'", "'org_dept2'")))  # another user's same key
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.downgrade(config, "0033")
    with engine.connect() as connection:
        assert "idempotency_keys" not in inspect(connection).get_table_names()
        assert current_revision(connection) == "0033"
    engine.dispose()


def _credential_changes_after(engine, statement: str) -> int:
    """How far SQLite's credential count (migration 0022) moves with a statement."""
    with engine.begin() as connection:
        before = connection.execute(text("SELECT changes FROM credential_epoch")).scalar_one()
        connection.execute(text(statement))
        return connection.execute(text("SELECT changes FROM credential_epoch")).scalar_one() - before
