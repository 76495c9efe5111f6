"""Anchors of the history: what every case's hash chain said at one moment, kept outside the database.

The chain shows any edit that was not carried through to the case's head, but it has no secret:
whoever can write the tables can rewrite an entry, recompute every later hash and move the head
along (docs/operations.md). An anchor closes that for the past: `cadreflow anchor` writes each
case's head (id, sequence, hash) to a file the operator keeps where the database's writers cannot
reach (write-once storage, another office), signed with a key kept apart from the database when
one is given. `cadreflow check --anchor FILE` then finds, for each anchored case, its entry at the
anchored sequence and compares hashes: since an entry's hash covers every entry before it, an equal
hash there proves the case's history up to the anchor unchanged, and a differing or missing one
names the case. Entries appended since the anchor are the service's ordinary work; they are left to
the chain check. The same holds for each cadre's personal-report log (report_log.py): an anchor of format 2 keeps
every cadre's log head beside the cases' (format 1, cases only, is still checked as it was); one of format 3
also keeps the account log's head (account_log.py), format 2 being checked as it was.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_

from service.db.models import AccountLogEntry, AccountLogHead, Cadre, Case, HistoryEntry, PersonalReportLog

from .check import one_snapshot
from .context import Services
from .views import MAX_ID

FORMAT = "cadreflow-anchor-3"  # cases, cadres' report logs and the account log
REPORTS_TOO = "cadreflow-anchor-2"  # written before the account log existed: still checked
CASES_ONLY = "cadreflow-anchor-1"  # written before the report logs existed: still checked
BATCH = 500
_HEX = re.compile(r"[0-9a-f]{64}")  # a SHA-256 (history hashes, the digest) or HMAC-SHA256 (the signature)


class AnchorUnusable(ValueError):
    """The anchor file cannot be checked against: not ours, altered, or its signature does not match."""


def take_anchor(services: Services, key: bytes | None = None) -> dict[str, Any]:
    """Every case's history head now, with a digest over them (and an HMAC of it under `key`)."""
    with services.db.unit_of_work(write=False) as session:
        one_snapshot(session)  # every head as of one moment
        heads = [[case_id, seq, head] for case_id, seq, head in session.execute(
            select(Case.id, Case.history_seq, Case.history_hash).where(Case.history_seq > 0).order_by(Case.id))]
        logs = [[cadre_id, seq, head] for cadre_id, seq, head in session.execute(
            select(Cadre.id, Cadre.report_seq, Cadre.report_hash).where(Cadre.report_seq > 0).order_by(Cadre.id))]
        account = session.execute(select(AccountLogHead.seq, AccountLogHead.hash).where(AccountLogHead.seq > 0)).first()
    anchor: dict[str, Any] = {"format": FORMAT, "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "cases": heads, "report_logs": logs,
                              "account_log": None if account is None else [account.seq, account.hash]}
    anchor["digest"] = _digest(anchor)
    if key is not None:
        anchor["signature"] = _sign(key, anchor["digest"])
    return anchor


def anchor_faults(services: Services, anchor: Any, key: bytes | None = None) -> list[str]:
    """The anchored cases whose history up to the anchor is no longer what it was, each named; raises
    AnchorUnusable when the anchor itself cannot be trusted (so nothing could be proven by it)."""
    heads, logs = _checked_heads(anchor, key)
    faults: list[str] = list(_account_faults(services, anchor["account_log"])) if anchor["format"] == FORMAT else []
    for start in range(0, len(heads), BATCH):
        faults.extend(_batch_faults(services, heads[start:start + BATCH]))
    for start in range(0, len(logs), BATCH):
        faults.extend(_log_faults(services, logs[start:start + BATCH]))
    return faults


def _checked_heads(anchor: Any, key: bytes | None) -> tuple[list[tuple[int, int, str]], list[tuple[str, int, str]]]:
    if not isinstance(anchor, dict) or anchor.get("format") not in (FORMAT, REPORTS_TOO, CASES_ONLY):
        raise AnchorUnusable(f"not a CadreFlow anchor (format {FORMAT}) (不是本系统的履历锚点文件)")
    cases = anchor.get("cases")
    if not isinstance(cases, list) or not all(_is_head(item) for item in cases):
        raise AnchorUnusable("the anchor's case list is malformed (锚点文件的案件列表格式错误)")
    logs = anchor.get("report_logs", []) if anchor["format"] != CASES_ONLY else []
    if not isinstance(logs, list) or not all(_is_log_head(item) for item in logs):
        raise AnchorUnusable("the anchor's report log list is malformed (锚点文件的个人事项报告日志列表格式错误)")
    account = anchor.get("account_log")
    if anchor["format"] == FORMAT and account is not None and not _is_account_head(account):
        raise AnchorUnusable("the anchor's account log head is malformed (锚点文件的账号变更记录头格式错误)")
    if not _is_hex(anchor.get("digest")) or not hmac.compare_digest(anchor["digest"], _digest(anchor)):
        raise AnchorUnusable("the anchor file was altered: its digest does not match (锚点文件已被改动)")
    if key is None and "signature" in anchor:  # its digest is unkeyed: whoever forged the heads recomputed it
        raise AnchorUnusable("the anchor is signed: checking it needs its key (--key-file) "
                             "(锚点已签名，须提供其密钥方可核验)")
    if key is not None and not (_is_hex(anchor.get("signature"))
                                and hmac.compare_digest(anchor["signature"], _sign(key, anchor["digest"]))):
        raise AnchorUnusable("the anchor's signature does not match this key (锚点签名与密钥不符)")
    return ([(int(case_id), int(seq), str(head)) for case_id, seq, head in cases],
            [(str(cadre_id), int(seq), str(head)) for cadre_id, seq, head in logs])


