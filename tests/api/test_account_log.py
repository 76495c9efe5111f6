"""The account log: every account, role and starters change leaves one hash-chained entry written with it, never
a secret; a refused change leaves none; discipline_head reads it (GET /api/account-log); the log refuses UPDATE and
DELETE, and `cadreflow check` names an entry rewritten, deleted or slipped in once the triggers are gone."""

from __future__ import annotations

import json
import re
from functools import partial

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from werkzeug.security import generate_password_hash

from service import create_app
from service.db.chain import GENESIS, account_entry_hash
from service.db.models import AccountLogEntry, AccountLogHead, User, utcnow
from service.usecases import anchors, roles, users
from service.usecases.account_log import check_account_log
from service.usecases.anchors import AnchorUnusable, anchor_faults, take_anchor
from tests.api.support import VETTING, assert_error
from tests.api.test_accounts_api import NEW_PASSWORD, bearer, fresh_token
from tests.conftest import PASSWORD, actor, make_settings
from tests.service.test_concurrency import race
from tests.service.test_history_anchor import KEY

ANOTHER_PASSWORD = "another-password-7"


class _Digest:
    """Equal to a digest of a password hash as an entry setting a password names it (64 hex digits); which hash it
    is of, the tests of `check` holding passwords to the log prove."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.fullmatch(r"[0-9a-f]{64}", other) is not None

    def __repr__(self) -> str:
        return "<digest>"


SET = {"password_hash_sha256": _Digest()}  # the detail an entry setting a password adds


def last_seq(services) -> int:
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(AccountLogHead.seq).where(AccountLogHead.id == 1)) or 0


def entries_after(services, seq: int) -> list[tuple[str, str, str, dict]]:
    """(actor, action, target, detail) of the entries appended after `seq`, oldest first."""
    with services.db.unit_of_work(write=False) as session:
        rows = session.execute(select(AccountLogEntry.actor, AccountLogEntry.action, AccountLogEntry.target,
                                      AccountLogEntry.detail).where(AccountLogEntry.seq > seq)
                               .order_by(AccountLogEntry.seq)).all()
    return [tuple(row) for row in rows]


def secrets_of(services) -> list[str]:
    """Every password hash stored now: none may appear in the log."""
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(User.password_hash)))


def whole_log_text(services) -> str:
    with services.db.unit_of_work(write=False) as session:
        return json.dumps([list(row) for row in session.execute(
            select(AccountLogEntry.actor, AccountLogEntry.action, AccountLogEntry.target, AccountLogEntry.detail))],
            ensure_ascii=False)


CHANGES = {
    "user.create": (lambda api: api.post("/api/users", json={"username": "new.user", "password": PASSWORD,
                                                            "roles": ["audit"]}),
                    201, [("admin", "user.create", "new.user", {"roles": ["audit"], **SET})]),
    "user.roles": (lambda api: api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]}), 200,
                   [("admin", "user.roles", "audit",
                     {"roles": {"before": ["audit"], "after": ["audit", "discipline_head"]}})]),
    "user.deactivate": (lambda api: api.patch("/api/users/audit", json={"active": False}), 200,
                        [("admin", "user.deactivate", "audit", {})]),
    "user.password_reset": (lambda api: api.patch("/api/users/audit", json={"password": ANOTHER_PASSWORD}), 200,
                            [("admin", "user.password_reset", "audit", SET)]),
    "user.mail": (lambda api: api.patch("/api/users/audit", json={"email": "audit@example.org"}), 200,
                  [("admin", "user.mail", "audit", {"email": {"before": "", "after": "audit@example.org"}})]),
    "several at once": (lambda api: api.patch("/api/users/audit", json={
        "roles": ["designer"], "active": False, "password": ANOTHER_PASSWORD}), 200,
        [("admin", "user.roles", "audit", {"roles": {"before": ["audit"], "after": ["designer"]}}),
         ("admin", "user.deactivate", "audit", {}), ("admin", "user.password_reset", "audit", SET)]),
    "role.create": (lambda api: api.post("/api/roles", json={"code": "inspection", "name_zh": "巡察组",
                                                            "name_en": "Inspection team"}),
                    201, [("admin", "role.create", "inspection",
                           {"name_zh": "巡察组", "name_en": "Inspection team", "head_role": None})]),
    "role.update": (lambda api: api.put("/api/roles/committee", json={"name_zh": "县委常委会",
                                                                     "head_role": "org_head"}), 200,
                    [("admin", "role.update", "committee", {"head_role": {"before": None, "after": "org_head"}})]),
    "process.starters": (lambda api: api.put(f"/api/processes/{VETTING}/starters", json={"roles": ["committee"]}),
                         200, [("admin", "process.starters", VETTING,
                                {"roles": {"before": ["org_dept"], "after": ["committee"]}})]),
    "nothing changed": (lambda api: api.patch("/api/users/audit", json={"roles": ["audit"], "active": True}), 200,
                        []),
    "own mail": (lambda api: api.patch("/api/me/mail", as_="audit", json={"email": "me@example.org",
                                                                         "mail_digest": True}), 200,
                 [("audit", "user.mail", "audit", {"email": {"before": "", "after": "me@example.org"},
                                                   "mail_digest": {"before": False, "after": True}})]),
    "own mail unchanged": (lambda api: api.patch("/api/me/mail", as_="audit", json={"email": ""}), 200, []),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_change_writes_its_entry_with_it(api, services, change):
    """One entry per kind of change (none for what stayed as it was), naming who, what, on what and what changed;
    the chain still checks clean and no stored password hash appears in it."""
    before = last_seq(services)
    do, status, expected = CHANGES[change]
    response = do(api)
    assert response.status_code == status, response.json
    got = entries_after(services, before)
    assert got == expected
    assert check_account_log(services)[1] == []
    log = whole_log_text(services)
    assert not any(secret in log for secret in secrets_of(services))
    assert PASSWORD not in log and ANOTHER_PASSWORD not in log


def test_a_user_reactivated_and_its_own_password_change_are_recorded(api, services):
    assert api.patch("/api/users/audit", json={"active": False}).status_code == 200
    before = last_seq(services)
    assert api.patch("/api/users/audit", json={"active": True}).status_code == 200
    token = fresh_token(api, "audit2")
    response = api.client.post("/api/auth/password", headers=bearer(token),
                               json={"old_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204
    assert entries_after(services, before) == [("admin", "user.activate", "audit", {}),
                                               ("audit2", "user.password_change", "audit2", SET)]
    assert NEW_PASSWORD not in whole_log_text(services)


def test_the_cli_creating_and_resetting_a_user_is_recorded_as_the_system(app, services):
    before = last_seq(services)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-user", "clerk", "--password", PASSWORD, "--role", "audit"]).exit_code == 0
    assert runner.invoke(args=["create-user", "clerk", "--password", ANOTHER_PASSWORD, "--role", "audit",
                               "--role", "audit_head"]).exit_code == 0
    assert entries_after(services, before) == [
        ("system", "user.create", "clerk", {"roles": ["audit"], **SET}),
        ("system", "user.password_reset", "clerk", SET),
        ("system", "user.roles", "clerk", {"roles": {"before": ["audit"], "after": ["audit", "audit_head"]}})]
    assert ANOTHER_PASSWORD not in whole_log_text(services)


REFUSED = {
    "not an admin (403)": (lambda api: api.patch("/api/users/audit", as_="discipline_head",
                                                 json={"roles": ["admin"]}), 403),
    "self-deactivation (409)": (lambda api: api.patch("/api/users/admin", json={"active": False}), 409),
    "taken name (409)": (lambda api: api.post("/api/users", json={"username": "audit", "password": PASSWORD,
                                                                  "roles": []}), 409),
    "unknown role (422)": (lambda api: api.patch("/api/users/audit", json={"roles": ["pope"]}), 422),
    "weak password (422)": (lambda api: api.patch("/api/users/audit", json={"roles": ["designer"],
                                                                            "password": "short"}), 422),
    "existing role (409)": (lambda api: api.post("/api/roles", json={"code": "audit", "name_zh": "审计"}), 409),
    "role by non-admin (403)": (lambda api: api.post("/api/roles", as_="discipline_head",
                                                     json={"code": "x1", "name_zh": "x"}), 403),
    "bad starters (422)": (lambda api: api.put(f"/api/processes/{VETTING}/starters", json={"roles": ["pope"]}),
                           422),
    "wrong old password (422)": (lambda api: api.post("/api/auth/password", as_="audit", json={
        "old_password": "not-the-password", "new_password": NEW_PASSWORD}), 422),
}


@pytest.mark.parametrize("refusal", sorted(REFUSED))
def test_a_refused_change_writes_nothing(api, services, refusal):
    before = last_seq(services)
    do, status = REFUSED[refusal]
    assert_error(do(api), status)
    assert entries_after(services, before) == []


def test_the_last_admins_demotion_refused_leaves_no_entry(api, services):
    """The last active admin losing the role is refused inside the writing transaction (409): no entry either."""
    with services.db.unit_of_work() as session:  # only `admin` holds the role in the template
        session.execute(text("DELETE FROM user_roles WHERE role = 'admin' AND user_id <> "
                             "(SELECT id FROM users WHERE username = 'admin')"))
    before = last_seq(services)
    assert_error(api.patch("/api/users/admin", json={"roles": ["audit"]}), 409)
    assert entries_after(services, before) == []


class TestReading:
    def test_discipline_head_reads_newest_first_and_filters_by_who_acted_or_whose_account(self, api, services):
        api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]})
        api.patch("/api/users/audit", json={"roles": ["audit"]})
        api.put("/api/roles/audit", json={"name_en": "Audit office"})  # a role named like the user: not its account
        api.put(f"/api/processes/{VETTING}/starters", json={"roles": ["org_dept", "audit"]})
        page = api.get("/api/account-log", as_="discipline_head", query_string={"username": "audit"}).json
        assert [(e["action"], e["actor"]) for e in page["items"]] == [("user.roles", "admin"), ("user.roles", "admin"),
                                                                      ("user.create", "system")]
        assert page["items"][0]["detail"]["roles"]["after"] == ["audit"]  # the removal, newest first
        assert page["items"][0]["seq"] > page["items"][1]["seq"] and page["total"] == 3
        everything = api.get("/api/account-log", as_="discipline_head").json
        assert everything["items"][0]["action"] == "process.starters" and everything["total"] == last_seq(services)
        by_admin = api.get("/api/account-log", as_="discipline_head", query_string={"username": "admin"}).json
        assert by_admin["total"] == 5  # the four changes admin made, and its own account made by `system`

    def test_paging(self, api, services):
        total = last_seq(services)
        first = api.get("/api/account-log", as_="discipline_head", query_string={"per_page": 2}).json
        second = api.get("/api/account-log", as_="discipline_head", query_string={"per_page": 2, "page": 2}).json
        assert [e["seq"] for e in first["items"] + second["items"]] == [total, total - 1, total - 2, total - 3]
        past = api.get("/api/account-log", as_="discipline_head", query_string={"page": 1000}).json
        assert past["items"] == [] and past["page"] == 1000

    @pytest.mark.parametrize("query", [{"page": "x"}, {"page": "0"}, {"per_page": "501"}, {"per_page": "-1"},
                                       {"page": "99999999999999999999"}])
    def test_a_malformed_query_is_400(self, api, query):
        assert_error(api.get("/api/account-log", as_="discipline_head", query_string=query), 400)

    @pytest.mark.parametrize("role", ["discipline", "org_dept", "audit", "designer", "norole"])
    def test_others_are_refused(self, api, role):
        assert_error(api.get("/api/account-log", as_=role), 403)


def _sql(services, statements) -> None:
    with services.db.unit_of_work() as session:
        for statement in statements:
            session.execute(statement if not isinstance(statement, str) else text(statement))


def test_the_log_refuses_update_and_delete(api, services):
    api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]})
    for statement in (update(AccountLogEntry).values(actor="nobody"), delete(AccountLogEntry)):
        with pytest.raises(DBAPIError, match="append-only"):
            _sql(services, [statement])
    assert check_account_log(services)[1] == []


DROP_TRIGGERS = {"sqlite": ["DROP TRIGGER account_log_no_update", "DROP TRIGGER account_log_no_delete"],
                 "postgresql": ["DROP TRIGGER account_log_no_rewrite ON account_log"]}
GRANT = {"roles": {"before": ["audit"], "after": ["audit", "discipline_head"]}}


def _grant_entry(services):
    with services.db.unit_of_work(write=False) as session:
        return session.scalar(select(AccountLogEntry.seq).where(AccountLogEntry.action == "user.roles",
                                                                AccountLogEntry.target == "audit"))


FORGERIES = {
    "grant rewritten": (lambda s, seq: [update(AccountLogEntry).where(AccountLogEntry.seq == seq)
                                        .values(detail={"roles": {"before": ["audit"], "after": ["audit"]}})],
                        "altered"),
    "actor rewritten": (lambda s, seq: [update(AccountLogEntry).where(AccountLogEntry.seq == seq)
                                        .values(actor="system")], "altered"),
    "grant deleted": (lambda s, seq: [delete(AccountLogEntry).where(AccountLogEntry.seq == seq)],
                      "deleted, inserted or reordered"),
    "entry slipped in": (lambda s, seq: [insert(AccountLogEntry).values(
        seq=seq, at=utcnow(), actor="system", action="user.create", target="ghost", detail={}, hash="0" * 64)],
        "deleted, inserted or reordered"),
    "last entries cut off": (lambda s, seq: [delete(AccountLogEntry).where(AccountLogEntry.seq >= seq)],
                             "does not match its last entry"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_check_names_an_entry_changed_with_the_triggers_dropped(app, api, services, forgery):
    """An admin who gave itself discipline_head and took it back, then erased or rewrote the grant with SQL."""
    api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]})
    api.patch("/api/users/audit", json={"roles": ["audit"]})
    seq = _grant_entry(services)
    assert seq is not None and check_account_log(services)[1] == []
    dialect = services.db.write_engine.dialect.name
    if forgery == "entry slipped in":  # an entry at a taken sequence: the unique index must go too
        _sql(services, ["DROP INDEX ix_account_log_seq"])
    _sql(services, DROP_TRIGGERS[dialect])
    statements, phrase = FORGERIES[forgery]
    _sql(services, statements(services, seq))
    faults = check_account_log(services)[1]
    assert faults and all(fault.startswith("account log: ") for fault in faults), faults
    assert any(phrase in fault for fault in faults), faults
    result = app.test_cli_runner().invoke(args=["check", "--grace", "3600"])
    assert result.exit_code == 1 and "account log: " in result.output


def test_changes_racing_keep_one_chain(api, services):
    """Five changes of different kinds at once (two admins, a user's own password): each commits with its entry,
    the sequences have no gap and no fork, and the chain checks clean."""
    before = last_seq(services)
    admin = actor("admin")
    results = race(partial(users.update_user, services, admin, "audit", roles=["audit", "discipline_head"]),
                   partial(users.add_user, services, admin, "clerk", PASSWORD, ["audit"]),
                   partial(roles.create_role, services, admin, "inspection", "巡察组"),
                   partial(roles.set_starters, services, admin, VETTING, ["committee"]),
                   partial(users.change_password, services, actor("audit2"), PASSWORD, NEW_PASSWORD))
    assert not any(isinstance(result, Exception) for result in results), results
    assert sorted(action for _, action, _, _ in entries_after(services, before)) == [
        "process.starters", "role.create", "user.create", "user.password_change", "user.roles"]
    assert last_seq(services) == before + 5 and check_account_log(services)[1] == []


BEHIND_THE_BACK = {
    "role granted": (["INSERT INTO user_roles (user_id, role) SELECT id, 'discipline_head' FROM users "
                      "WHERE username = 'audit'"], "user audit holds roles ['audit', 'discipline_head'], the account "
                                                   "log says ['audit']"),
    "reactivated": (["UPDATE users SET active = true WHERE username = 'clerk'"], "user clerk is active"),
    "account made": (["INSERT INTO users (username, password_hash, active, mail_digest) "
                      "VALUES ('mole', 'x', true, false)"], "user mole has no account log entry"),
    "account removed": (["DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE username = 'clerk')",
                         "DELETE FROM users WHERE username = 'clerk'"], "records user clerk, which is gone"),
    "address given": (["UPDATE users SET email = 'mole@example.org' WHERE username = 'clerk'"],
                      "user clerk's mail settings are {'email': 'mole@example.org', 'mail_digest': False}, the "
                      "account log says {'email': '', 'mail_digest': False}"),
    "daily digest chosen": (["UPDATE users SET mail_digest = true WHERE username = 'clerk'"],
                            "user clerk's mail settings are {'email': '', 'mail_digest': True}"),
}


@pytest.mark.parametrize("change", sorted(BEHIND_THE_BACK))
def test_check_names_an_account_changed_with_sql(api, services, change):
    """The log's triggers stay: the accounts themselves are held to what their entries say."""
    assert api.post("/api/users", json={"username": "clerk", "password": PASSWORD, "roles": []}).status_code == 201
    assert api.patch("/api/users/clerk", json={"active": False}).status_code == 200
    assert check_account_log(services)[1] == []
    statements, phrase = BEHIND_THE_BACK[change]
    _sql(services, statements)
    faults = check_account_log(services)[1]
    assert len(faults) == 1 and phrase in faults[0], faults


def test_a_password_hash_written_with_sql_is_named(api, services):
    """An insider with the database (no admin account, no instance key) writes a hash of a password they know over
    discipline_head's, logs in as them and would read every case in their name: `check` names the account. Restoring
    the old hash afterwards is no fault (it is again the one the log vouches for)."""
    with services.db.unit_of_work(write=False) as session:
        original = session.scalar(select(User.password_hash).where(User.username == "discipline_head"))
    known = generate_password_hash(ANOTHER_PASSWORD, method="pbkdf2:sha256:1")
    _sql(services, [update(User).where(User.username == "discipline_head").values(password_hash=known)])
    response = api.client.post("/api/auth/token", json={"username": "discipline_head", "password": ANOTHER_PASSWORD})
    assert response.status_code == 200  # the takeover works: what follows is the only trace of it
    assert check_account_log(services)[1] == [
        "account log: user discipline_head's password is not the one the account log last set: it was replaced "
        "behind the service's back (账号密码与账号变更记录不符，可能被改动)"]
    _sql(services, [update(User).where(User.username == "discipline_head").values(password_hash=original)])
    assert check_account_log(services)[1] == []


def test_an_address_rewritten_with_sql_is_named_and_the_services_changes_are_not(api, services):
    """An insider with the database points discipline_head's notices (new tasks, their cases) at a mailbox of their
    own: named, as is one removed to keep the head from hearing of them. The admin's and the user's own changes,
    each in the log, check clean; putting the address back is no fault."""
    assert api.patch("/api/users/discipline_head", json={"email": "head@example.gov.cn"}).status_code == 200
    assert api.patch("/api/me/mail", as_="discipline_head", json={"mail_digest": True}).status_code == 200
    assert check_account_log(services)[1] == []
    _sql(services, [update(User).where(User.username == "discipline_head").values(email="mole@example.org")])
    assert check_account_log(services)[1] == [
        "account log: user discipline_head's mail settings are {'email': 'mole@example.org', 'mail_digest': True}, "
        "the account log says {'email': 'head@example.gov.cn', 'mail_digest': True} "
        "(账号邮件设置与账号变更记录不符，可能被改动)"]
    _sql(services, [update(User).where(User.username == "discipline_head").values(email=None)])
    assert "mail settings are {'email': ''" in " ".join(check_account_log(services)[1])
    _sql(services, [update(User).where(User.username == "discipline_head").values(email="head@example.gov.cn")])
    assert check_account_log(services)[1] == []


def test_an_admin_set_password_whose_change_demand_is_lifted_with_sql_is_named(api, services):
    """An admin resets audit's password (so the admin knows it, and audit must choose their own at the next web
    login), then clears the demand with SQL to keep using it unseen: named. Audit's own change then checks clean."""
    assert api.patch("/api/users/audit", json={"password": ANOTHER_PASSWORD}).status_code == 200
    assert check_account_log(services)[1] == []
    _sql(services, [update(User).where(User.username == "audit").values(must_change_password=False)])
    assert check_account_log(services)[1] == [
        "account log: user audit need not replace its password at the next login, the account log says otherwise "
        "(账号须改密标记与账号变更记录不符，可能被改动)"]
    token = api.client.post("/api/auth/token", json={"username": "audit", "password": ANOTHER_PASSWORD}).json["token"]
    response = api.client.post("/api/auth/password", headers=bearer(token),
                               json={"old_password": ANOTHER_PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204 and check_account_log(services)[1] == []


def _rewrite_consistently(services, seq: int, detail: dict) -> None:
    """Entry `seq` given another detail, every later hash and the head recomputed: what the chain cannot see."""
    _sql(services, DROP_TRIGGERS[services.db.write_engine.dialect.name])
    with services.db.unit_of_work() as session:
        previous = GENESIS
        for entry in session.scalars(select(AccountLogEntry).order_by(AccountLogEntry.seq)):
            if entry.seq == seq:
                entry.detail = detail
            entry.hash = previous = account_entry_hash(entry, previous)
        session.get_one(AccountLogHead, 1).hash = previous


def test_a_consistent_rewrite_of_the_account_log_is_named_by_the_anchor(api, services):
    """The grant rewritten to have granted nothing, hashes and head recomputed: only the anchor shows it."""
    api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]})
    api.patch("/api/users/audit", json={"roles": ["audit"]})
    anchor = take_anchor(services, KEY)
    assert anchor["format"] == anchors.FORMAT and anchor["account_log"][0] == last_seq(services)
    assert anchor_faults(services, anchor, KEY) == []
    _rewrite_consistently(services, _grant_entry(services), {"roles": {"before": ["audit"], "after": ["audit"]}})
    assert check_account_log(services)[1] == []  # the chain alone cannot see it
    faults = anchor_faults(services, anchor, KEY)
    assert len(faults) == 1 and faults[0].startswith("account log: ") and "rewritten" in faults[0], faults


