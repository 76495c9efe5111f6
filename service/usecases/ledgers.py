"""The integrity and conduct ledgers 廉政台账、作风台账 (PROCESSES.md §10): read from the records, never typed twice.

Integrity (廉政): sanctions, accountability cases, departure audits with findings, personal reports made
late or found unreported, public reports linked to the cadre. Conduct (作风): admonishments, assessment
grades, 述职述廉 results, learning compliance by year, rotation reviews. Entries are `{on, kind, summary,
codes, case_id?}`, newest first. An entry that is a case (an admonishment, a public report, an audit's
findings, …) tells of that case's data and state, so it is left out when the caller may not read the case
(need to know: lists leave out what their reader may not read); an entry from the cadre's own record (a
sanction, a personal report, a grade, a 述职述廉 result, learning), which the caller reads with the cadre,
stays, without a link to a case it may not read.

A summary is for people, so it names every code in words: a process's own fields (an admonishment's
`trigger`, a public report's `channel`, …) by the option titles of the case's deployed forms, the codes the
UI has tables for (sanctions, grades, report kinds, statuses, outcomes) by `label`, which the HTTP layer
passes in with its translatable names. `codes` keeps the codes themselves, for clients that filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from service.db.models import Assessment, Cadre, Case, Disclosure, PersonalReport, Sanction
from service.errors import BadRequest, Invalid

from . import access_log, learning, policy, queries
from .context import Actor, Label, Services

KINDS = ("integrity", "conduct")
KIND_NAMES = {"integrity": "廉政台账", "conduct": "作风台账"}
# The entry types of each ledger, what the `type` filter takes.
TYPES = {"integrity": ("sanction", "accountability", "audit_finding", "public_report", "personal_report"),
         "conduct": ("admonishment", "assessment", "integrity_review", "learning", "rotation_review")}
ENTRY_TYPES = (*TYPES["integrity"], *TYPES["conduct"])
# Entries read from a case itself, not from the cadre's record: shown only to readers of that case.
CASE_ENTRIES = frozenset({"accountability", "audit_finding", "public_report", "admonishment", "rotation_review"})
FINDINGS = ("minor", "major")  # departure-audit findings that are entries (none is not a finding)


def _code(_table: str, code: str | None) -> str:
    return code or ""


def ledger(services: Services, actor: Actor, cadre_id: str, kind: Any, since: date | None = None,
           until: date | None = None, label: Label | None = None, types: Any = None,
           most: int | None = None) -> dict[str, Any]:
    """A cadre's ledger of one kind, if the caller may read the cadre (else 404, like an unknown id): the
    entries on `since`..`until` and of `types` (entry types of that ledger) when given; codes in the
    summaries named by `label` (see the module). More than LEDGER_MAX_ROWS entries (`most` for a printed one) are
    refused (422), read by nobody, never answered in part: narrowed, the ledger answers whole."""
    kind = check_kind(kind)
    chosen = check_types(types, TYPES[kind])
    queries.check_period(since, until)
    with services.db.unit_of_work(write=False) as session:
        cadre = policy.readable_cadre(session, actor, cadre_id)
        items = ledger_items(services, session, actor, cadre, kind, label, Chosen(since, until, chosen), most)
        view = {"cadre": {"id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post},
                "kind": kind, "title": KIND_NAMES[kind], "items": items,
                "from": since.isoformat() if since else None, "to": until.isoformat() if until else None,
                "types": sorted(chosen, key=ENTRY_TYPES.index) if chosen else None}
    access_log.note(services, actor, "ledger", cadre_id=cadre_id)
    return view


def check_size(services: Services, items: list[dict[str, Any]], printed: int | None = None) -> None:
    """At most LEDGER_MAX_ROWS entries in one answer, `printed` in a printed ledger (422 past it): 10,000 took
    1.9 s and 1.5 MB of JSON. Called as entries are read, so a ledger past it is refused at one entry more, its
    other entries never read: the message says "at least"."""
    most = size_limit(services, printed)
    if len(items) <= most:
        return
    printing = most < int(services.settings["LEDGER_MAX_ROWS"])  # the print's own limit is the tighter one
    limit, then, holds = ("打印上限", "后再打印", "a printed ledger holds") if printing else (
        "单次查看上限", "", "one answer holds")
    raise Invalid(f"该台账至少有 {len(items)} 条记录，超过{limit} {most} 条，请缩小时间段或事项类别{then} "
                  f"(the ledger has at least {len(items)} entries, more than the {most} {holds}: narrow the period "
                  "or the entry types)")


def size_limit(services: Services, printed: int | None = None) -> int:
    """The most entries one ledger may hold: LEDGER_MAX_ROWS, and no more than `printed` in a printed one."""
    answered = int(services.settings["LEDGER_MAX_ROWS"])
    return answered if printed is None else min(printed, answered)


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise BadRequest("kind must be integrity or conduct (台账类型须为 integrity 廉政 或 conduct 作风)")
    return str(kind)


def check_types(types: Any, allowed: tuple[str, ...]) -> frozenset[str] | None:
    """The entry types asked for (None when none: every type); an unknown one is a 400 naming the choices."""
    if not types:
        return None
    chosen = [types] if isinstance(types, str) else list(types)
    unknown = [t for t in chosen if t not in allowed]
    if unknown:
        named = ", ".join(map(str, unknown))
        raise BadRequest(f"unknown entry type {named}; one of {', '.join(allowed)} (未知的台账事项类别：{named})",
                      {"type": f"可选 (one of)：{', '.join(allowed)}"})
    return frozenset(chosen)


@dataclass(frozen=True)
class Chosen:
    """The filter of a ledger: entries on `since`..`until` and of `types`, each only when given."""

    since: date | None = None
    until: date | None = None
    types: frozenset[str] | None = None

    def keeps(self, item: dict[str, Any]) -> bool:
        return ((self.since is None or item["on"] >= self.since.isoformat())
                and (self.until is None or item["on"] <= self.until.isoformat())
                and (self.types is None or item["kind"] in self.types))

    def wants(self, entry: str) -> bool:
        return self.types is None or entry in self.types


# The processes whose cases are entries of each ledger, and the entry type each makes.
CASE_SOURCES = {"integrity": {"accountability": "accountability", "departure_audit": "audit_finding",
                              "public_report": "public_report"},
                "conduct": {"admonishment": "admonishment", "rotation_review": "rotation_review"}}


def ledger_items(services: Services, session: Session, actor: Actor, cadre: Cadre, kind: str,
                 label: Label | None = None, chosen: Chosen = Chosen(),
                 most: int | None = None) -> list[dict[str, Any]]:
    """The ledger's entries `chosen` keeps, newest first; past the limit (`check_size`, `most` printed) a 422 as
    soon as one entry more than it is read: cases are read in pages of the limit plus one, so a cadre with 10,000
    cases is refused after the first page that fills it, not after reading them all."""
    words = Words(services, label or _code)
    items: list[dict[str, Any]] = []
    page = size_limit(services, most) + 1
    processes = [process for process, entry in CASE_SOURCES[kind].items() if chosen.wants(entry)]
    for cases in _case_pages(session, cadre, processes, page):
        readable = policy.readable_case_ids(session, actor, [c.id for c in cases])
        entries = (_integrity_cases if kind == "integrity" else _conduct_cases)(session, cases, words)
        items += [item for item in entries if item["case_id"] in readable and chosen.keeps(item)]
        check_size(services, items, most)
    records = [item for item in (_integrity_records if kind == "integrity" else _conduct_records)(
        session, cadre, words, chosen) if chosen.keeps(item)]
    readable = policy.readable_case_ids(session, actor, [item["case_id"] for item in records])
    items += [{**item, "case_id": item["case_id"] if item["case_id"] in readable else None} for item in records]
    check_size(services, items, most)
    return sorted(items, key=lambda item: (item["on"], item.get("case_id") or 0), reverse=True)


def _case_pages(session: Session, cadre: Cadre, processes: list[str], size: int) -> Iterator[list[Case]]:
    """The cadre's cases of `processes`, `size` at a time in id order (keyset: each page one indexed read)."""
    after = 0
    while processes:
        # Not the engine state nor the search text, which no entry tells of: a case's state is most of its row.
        cases = list(session.scalars(select(Case).where(Case.cadre_id == cadre.id, Case.process_key.in_(processes),
                                                        Case.id > after).order_by(Case.id).limit(size)
                                     .options(defer(Case.state), defer(Case.search_text))))
        if cases:
            yield cases
        if len(cases) < size:
            return
        after = cases[-1].id


