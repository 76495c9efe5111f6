"""The account log: every change of who may log in and with which roles, one hash chain for the whole log.

Each change (an account created, its roles, its deactivation or reactivation, a password set by an admin or by
its owner, a role defined or changed, a process's starters) appends one entry in the same unit of work as the
change, so a change is never without its entry nor an entry without its change; a refused change rolls both back.
An entry says who, what, on what (`target`) and what changed (`detail`, before and after), never a password, hash
or token. Appends lock the log's one head row, so two changes at once never fork the chain; `check_account_log`
(part of `cadreflow check`) recomputes the chain, so an entry rewritten, deleted or slipped in with SQL is named,
and holds each account's roles and whether it may log in to what its entries say: a role granted, or an account
made or reactivated, with SQL behind the service's back is named too. Accounts that existed before the log each
got one `user.backfill` entry from migration 0027 saying what they held then.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service.db.chain import GENESIS, account_entry_hash, stored_json
from service.db.models import AccountLogEntry, AccountLogHead, User, utcnow
from service.db.uow import insert_skipping_duplicates

from . import policy, queries
from .context import Actor, Services

PER_PAGE = 50
HEAD_ID = 1
# Actions whose target is a username (the others name a role code or a process key).
USER_ACTIONS = ("user.create", "user.roles", "user.activate", "user.deactivate", "user.password_reset",
                "user.password_change", "user.mail", "user.backfill")


def record(session: Session, actor: str, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """Append one entry, chained to the one before (the only way to add one). Called last in the change's unit of
    work: the head's row lock is then held only until the commit, and nothing locked after it can deadlock."""
    head = _locked_head(session)
    entry = AccountLogEntry(seq=head.seq + 1, at=utcnow(), actor=actor, action=action, target=target,
                            detail=stored_json(detail or {}))
    entry.hash = account_entry_hash(entry, head.hash or GENESIS)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.flush()


def _locked_head(session: Session) -> AccountLogHead:
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
        accounts = {user.username: (user.role_keys, bool(user.active)) for user in session.scalars(select(User))}
    found = (0, None) if head is None else (head.seq, head.hash)
    names = ChainNames("账号变更记录", "account log", "账号变更记录头", "account log head")
    faults = [*chain_faults(entries, found, account_entry_hash, names), *_account_faults(entries, accounts)]
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