def test_account_log_entries_cut_after_the_anchor_are_named(api, services):
    api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]})
    anchor = take_anchor(services)
    grant = _grant_entry(services)
    _sql(services, [*DROP_TRIGGERS[services.db.write_engine.dialect.name],
                    delete(AccountLogEntry).where(AccountLogEntry.seq >= grant)])
    faults = anchor_faults(services, anchor)
    assert len(faults) == 1 and faults[0].startswith("account log: ") and "is gone" in faults[0], faults


def test_an_anchor_of_format_2_is_still_checked_and_a_malformed_account_head_is_unusable(api, services):
    anchor = take_anchor(services)
    old = {key: anchor[key] for key in ("taken_at", "cases", "report_logs")}
    old["format"] = anchors.REPORTS_TOO
    old["digest"] = anchors._digest(old)  # as the release before it wrote it
    assert anchor_faults(services, old) == []
    for head in ([0, "0" * 64], ["1", "0" * 64], [1, "x"], {"seq": 1}, [1]):
        anchor["account_log"] = head
        anchor["digest"] = anchors._digest(anchor)
        with pytest.raises(AnchorUnusable, match="malformed"):
            anchor_faults(services, anchor)


def test_a_head_deleted_with_sql_refuses_the_next_change_and_is_named(api, services):
    _sql(services, [delete(AccountLogHead)])
    assert "does not match its last entry" in " ".join(check_account_log(services)[1])
    assert_error(api.patch("/api/users/audit", json={"roles": ["audit", "discipline_head"]}), 409)
    assert {u["username"]: u["roles"] for u in api.get("/api/users").json}["audit"] == ["audit"]  # not granted