@dataclass
class Words:
    """Codes in words: a case's own field by the option titles of its process version's forms (the start
    form first; a designer's new code without one stays a code), the UI's codes by `label`."""

    services: Services
    label: Label
    _titles: dict[int, dict[str, dict[str, str]]] = field(default_factory=dict)

    def option(self, case: Case | None, name: str, code: Any) -> str:
        if code is None or code == "":
            return "-"
        titles = self._of(case).get(name, {}) if case is not None else {}
        return titles.get(str(code), str(code))

    def day(self, moment: datetime) -> date:
        """The county's date of a stored moment (TIMEZONE): a report at 20:00 UTC is filed on the next day there."""
        return moment.astimezone(self.services.zone).date()

    def state(self, case: Case) -> str:
        """Where a case stands: 办理中, 已撤销, or 已办结 with its outcome."""
        status = self.label("status", case.status) or case.status
        return f"{status}：{self.label('outcome', case.outcome) or '-'}" if case.status == "completed" else status

    def _of(self, case: Case) -> dict[str, dict[str, str]]:
        found = self._titles.get(case.process_version_id)
        if found is None:
            definition = self.services.definitions.get(case.process_version)
            found = {}
            for form in (definition.start_form, *definition.forms.values()):
                for name, titles in _option_titles(form).items():
                    found.setdefault(name, titles)
            self._titles[case.process_version_id] = found
        return found


