"""The account log: every change of who may log in and with which roles, one hash chain for the whole log.

Each change (an account created, its roles, its deactivation or reactivation, a password set by an admin or by
its owner, a role defined or changed, a process's starters) appends one entry in the same unit of work as the
change, so a change is never without its entry nor an entry without its change; a refused change rolls both back.
An entry says who, what, on what (`target`) and what changed (`detail`, before and after), never a password, hash
or token (an entry setting a password names a digest of its hash: chain.password_digest). Appends lock the log's one
head row, so two changes at once never fork the chain; `check_account_log` (part of `cadreflow check`) recomputes
the chain, so an entry rewritten, deleted or slipped in with SQL is named, and holds each account's roles and whether
it may log in to what its entries say: a role granted, or an account made or reactivated, with SQL behind the
service's back is named too; so is each role's definition and each process's starters (the seed from settings is
logged as `system`), and each account's password hash and whether its owner must replace an admin-set password (a
hash written with SQL, to log in as someone, is named), and each account's address and digest choice (an address
written with SQL, to have someone's notices about cases mailed elsewhere, is named). Accounts that existed before the
log each got one `user.backfill` entry from migration 0027, roles and starters seeded before 0029 a `role.backfill`
or `process.backfill` entry from it, passwords stored before 0032 a `user.password_backfill`, mail settings stored
before 0033 a `user.mail_backfill`, saying what they were then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.db.chain import GENESIS, account_entry_hash, password_digest, stored_json
from service.db.models import AccountLogEntry, AccountLogHead, ProcessStarter, Role, User, utcnow
from service.db.uow import insert_skipping_duplicates

from . import policy, queries
from .context import SYSTEM, Actor, Services

PER_PAGE = 50
HEAD_ID = 1
# Actions whose target is a username (the others name a role code or a process key).
USER_ACTIONS = ("user.create", "user.roles", "user.activate", "user.deactivate", "user.password_reset",
                "user.password_change", "user.mail", "user.backfill", "user.password_backfill", "user.mail_backfill")
# Entries that set a password and (since 0032) say which, by PASSWORD_KEY: a digest of its hash, never the hash.
PASSWORD_ACTIONS = ("user.create", "user.password_reset", "user.password_change", "user.password_backfill")
PASSWORD_KEY = "password_hash_sha256"
MAIL_FIELDS = ("email", "mail_digest")  # as mailing.mail_settings_view shows them: "" for no address


def record(session: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append one entry, chained to the one before (the only way to add one). Called last in the change's unit of
    work: the head's row lock is then held only until the commit, and nothing locked after it can deadlock."""
    head = lock_head(session)
    entry = AccountLogEntry(seq=head.seq + 1, at=utcnow(), actor=actor, action=action, target=target,
                            detail=stored_json(detail or {}))
    entry.hash = account_entry_hash(entry, head.hash or GENESIS)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.flush()


def lock_head(session: Session) -> AccountLogHead:
    """The log's head, locked until the commit: what appends (and seeding roles, which must happen once) queue on."""
    # Migration 0027 writes the row. One deleted with SQL is written again at 0: an empty log goes on, and one with
    # entries refuses the next append on entry 1's unique sequence (409) until the head is restored; `check` names
    # the head that does not match its last entry either way.
    query = select(AccountLogHead).where(AccountLogHead.id == HEAD_ID).with_for_update()
    head = session.scalars(query.execution_options(populate_existing=True)).one_or_none()
    if head is None:
        dialect = session.get_bind().dialect.name
        session.execute(insert_skipping_duplicates(dialect, AccountLogHead).values(id=HEAD_ID, seq=0, hash=None))
        head = session.scalars(query.execution_options(populate_existing=True)).one()
    return head


def password_detail(user: User) -> dict[str, Any]:
    """What an entry setting a user's password says of it (the digest of the hash just stored)."""
    return {PASSWORD_KEY: password_digest(user.password_hash)}