def _is_head(item: Any) -> bool:
    return (isinstance(item, list) and len(item) == 3 and all(type(n) is int and 0 < n <= MAX_ID for n in item[:2])
            and _is_hex(item[2]))


MAX_CADRE = 64  # the width of a cadre's id


def _is_log_head(item: Any) -> bool:
    return (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and 0 < len(item[0]) <= MAX_CADRE
            and type(item[1]) is int and 0 < item[1] <= MAX_ID and _is_hex(item[2]))


def _is_account_head(item: Any) -> bool:
    """The account log's head: [seq, hash], one chain, so no id."""
    return (isinstance(item, list) and len(item) == 2 and type(item[0]) is int and 0 < item[0] <= MAX_ID
            and _is_hex(item[1]))


def _is_hex(value: Any) -> bool:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def _batch_faults(services: Services, heads: list[tuple[int, int, str]]) -> Iterator[str]:
    with services.db.unit_of_work(write=False) as session:
        found = {(case_id, seq): entry_hash for case_id, seq, entry_hash in session.execute(
            select(HistoryEntry.case_id, HistoryEntry.seq, HistoryEntry.hash).where(
                tuple_(HistoryEntry.case_id, HistoryEntry.seq).in_([(case_id, seq) for case_id, seq, _ in heads])))}
        existing = set(session.scalars(select(Case.id).where(Case.id.in_([case_id for case_id, _, _ in heads]))))
    for case_id, seq, anchored in heads:
        if case_id not in existing:
            yield (f"case {case_id}: 锚定时存在的案件已不在库中 (the case, anchored at history entry {seq}, "
                   "is gone from the database)")
        elif (case_id, seq) not in found:
            yield (f"case {case_id}: 锚定的第 {seq} 条履历已不存在 (history entry {seq}, anchored, is gone: "
                   "entries were deleted)")
        elif not hmac.compare_digest(found[case_id, seq], anchored):
            yield (f"case {case_id}: 第 {seq} 条及之前的履历与锚点不符，锚定后被改写 (the history up to entry {seq} "
                   "differs from the anchor: it was rewritten after the anchor was taken)")


def _account_faults(services: Services, head: list[Any] | None) -> Iterator[str]:
    """As `_batch_faults`, for the account log's one chain (nothing anchored when it was empty)."""
    if head is None:
        return
    seq, anchored = head
    with services.db.unit_of_work(write=False) as session:
        found = session.scalar(select(AccountLogEntry.hash).where(AccountLogEntry.seq == seq))
    if found is None:
        yield (f"account log: 锚定的第 {seq} 条账号变更记录已不存在 (account log entry {seq}, anchored, is gone: "
               "entries were deleted)")
    elif not hmac.compare_digest(found, anchored):
        yield (f"account log: 第 {seq} 条及之前的账号变更记录与锚点不符，锚定后被改写 (the account log up to entry "
               f"{seq} differs from the anchor: it was rewritten after the anchor was taken)")


def _log_faults(services: Services, heads: list[tuple[str, int, str]]) -> Iterator[str]:
    """As `_batch_faults`, for cadres' personal-report logs."""
    with services.db.unit_of_work(write=False) as session:
        found = {(cadre_id, seq): entry_hash for cadre_id, seq, entry_hash in session.execute(
            select(PersonalReportLog.cadre_id, PersonalReportLog.seq, PersonalReportLog.hash).where(
                tuple_(PersonalReportLog.cadre_id, PersonalReportLog.seq).in_([(c, seq) for c, seq, _ in heads])))}
    for cadre_id, seq, anchored in heads:
        if (cadre_id, seq) not in found:
            yield (f"cadre {cadre_id}: 锚定的第 {seq} 条个人事项报告日志已不存在 (personal-report log entry {seq}, "
                   "anchored, is gone: entries were deleted)")
        elif not hmac.compare_digest(found[cadre_id, seq], anchored):
            yield (f"cadre {cadre_id}: 第 {seq} 条及之前的个人事项报告日志与锚点不符，锚定后被改写 "
                   f"(the personal-report log up to entry {seq} differs from the anchor: it was rewritten after the "
                   "anchor was taken)")


def _digest(anchor: dict[str, Any]) -> str:
    covered = {"format": anchor.get("format"), "taken_at": anchor.get("taken_at"), "cases": anchor.get("cases")}
    if anchor.get("format") != CASES_ONLY:  # format 1's digest stays what it was
        covered["report_logs"] = anchor.get("report_logs")
    if anchor.get("format") == FORMAT:  # and format 2's
        covered["account_log"] = anchor.get("account_log")
    return hashlib.sha256(json.dumps(covered, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _sign(key: bytes, digest: str) -> str:
    return hmac.new(key, b"cadreflow-anchor:" + digest.encode(), hashlib.sha256).hexdigest()