def _option_titles(form: Any) -> dict[str, dict[str, str]]:
    """`{field: {code: title}}` of a form's choices (`enum` with `x-enumNames`; a designer's odd form gives
    nothing rather than an error)."""
    properties = form.get("properties") if isinstance(form, dict) else None
    found: dict[str, dict[str, str]] = {}
    for name, prop in (properties or {}).items():
        names = prop.get("x-enumNames") if isinstance(prop, dict) else None
        if isinstance(names, list) and isinstance(prop.get("enum"), list):
            found[name] = {str(code): str(title) for code, title in zip(prop["enum"], names, strict=False)}
    return found


def _entry(on: date, kind: str, summary: str, codes: dict[str, Any], case_id: int | None = None) -> dict[str, Any]:
    return {"on": on.isoformat(), "kind": kind, "summary": summary,
            "codes": {name: code for name, code in codes.items() if code not in (None, "", [])}, "case_id": case_id}


def _case_codes(case: Case, *names: str) -> dict[str, Any]:
    data = case.data or {}
    return {**{name: data.get(name) for name in names}, "status": case.status, "outcome": case.outcome}


def _integrity_cases(session: Session, cases: list[Case], words: Words) -> list[dict[str, Any]]:
    items = []
    found_on = _findings_made_on(session, cases, words)
    for case in cases:
        data = case.data or {}
        if case.process_key == "accountability":
            items.append(_entry(words.day(case.created_at), "accountability",
                                f"问责（{words.option(case, 'source', data.get('source'))}，"
                                f"{words.option(case, 'category', data.get('category'))}）：{words.state(case)}",
                                _case_codes(case, "source", "category"), case.id))
        elif case.process_key == "departure_audit" and data.get("findings") in FINDINGS and case.status != "cancelled":
            items.append(_entry(found_on[case.id], "audit_finding",
                                f"离任审计发现问题（{words.option(case, 'findings', data['findings'])}，"
                                f"涉及金额 {data.get('amount_involved', 0)}）",
                                {"findings": data["findings"]}, case.id))
        elif case.process_key == "public_report":
            items.append(_entry(words.day(case.created_at), "public_report",
                                f"信访举报（{words.option(case, 'channel', data.get('channel'))}，"
                                f"{words.option(case, 'category', data.get('category'))}）：{words.state(case)}",
                                _case_codes(case, "channel", "category"), case.id))
    return items


def _integrity_records(session: Session, cadre: Cadre, words: Words, chosen: Chosen) -> list[dict[str, Any]]:
    items = []
    if chosen.wants("sanction"):
        items += [_entry(s.decided_on, "sanction", f"处分：{words.label('sanction', s.sanction)}",
                         {"sanction": s.sanction}, s.case_id)
                  for s in session.scalars(select(Sanction).where(Sanction.cadre_id == cadre.id))]
    reports: list[PersonalReport] = list(session.scalars(select(PersonalReport).where(
        PersonalReport.cadre_id == cadre.id, PersonalReport.late | PersonalReport.found_unreported))) \
        if chosen.wants("personal_report") else []
    for report in reports:
        what = "发现未报告" if report.found_unreported else "逾期报告"
        items.append(_entry(report.reported_on, "personal_report",
                            f"个人有关事项{what}（{words.label('report_kind', report.kind)}）：{report.summary}",
                            {"report_kind": report.kind,
                             "violation": "found_unreported" if report.found_unreported else "late"},
                            report.case_id))
    return items


def _findings_made_on(session: Session, cases: list[Case], words: Words) -> dict[int, date]:
    """The county day each departure audit among `cases` made its findings (queries.findings_made_at), in one query."""
    audits = [case.id for case in cases if case.process_key == "departure_audit"]
    if not audits:
        return {}
    rows = session.execute(select(Case.id, queries.findings_made_at()).where(Case.id.in_(audits)))
    return {case_id: words.day(moment) for case_id, moment in rows}