CATALOG_BEHIND_THE_BACK = {
    "role defined": (["INSERT INTO roles (code, name_zh, name_en) VALUES ('mole', '内线', 'Mole')"],
                     "role mole has no account log entry"),
    "role renamed": (["UPDATE roles SET name_zh = '纪委书记' WHERE code = 'audit'"],
                     "role audit is defined as {'name_zh': '纪委书记'"),
    "head role changed": (["UPDATE roles SET head_role = 'discipline_head' WHERE code = 'inspection'"],
                          "role inspection is defined as"),
    "role removed": (["DELETE FROM roles WHERE code = 'inspection'"], "records role inspection, which is gone"),
    "starter added": ([f"INSERT INTO process_starters (process_key, role) VALUES ('{VETTING}', 'audit')"],
                      f"process {VETTING} may be started by ['audit', 'committee'], the account log says "
                      "['committee']"),
    "starters removed": ([f"DELETE FROM process_starters WHERE process_key = '{VETTING}'"],
                         f"process {VETTING} may be started by [], the account log says ['committee']"),
}


@pytest.mark.parametrize("change", sorted(CATALOG_BEHIND_THE_BACK))
def test_check_names_a_role_or_starters_changed_with_sql(app, api, services, change):
    """Role definitions and starters are held to the log's role and starter entries, replayed in order (the seed
    from settings, then the admin's changes): a change with SQL is named, the service's own check clean."""
    assert api.post("/api/roles", json={"code": "inspection", "name_zh": "巡察组"}).status_code == 201
    assert api.put("/api/roles/inspection", json={"head_role": "committee"}).status_code == 200
    assert api.put(f"/api/processes/{VETTING}/starters", json={"roles": ["committee"]}).status_code == 200
    assert check_account_log(services)[1] == []
    statements, phrase = CATALOG_BEHIND_THE_BACK[change]
    _sql(services, statements)
    faults = check_account_log(services)[1]
    assert len(faults) == 1 and phrase in faults[0], faults
    result = app.test_cli_runner().invoke(args=["check", "--grace", "3600"])
    assert result.exit_code == 1 and phrase in result.output