def changed(before: Any, after: Any) -> dict[str, Any]:
    """The detail of one value changed."""
    return {"before": before, "after": after}


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The detail of the values of `after` that differ from `before`."""
    return {key: changed(before[key], after[key]) for key in after if before[key] != after[key]}


def read_log(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """One page of the log, newest first, filtered by `username` (who acted, or whose account changed);
    discipline_head (and admin) reads it, as the access log. A page past the last is empty."""
    policy.require(actor, "account_log.read")
    query = select(AccountLogEntry)
    username = filters.get("username")
    if username is not None:
        query = query.where(or_(AccountLogEntry.actor == username, and_(
            AccountLogEntry.target == username, AccountLogEntry.action.in_(USER_ACTIONS))))
    page, per_page = filters.get("page") or 1, filters.get("per_page") or PER_PAGE
    with services.db.unit_of_work(write=False) as session:
        rows, where = queries.page_of(session, query.order_by(AccountLogEntry.seq.desc()), page, per_page,
                                      clamp=False)
        return {"items": [entry_view(row) for row in rows], **where}


def entry_view(entry: AccountLogEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": entry.detail}


LOG_COLUMNS = (AccountLogEntry.id, AccountLogEntry.seq, AccountLogEntry.at, AccountLogEntry.actor,
               AccountLogEntry.action, AccountLogEntry.target, AccountLogEntry.detail, AccountLogEntry.hash)


def check_account_log(services: Services) -> tuple[int, list[str]]:
    """Recompute the whole chain against its head; returns how many entries were read and the faults. Account
    changes are few (thousands in a county's lifetime), so one read holds them all."""
    from .check import ChainNames, chain_faults, one_snapshot  # check.py imports users.py, which writes this log

    with services.db.unit_of_work(write=False) as session:
        one_snapshot(session)
        head = session.execute(select(AccountLogHead.seq, AccountLogHead.hash).where(
            AccountLogHead.id == HEAD_ID)).first()
        entries = list(session.execute(select(*LOG_COLUMNS).order_by(AccountLogEntry.id)))
        users = list(session.scalars(select(User)))
        accounts = {user.username: (user.role_keys, bool(user.active)) for user in users}
        passwords = {user.username: (password_digest(user.password_hash), bool(user.must_change_password))
                     for user in users}
        mail = {user.username: {"email": user.email or "", "mail_digest": bool(user.mail_digest)} for user in users}
        catalog = _stored_catalog(session)
    found = (0, None) if head is None else (head.seq, head.hash)
    names = ChainNames("账号变更记录", "account log", "账号变更记录头", "account log head")
    faults = [*chain_faults(entries, found, account_entry_hash, names), *_account_faults(entries, accounts),
              *_password_faults(password_states(entries), passwords), *_mail_faults(mail_states(entries), mail),
              *_catalog_faults(catalog_states(entries), catalog)]
    return len(entries), [f"account log: {fault}" for fault in faults]


def account_states(entries: list[Any]) -> dict[str, tuple[list[str], bool]]:
    """Each account's roles and whether it may log in, as the log's entries, replayed in order, leave them."""
    states: dict[str, tuple[list[str], bool]] = {}
    for entry in entries:
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        roles, active = states.get(entry.target, ([], True))
        if entry.action in ("user.create", "user.backfill"):
            states[entry.target] = (sorted(detail.get("roles") or []), bool(detail.get("active", True)))
        elif entry.action == "user.roles":
            states[entry.target] = (sorted((detail.get("roles") or {}).get("after") or []), active)
        elif entry.action in ("user.activate", "user.deactivate"):
            states[entry.target] = (roles, entry.action == "user.activate")
    return states


def _account_faults(entries: list[Any], accounts: dict[str, tuple[list[str], bool]]) -> Iterator[str]:
    """Accounts whose roles or login differ from what the log says of them, made without an entry, or gone."""
    logged = account_states(entries)
    for username in sorted(set(accounts) - set(logged)):
        yield f"user {username} has no account log entry: made behind the service's back (账号无变更记录，可能被伪造)"
    for username in sorted(set(logged) - set(accounts)):
        yield f"the account log records user {username}, which is gone (账号变更记录所载账号已不存在，可能被删除)"
    for username in sorted(set(logged) & set(accounts)):
        (roles, active), (logged_roles, logged_active) = accounts[username], logged[username]
        if roles != logged_roles:
            yield (f"user {username} holds roles {roles}, the account log says {logged_roles} "
                   f"(账号角色与账号变更记录不符，可能被改动)")
        if active != logged_active:
            yield (f"user {username} is {'active' if active else 'deactivated'}, the account log says otherwise "
                   f"(账号启用状态与账号变更记录不符，可能被改动)")


def password_states(entries: list[Any]) -> dict[str, tuple[str, bool]]:
    """Each account's password (its hash's digest) and whether its owner must replace it at the next web login, as
    the last entry that set it says (an admin setting someone else's is known to the admin: users.py). Entries from
    before 0032 name no digest and are passed over: 0032's backfill vouches for what was stored then."""
    states: dict[str, tuple[str, bool]] = {}
    for entry in entries:
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if entry.action in PASSWORD_ACTIONS and isinstance(detail.get(PASSWORD_KEY), str):
            states[entry.target] = (detail[PASSWORD_KEY], _must_change(entry, detail))
    return states


def _must_change(entry: Any, detail: dict[str, Any]) -> bool:
    """Whether the password an entry set must be replaced: one an admin set for someone else (as users.py decides),
    or, for a backfill, what was stored then."""
    if entry.action == "user.password_backfill":
        return bool(detail.get("must_change_password"))
    return entry.action != "user.password_change" and entry.actor not in (SYSTEM.username, entry.target)


def _password_faults(logged: dict[str, tuple[str, bool]], stored: dict[str, tuple[str, bool]]) -> Iterator[str]:
    """Accounts whose password hash is not the one the log vouches for (written with SQL: whoever wrote it knows the
    password and logs in as its owner), or whose demand to replace an admin-set password was lifted behind the
    service's back. An account without a logged password is named by `_account_faults` already."""
    for username in sorted(set(logged) & set(stored)):
        (digest, must_change), (logged_digest, logged_must_change) = stored[username], logged[username]
        if digest != logged_digest:
            yield (f"user {username}'s password is not the one the account log last set: it was replaced behind the "
                   f"service's back (账号密码与账号变更记录不符，可能被改动)")
        elif must_change != logged_must_change:
            yield (f"user {username} {'must' if must_change else 'need not'} replace its password at the next login, "
                   f"the account log says otherwise (账号须改密标记与账号变更记录不符，可能被改动)")


def mail_states(entries: list[Any]) -> dict[str, dict[str, Any]]:
    """Each account's address and digest choice, as the log's entries, replayed in order, leave them: none when
    made (users.py sets none), each `user.mail` entry's changes after, or what 0033's backfill found then."""
    states: dict[str, dict[str, Any]] = {}
    for entry in entries:
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if entry.action in ("user.create", "user.backfill"):
            states[entry.target] = {"email": "", "mail_digest": False}
        elif entry.action == "user.mail_backfill":
            states[entry.target] = {field: detail.get(field) for field in MAIL_FIELDS}
        elif entry.action == "user.mail":
            states[entry.target] = {**states.get(entry.target, {}), **{
                field: value.get("after") for field, value in detail.items()
                if field in MAIL_FIELDS and isinstance(value, dict)}}
    return states


def _mail_faults(logged: dict[str, dict[str, Any]], stored: dict[str, dict[str, Any]]) -> Iterator[str]:
    """Accounts whose address or digest choice is not what the log says (written with SQL: a user's notices about
    cases mailed to someone else's mailbox, or to none). An account without an entry is named by
    `_account_faults` already."""
    for username in sorted(set(logged) & set(stored)):
        if stored[username] != logged[username]:
            yield (f"user {username}'s mail settings are {stored[username]}, the account log says {logged[username]} "
                   f"(账号邮件设置与账号变更记录不符，可能被改动)")


Catalog = tuple[dict[str, dict[str, Any]], dict[str, list[str]]]  # role definitions by code, starters by process
ROLE_FIELDS = ("name_zh", "name_en", "head_role")


def _stored_catalog(session: Session) -> Catalog:
    roles = {row.code: {field: getattr(row, field) for field in ROLE_FIELDS} for row in session.scalars(select(Role))}
    starters: dict[str, list[str]] = {}
    for key, role in session.execute(select(ProcessStarter.process_key, ProcessStarter.role)):
        starters.setdefault(key, []).append(role)
    return roles, {key: sorted(found) for key, found in starters.items()}


def catalog_states(entries: list[Any]) -> Catalog:
    """Each role's definition and each process's starters, as the log's entries, replayed in order, leave them."""
    roles: dict[str, dict[str, Any]] = {}
    starters: dict[str, list[str]] = {}
    for entry in entries:
        detail = entry.detail if isinstance(entry.detail, dict) else {}
        if entry.action in ("role.create", "role.backfill"):
            roles[entry.target] = {field: detail.get(field) for field in ROLE_FIELDS}
        elif entry.action == "role.update":
            roles[entry.target] = {**roles.get(entry.target, {}), **{
                field: value.get("after") for field, value in detail.items()
                if field in ROLE_FIELDS and isinstance(value, dict)}}
        elif entry.action == "process.starters":
            starters[entry.target] = sorted((detail.get("roles") or {}).get("after") or [])
        elif entry.action == "process.backfill":
            starters[entry.target] = sorted(detail.get("roles") or [])
    return roles, starters


def _catalog_faults(logged: Catalog, stored: Catalog) -> Iterator[str]:
    """Roles defined, changed or removed and starters changed behind the service's back (a role the log knows only
    from `role.update` entries is held to the fields they name)."""
    (logged_roles, logged_starters), (roles, starters) = logged, stored
    for code in sorted(set(roles) - set(logged_roles)):
        yield f"role {code} has no account log entry: defined behind the service's back (角色无变更记录，可能被伪造)"
    for code in sorted(set(logged_roles) - set(roles)):
        yield f"the account log records role {code}, which is gone (账号变更记录所载角色已不存在，可能被删除)"
    for code in sorted(set(roles) & set(logged_roles)):
        said = logged_roles[code]
        if {field: roles[code][field] for field in said} != said:
            yield (f"role {code} is defined as {roles[code]}, the account log says {said} "
                   f"(角色定义与账号变更记录不符，可能被改动)")
    for key in sorted(set(starters) | set(logged_starters)):
        now, logged_now = starters.get(key, []), logged_starters.get(key, [])
        if now != logged_now:
            yield (f"process {key} may be started by {now}, the account log says {logged_now} "
                   f"(流程发起角色与账号变更记录不符，可能被改动)")