def _conduct_cases(_session: Session, cases: list[Case], words: Words) -> list[dict[str, Any]]:
    items = []
    for case in cases:
        data = case.data or {}
        if case.process_key == "admonishment":
            items.append(_entry(words.day(case.created_at), "admonishment",
                                f"诫勉（{words.option(case, 'trigger', data.get('trigger'))}）：{words.state(case)}",
                                _case_codes(case, "trigger"), case.id))
        elif case.process_key == "rotation_review":
            items.append(_entry(words.day(case.created_at), "rotation_review",
                                f"轮岗交流（{words.option(case, 'rule', data.get('rule'))}，"
                                f"任现职 {data.get('years_in_post', '-')} 年）：{words.state(case)}",
                                _case_codes(case, "rule"), case.id))
    return items


def _conduct_records(session: Session, cadre: Cadre, words: Words, chosen: Chosen) -> list[dict[str, Any]]:
    items = []
    grades = list(session.scalars(select(Assessment).where(Assessment.cadre_id == cadre.id))) \
        if chosen.wants("assessment") else []
    graded_ids = {grade.case_id for grade in grades if grade.case_id is not None}
    by_id = {case.id: case for case in session.scalars(select(Case).where(
        Case.id.in_(graded_ids), Case.cadre_id == cadre.id).options(defer(Case.state), defer(Case.search_text)))} \
        if graded_ids else {}
    for grade in grades:
        graded = by_id.get(grade.case_id)
        on = words.day(graded.updated_at) if graded is not None else date(grade.year, 12, 31)
        measure = f"，组织处理：{words.option(graded, 'measure', grade.measure)}" if grade.measure else ""
        items.append(_entry(on, "assessment", f"{grade.year} 年度考核：{words.label('grade', grade.grade)}{measure}",
                            {"grade": grade.grade, "measure": grade.measure}, grade.case_id))
    reviews: list[Disclosure] = list(session.scalars(select(Disclosure).where(
        Disclosure.cadre_id == cadre.id, Disclosure.result.is_not(None)))) if chosen.wants("integrity_review") else []
    for review in reviews:
        items.append(_entry(review.concluded_on or date(review.year, 12, 31), "integrity_review",
                            f"{review.year} 年度述职述廉社会评议：{words.label('integrity_result', review.result)}",
                            {"result": review.result}, review.case_id))
    for year in learning.yearly_compliance(session, cadre.id) if chosen.wants("learning") else []:
        shortfalls = year["shortfalls"]
        state = "达标" if year["compliant"] else "未达标：" + "、".join(
            f"{learning.KIND_NAMES.get(k, k)}差 {v:g}" for k, v in shortfalls.items())
        items.append(_entry(date(year["year"], 12, 31), "learning", f"{year['year']} 年度学习：{state}",
                            {"result": "compliant" if year["compliant"] else "shortfall",
                             "shortfalls": sorted(shortfalls)}))
    return items


def ledger_document(services: Services, actor: Actor, cadre_id: str, kind: Any, since: date | None = None,
                    until: date | None = None, label: Label | None = None, types: Any = None) -> dict[str, Any]:
    """The ledger as a printable document (service/printing.py, template documents/ledger.html): at most
    PDF_MAX_ROWS entries, since one printing holds the process's only printer for all of them (3,001 took 53 s
    and 300 MB); a wider ledger is refused whole, never printed in part."""
    view = ledger(services, actor, cadre_id, kind, since, until, label, types,
                  most=int(services.settings["PDF_MAX_ROWS"]))
    dates = [item["on"] for item in view["items"]]
    first, last = view["from"] or min(dates, default=None), view["to"] or max(dates, default=None)
    period = f"{first or '—'} 至 {last or '—'}" if first or last else "—"
    names = {entry: (label or _code)("ledger_entry", entry) for entry in ENTRY_TYPES}
    return {**view, "kind": "ledger", "ledger_kind": view["kind"], "case_id": None, "period": period,
            "title": f"干部{view['title']}", "kind_names": names, "today": services.today().isoformat(),
            "type_names": "、".join(names[t] for t in view["types"]) if view["types"] else None}


def both_ledgers(services: Services, actor: Actor, cadre_id: str, label: Label | None = None,
                 since: date | None = None, until: date | None = None,
                 types: Any = None) -> dict[str, list[dict[str, Any]]]:
    """Both ledgers' entries of a cadre the caller may read (for the cadre page), on `since`..`until` and of
    `types` (entry types of either ledger) when given; either past LEDGER_MAX_ROWS entries is a 422 (`check_size`)."""
    chosen = check_types(types, ENTRY_TYPES)
    queries.check_period(since, until)
    with services.db.unit_of_work(write=False) as session:
        cadre = policy.readable_cadre(session, actor, cadre_id)
        return {kind: ledger_items(services, session, actor, cadre, kind, label, Chosen(since, until, chosen))
                for kind in KINDS}