def test_the_seed_from_settings_is_logged_as_the_system(services):
    """The template was seeded by `init-db`: each shipped role and each process's starters has its entry."""
    with services.db.unit_of_work(write=False) as session:
        seeded = session.execute(select(AccountLogEntry.action, AccountLogEntry.target).where(
            AccountLogEntry.actor == "system", AccountLogEntry.action.in_(("role.create", "process.starters")))).all()
    assert {target for action, target in seeded if action == "role.create"} >= {"org_dept", "admin", "audit_head"}
    assert ("process.starters", VETTING) in seeded
    assert check_account_log(services)[1] == []


def test_seeders_racing_seed_the_catalog_and_log_it_once(tmp_path):
    """Two processes seeding an empty catalog at once (two machines running `init-db`): they queue on the log's
    head, one writes the roles, the starters and their entries, the other finds them and writes nothing."""
    app = create_app(make_settings(tmp_path))
    services = app.extensions["cadreflow"]
    services.db.create_schema()
    assert sorted(race(partial(roles.seed, services), partial(roles.seed, services))) == [False, True]
    entries = entries_after(services, 0)
    assert [target for _, action, target, _ in entries if action == "role.create"] == list(
        services.settings["ROLES"])
    assert check_account_log(services) == (len(entries), [])
    services.db.dispose()
