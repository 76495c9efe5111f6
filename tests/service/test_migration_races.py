"""A case moved to another process version while another write waited for its lock.

Each write that takes a case with `lock_case` reads the case's process version with it. On PostgreSQL a write that
waited for the lock got the case row as the migration left it, but the version row joined to it was dropped: the
case pointed at the new version while its `process_version` was None, and the write failed with a 500 (a cancel, a
message, a second migration). Each race is made certain by pausing the migration after it stored its step,
its lock still held, until the other write waits on that lock. SQLite serialises writers at BEGIN IMMEDIATE, so
there the second write simply runs after the first: the tests hold on both."""

from __future__ import annotations

import io

import pytest

from service.errors import Conflict
from service.usecases import cases, check, messages, versions
from tests.api.support import start_admonishment, vetting_to_notice
from tests.conftest import actor
from tests.engine.test_returns import BPMN_DIR, with_return
from tests.service.test_deactivation_races import Paused, release_when_waiting, started

ADMIN = actor("admin")


def on_old_version(api, key: str, element_id: str, case_id: int, *tables: str) -> None:
    """Deploy a second version of `key` (one task made returnable, with its DMN `tables`) and keep the case on the
    first."""
    files = {"file": (io.BytesIO(with_return(key, element_id)), f"{key}.bpmn"),
             **{f"table{i}": (io.BytesIO((BPMN_DIR / name).read_bytes()), name) for i, name in enumerate(tables)}}
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=files,
                        content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    assert api.case(case_id)["process_version"] == 1


def while_migrating(services, monkeypatch, case_id: int, write):
    """Run `write` while the case's migration to the newest version holds the case; the migration's report and
    what `write` gave (or raised)."""
    pause = Paused(monkeypatch, versions, "store_step")
    migration = started(lambda: versions.migrate_case(services, ADMIN, case_id, None, False))
    pause.wait()
    other = started(write)
    release_when_waiting(services, pause)
    return migration(), other()


def assert_whole(services, api, case_id: int, version: int) -> None:
    assert api.case(case_id)["process_version"] == version
    assert check.check_cases(services, grace_seconds=3600)[1] == []


def test_a_cancel_waiting_on_a_migration_cancels_the_migrated_case(services, api, cadre, monkeypatch):
    """The cancel waits for the migration, then cancels the case on its new version: no 500, one cancel entry."""
    case_id = start_admonishment(api)["id"]
    on_old_version(api, "admonishment", "conduct_talk", case_id)
    migrated, cancelled = while_migrating(services, monkeypatch, case_id,
                                          lambda: cases.cancel_case(services, ADMIN, case_id, "重复立案"))
    assert migrated["to_version"] == 2
    assert isinstance(cancelled, dict) and cancelled["status"] == "cancelled", cancelled
    assert [e["action"] for e in api.history(case_id)][-2:] == ["migrate", "cancel"]
    assert_whole(services, api, case_id, 2)


def test_a_second_migration_waiting_on_the_first_starts_from_where_it_left_the_case(services, api, cadre,
                                                                                     monkeypatch):
    """Two admins migrating one case at once: to the newest version, and back to the first. The second waits, then
    moves the case from version 2 back to 1; one to the newest again finds it there already (409)."""
    case_id = start_admonishment(api)["id"]
    on_old_version(api, "admonishment", "conduct_talk", case_id)
    migrated, back = while_migrating(
        services, monkeypatch, case_id, lambda: versions.migrate_case(services, ADMIN, case_id, 1, False))
    assert migrated["to_version"] == 2
    assert isinstance(back, dict) and (back["from_version"], back["to_version"]) == (2, 1), back
    assert_whole(services, api, case_id, 1)
    monkeypatch.undo()
    versions.migrate_case(services, ADMIN, case_id, None, False)
    again = started(lambda: versions.migrate_case(services, ADMIN, case_id, None, False))()
    assert isinstance(again, Conflict) and "已在该版本上" in again.message, again
    assert [e["action"] for e in api.history(case_id)].count("migrate") == 3


def test_a_message_waiting_on_a_migration_is_taken_by_the_migrated_case(services, api, cadre, monkeypatch):
    """An objection to a vetting case in its public notice, sent while the case is migrated: taken on the new
    version, verify_objection opens."""
    case_id = vetting_to_notice(api)
    on_old_version(api, "pre_appointment_vetting", "org_head_review", case_id, "vetting_eligibility.dmn")
    _migrated, delivered = while_migrating(services, monkeypatch, case_id, lambda: messages.deliver_message(
        services, actor("discipline"), "vetting_objection", case_id, {"report": "群众来信"}))
    assert delivered is None, delivered
    assert api.open_elements(case_id) == ["verify_objection"]
    assert_whole(services, api, case_id, 2)


@pytest.mark.parametrize("path", ["/api/cases/{id}/cancel", "/api/cases/{id}/migrate"])
def test_over_http_the_waiting_write_never_answers_500(services, api, cadre, monkeypatch, path):
    """The same races through the API: the waiting request is served (it answered 500)."""
    case_id = start_admonishment(api)["id"]
    on_old_version(api, "admonishment", "conduct_talk", case_id)
    _migrated, response = while_migrating(services, monkeypatch, case_id, lambda: api.post(
        path.format(id=case_id), json={"reason": "撤销"} if "cancel" in path else {"to_version": 1}))
    assert response.status_code == 200, response.get_json()
    assert_whole(services, api, case_id, 2 if "cancel" in path else 1)
