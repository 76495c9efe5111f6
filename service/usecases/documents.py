"""Printable documents of a case (任前公示公告, 诫勉谈话记录, 问责决定书, 离任审计结论): what each shows.

A document exists once the task it reports on has been completed the way it needs (a notice once the
head approved the candidate, a decision once the committee approved a sanction, ...). Its content is
built here from the case's data, labelled by the process's own forms (so always in Chinese); the
views turn it into a PDF with the templates under `web/templates/documents/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, ClearedAudit, HistoryEntry, Sanction
from service.errors import NotFound
from workflows.engine.timing import add_duration
from workflows.glue.accountability import PROMOTION_BAN_MONTHS
from workflows.glue.common import add_months

from . import access_log, casefile, views
from .context import Actor, Services
from .reminders import local_zone

# A printed text keeps its paragraphs, but a run of blank lines prints as one, and past this many line breaks the
# rest run on: 2,000 characters of bare line breaks were a 189-page PDF that took the server seconds to print.
MAX_PRINTED_LINES = 100
# Nor is a text printed past this many characters (no shipped printed field takes more than 2,000): a version may
# raise a field's maxLength, and 100,000 characters held the one printer nine seconds, again at every download.
MAX_PRINTED_CHARS = 5_000
_BLANK_RUN = re.compile(r"\n(?:[^\S\n]*\n)+")


def printable(text: str) -> str:
    """A text as a document prints it: blank runs as one blank line, at most MAX_PRINTED_LINES lines and
    MAX_PRINTED_CHARS characters (then a note of how many more the case's record holds)."""
    lines = _BLANK_RUN.sub("\n\n", text.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
    if len(lines) > MAX_PRINTED_LINES:
        lines[MAX_PRINTED_LINES - 1:] = [" ".join(lines[MAX_PRINTED_LINES - 1:])]
    return _cut("\n".join(lines))


def _cut(text: str) -> str:
    rest = len(text) - MAX_PRINTED_CHARS
    return text if rest <= 0 else f"{text[:MAX_PRINTED_CHARS]}……（以下 {rest} 字未打印，全文见案件记录）"


def _always(_data: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Kind:
    """One kind of document: its process, its title, the completion it needs and the fields it shows."""

    process: str
    title: str
    task: str  # the task whose completion makes the document
    ready: Callable[[dict[str, Any]], bool]  # over the data of that task's latest completion
    fields: tuple[tuple[str, str], ...]  # (the form that labels it: "start" or a task id, the field)


KINDS: dict[str, Kind] = {
    "vetting_notice": Kind(
        "pre_appointment_vetting", "任前公示公告", "org_head_review", lambda d: d.get("decision") == "approve",
        (("start", "proposed_post"), ("start", "selection_method"))),
    "admonishment_record": Kind(
        "admonishment", "诫勉谈话记录", "conduct_talk", _always,
        (("start", "trigger"), ("start", "summary"), ("intake_review", "reason"), ("conduct_talk", "talk_date"),
         ("conduct_talk", "minutes"), ("rectification_plan", "plan"), ("follow_up_review", "rectified"))),
    "accountability_decision": Kind(
        "accountability", "问责决定书", "committee_review", lambda d: d.get("decision") in ("approve", "adjust"),
        (("start", "source"), ("start", "category"), ("start", "allegation"), ("investigation", "facts"),
         ("investigation", "circumstance"), ("investigation", "loss"), ("committee_review", "final_sanction"))),
    "departure_audit_conclusion": Kind(
        "departure_audit", "离任审计结论", "audit_fieldwork", _always,
        (("start", "departure_reason"), ("start", "planned_departure_on"), ("assign_audit_team", "team_lead"),
         ("assign_audit_team", "members"), ("audit_fieldwork", "findings"), ("audit_fieldwork", "amount_involved"),
         ("audit_fieldwork", "report_ref"), ("rectify_findings", "rectified"))),
}


def list_documents(services: Services, actor: Actor, case_id: int) -> list[dict[str, str]]:
    """The documents the case has the data for so far: `[{kind, title}]` (how far it went: logged, `documents`)."""
    return access_log.read_case(services, actor, case_id, "documents", available)


def available(session: Session, case: Case) -> list[dict[str, str]]:
    """The documents a case (already read under the policy) has the data for, inside an open session."""
    completions = _completions(session, case.id)
    return [{"kind": name, "title": kind.title} for name, kind in KINDS.items() if _ready(kind, case, completions)]


def document(services: Services, actor: Actor, case_id: int, kind_name: str) -> dict[str, Any]:
    """One document's content (404 when the case may not be read, or has no such document yet)."""
    def read(session: Session, case: Case) -> dict[str, Any]:
        completions = _completions(session, case.id)
        kind = KINDS.get(kind_name)
        if kind is None or not _ready(kind, case, completions):
            raise NotFound(f"case {case_id} has no document {kind_name} (案件没有该文书)")
        return _content(services, session, case, kind_name, kind, completions[kind.task])
    return access_log.read_case(services, actor, case_id, "document", read)


def _completions(session: Session, case_id: int) -> dict[str, HistoryEntry]:
    """The latest completion of each task of the case, by task id."""
    rows = session.scalars(select(HistoryEntry).where(HistoryEntry.case_id == case_id,
                                                      HistoryEntry.action == "complete").order_by(HistoryEntry.id))
    return {entry.task: entry for entry in rows if entry.task}


def _ready(kind: Kind, case: Case, completions: dict[str, HistoryEntry]) -> bool:
    entry = completions.get(kind.task)
    return case.process_key == kind.process and entry is not None and kind.ready((entry.detail or {}).get("data") or {})


def _content(services: Services, session: Session, case: Case, name: str, kind: Kind,
             entry: HistoryEntry) -> dict[str, Any]:
    zone = local_zone(services)
    definition = services.definitions.get(case.process_version)
    fields = {}
    for form_name, field in kind.fields:
        if field in case.data:
            form = definition.start_form if form_name == "start" else definition.forms.get(form_name, {})
            described = casefile.describe(form, {field: case.data[field]})[0]
            if isinstance(described.get("display"), str):
                described = {**described, "display": printable(described["display"])}
            fields[field] = described
    cadre = casefile.cadre_brief(session, case.cadre_id) or {}
    return {"kind": name, "title": kind.title, "case_id": case.id, "status": case.status, "outcome": case.outcome,
            "cadre": cadre, "fields": fields, "county": str(services.settings.get("COUNTY") or ""),
            "completed_on": _local_date(entry.at, zone), "completed_by": entry.actor,
            "today": services.today().isoformat(), **_extras(services, session, case, name, entry)}


def _local_date(moment: datetime, zone: Any) -> str:
    return moment.astimezone(zone).date().isoformat()


def _extras(services: Services, session: Session, case: Case, name: str, entry: HistoryEntry) -> dict[str, Any]:
    """What a kind shows beyond its fields: the notice's period, the sanction's date and ban, the audit's clearance."""
    if name == "vetting_notice":
        deadline = str(services.settings["DEADLINES"].get("public_notice") or "P5D")
        return {"notice_ends_on": _local_date(add_duration(entry.at, deadline), local_zone(services))}
    if name == "accountability_decision":
        decided = session.scalar(select(Sanction.decided_on).where(Sanction.case_id == case.id))
        return {"decided_on": views.iso(decided),
                "promotion_ban_until": views.iso(add_months(decided, PROMOTION_BAN_MONTHS) if decided else None)}
    if name == "departure_audit_conclusion":
        cleared = session.scalar(select(ClearedAudit.cleared_on).where(ClearedAudit.case_id == case.id))
        return {"cleared_on": views.iso(cleared)}
    return {}
