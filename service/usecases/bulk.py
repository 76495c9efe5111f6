"""Open cases of one process for many cadres: a timer start's firing, or a bulk start asked for by a person.

A start job works through the cadres in id order, a batch per transaction: it can stop at any moment
(a crash, a deploy) and the next worker pass resumes from its cursor; it never opens a second case
for a cadre it already opened one for (`dedupe`: an open case of the process, or a case with the same
value of a start field, such as the assessment `year`, equal as JSON: 2031 and 2031.0 are one year).
A filter that cannot be evaluated is refused when the job is asked for; a batch that still fails as a
whole (a filter failing on one cadre's fields, say) ends its job as `failed`, the error kept in `errors`,
and the jobs after it go on.

Deduping looks at every case of the process, also those the job's author may not read, so a job must not
become a way to learn of them: the filter chooses first and only chosen cadres are deduped, `field:` names a
field of the start form, and whoever does not read every case of the process sees how many chosen cadres
have their case now (`settled`), not how many were opened and how many had one already.

Each batch opens its cases as the job's author is then: a job outlives neither the author's account nor the
author's right to start the process. Deactivating the account or taking the role away ends the job as
`failed` at its next batch, as it ends the author's logins; the cases opened before stay.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, StartJob, Task, User, utcnow
from service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, Unavailable
from workflows.engine import Incident

from . import policy, queries, roles, views
from .context import SYSTEM, Actor, Services, actor_of
from .forms import primary_type
from .start_rules import DECISION_ONLY, NEVER_A_CASE, NOT_QUALIFIED
from .stepper import newest_version, start_batch

BATCH = 200
ANALYZE_EVERY = 5_000  # cases a job opens between two refreshes of the planner's statistics (PostgreSQL)
MAX_ERRORS = 20
OPEN = "open"
FAILED = "failed"  # a job whose batch failed as a whole (its error is the last of `errors`); nothing more is opened
CANCELLED = "cancelled"  # stopped by a person; the cases it opened stay
log = logging.getLogger(__name__)


def create_job(services: Services, actor: Actor, process: Any, data: Any = None, selector: Any = None,
               dedupe: Any = OPEN) -> dict[str, Any]:
    """Ask for cases of `process` for every cadre `selector` picks (default: every cadre holding a post)."""
    _check(services, actor, process, data, selector, dedupe)
    with services.db.unit_of_work() as session:
        version = newest_version(session, process)
        start_form = services.definitions.get(version).start_form
        _check_dedupe_field(start_form, dedupe)
        job = StartJob(process_key=process, data=_as_form_types(start_form, dict(data or {})),
                       selector=selector or None, dedupe=dedupe, created_by=actor.username)
        session.add(job)
        session.flush()
        return _job_view(session, actor, job)


def _check(services: Services, actor: Actor, process: Any, data: Any, selector: Any, dedupe: Any) -> None:
    fields = {}
    if not isinstance(process, str) or not process:
        fields["process"] = "必填 (required)"
    elif process in DECISION_ONLY:  # every start would be refused: no job for it
        fields["process"] = NEVER_A_CASE
    if data is not None and not isinstance(data, dict):
        fields["data"] = "必须是对象 (must be an object)"
    if selector is not None and (not isinstance(selector, str) or len(selector) > 2000):
        fields["filter"] = "必须是表达式文本 (an expression)"
    if not isinstance(dedupe, str) or not (dedupe == OPEN or dedupe.startswith("field:")):
        fields["dedupe"] = '可选 "open" 或 "field:<字段>" ("open" or "field:<name>")'
    if fields:
        raise Invalid("invalid bulk start (批量发起参数有误)", fields)
    policy.require(actor, "case.start", roles.policy_tables(services), process)
    if selector:
        _check_filter(services, selector, policy.reads_every_cadre(actor))


def _check_dedupe_field(start_form: dict[str, Any], dedupe: str) -> None:
    """`field:<name>` dedupes on a field of the process's start form (the value the job gives every case), never on
    any other key of a case's data, which would ask of cases the author may not read what they hold."""
    properties = start_form.get("properties") if isinstance(start_form, dict) else None
    if dedupe.startswith("field:") and dedupe.split(":", 1)[1] not in (properties or {}):
        raise Invalid("invalid bulk start (批量发起参数有误)",
                      {"dedupe": '"field:<字段>" 须为发起表单中的字段 (a field of the start form)'})


def _check_filter(services: Services, selector: str, whole: bool) -> None:
    """Refuse a filter that does not compile or evaluate: run it once, in the same sandbox as the job's batches,
    on what it will see of the first cadre (or of a sample cadre in an empty county; `whole`: see `_scope`)."""
    with services.db.unit_of_work(write=False) as session:
        cadre = session.scalar(select(Cadre).order_by(Cadre.id).limit(1))
        scope = _scope(cadre if cadre is not None else _sample(), whole)
    try:
        services.runner.select(selector, [scope])
    except Incident as error:
        raise Invalid("invalid bulk start (批量发起参数有误)", {"filter": _filter_problem(error)}) from error


def _sample() -> Cadre:
    """What a filter sees of a cadre when the county has none yet: a value of each field's kind."""
    return Cadre(id="c0001", name="", unit="", post="", post_level="leading", post_started_on=date(2020, 1, 1),
                 promotion_ban_until=date(2020, 1, 1))


def sample_scopes() -> list[dict[str, Any]]:
    """What a filter may see of a cadre: each field set, and a departed cadre never banned (no post, its start
    and ban null), as every county comes to have."""
    departed = Cadre(id="c0002", name="", unit="", post="", post_level="staff", post_started_on=None,
                     promotion_ban_until=None)
    return [_scope(_sample()), _scope(departed)]


def _filter_problem(error: Incident) -> str:
    detail = error.message.split("): ", 1)[-1] if error.message.startswith("filter expression failed") \
        else error.message
    return f"表达式无法执行 (the expression cannot be evaluated): {detail}"


def _as_form_types(start_form: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The shared start data with each whole number the start form types as an integer stored as one: the
    form accepts 2031.0 for an integer, and every case of the job should carry the year 2031."""
    properties = start_form.get("properties") if isinstance(start_form, dict) else None
    if not isinstance(properties, dict):
        return data
    return {name: int(value) if isinstance(value, float) and value.is_integer()
            and isinstance(prop := properties.get(name), dict) and primary_type(prop) == "integer" else value
            for name, value in data.items()}


def get_job(services: Services, actor: Actor, job_id: int) -> dict[str, Any]:
    """A job's progress."""
    with services.db.unit_of_work(write=False) as session:
        job = session.get(StartJob, job_id)
        if job is None or not policy.allows(actor, "case.start", roles.tables_in(session, services.settings),
                                                  job.process_key):
            raise NotFound(f"start job {job_id} not found (批量发起任务不存在)")
        return _job_view(session, actor, job)


def cancel_job(services: Services, actor: Actor, job_id: int) -> dict[str, Any]:
    """Stop a running job (the roles that may start its process): the cases it opened stay, no further batch
    runs. Taken under the job's row lock, so a batch running meanwhile commits first; 409 once the job ended."""
    with services.db.unit_of_work() as session:
        job = session.scalar(select(StartJob).where(StartJob.id == job_id).with_for_update())
        if job is None or not policy.allows(actor, "case.start", roles.tables_in(session, services.settings),
                                            job.process_key):
            raise NotFound(f"start job {job_id} not found (批量发起任务不存在)")
        if job.status != "running":
            raise Conflict(f"the job has already ended: {job.status} (批量发起任务已结束)")
        job.status, job.finished_at = CANCELLED, utcnow()
        log.info("bulk start job %s cancelled by %s after %s opened", job_id, actor.username, job.opened)
        return _job_view(session, actor, job)


def run_jobs(services: Services, max_batches: int | None = None) -> int:
    """Work off running jobs a batch at a time; returns how many cases were opened. A job whose batch raises
    something else than a refusal (the database, an executor that does not start) is logged and tried again
    on the next pass; the jobs after it go on meanwhile."""
    opened, batches = 0, 0
    with services.db.unit_of_work(write=False) as session:
        running = list(session.scalars(select(StartJob.id).where(StartJob.status == "running").order_by(StartJob.id)))
    for job_id in running:
        while max_batches is None or batches < max_batches:
            batches += 1
            try:
                step = run_batch(services, job_id)
            except Exception:
                log.exception("bulk start job %s: its batch failed; the next pass tries it again", job_id)
                break
            if step is None:
                break
            opened += step
    return opened


def run_batch(services: Services, job_id: int) -> int | None:
    """Open the cases of the job's next batch of cadres; None once the job is done, or has failed: a batch
    refused as a whole (its filter fails on a cadre, the engine fails the batch) opens nothing and ends the job
    as `failed` with the error (a new job with the same dedupe goes on where it stopped)."""
    try:
        return _open_batch(services, job_id)
    except Unavailable:
        raise
    except ServiceError as error:
        _fail(services, job_id, error)
        return None


def _fail(services: Services, job_id: int, error: ServiceError) -> None:
    with services.db.unit_of_work() as session:
        job = session.scalar(select(StartJob).where(StartJob.id == job_id).with_for_update())
        if job is None or job.status != "running":
            return
        cadre_id = error.cadre_id if isinstance(error, FilterFailed) else None
        job.status, job.finished_at = FAILED, utcnow()
        job.errors = [*job.errors, {"cadre_id": cadre_id, "error": error.message, "fields": error.fields}]


class FilterFailed(Invalid):
    """The job's filter fails on a cadre of its batch (`cadre_id`, when evaluating it alone fails too)."""

    def __init__(self, cadre_id: str | None, error: Incident) -> None:
        on = f" on cadre {cadre_id}" if cadre_id else ""
        zh_on = f"对干部 {cadre_id} " if cadre_id else ""
        super().__init__(f"the filter failed{on} (筛选表达式{zh_on}执行失败)", {"filter": _filter_problem(error)})
        self.cadre_id = cadre_id


def _open_batch(services: Services, job_id: int) -> int | None:
    with services.db.unit_of_work() as session:
        job = session.scalar(select(StartJob).where(StartJob.id == job_id).with_for_update())
        if job is None or job.status != "running":
            return None
        author = _author(services, session, job)
        cadres = _next_cadres(session, job)
        if not cadres:
            job.status, job.finished_at = "done", utcnow()
            return None
        chosen = _chosen(services, job, cadres, policy.reads_every_cadre(author))
        already = _already(session, job, [c.id for c in chosen])
        job.skipped += len(already)
        chosen = [cadre for cadre in chosen if cadre.id not in already]
        results = start_batch(services, session, author, job.process_key, [(c.id, dict(job.data)) for c in chosen])
        opened_before = job.opened
        for cadre, result in zip(chosen, results, strict=True):
            _count(job, cadre, result)
        job.cursor = cadres[-1].id
        if opened_before // ANALYZE_EVERY < job.opened // ANALYZE_EVERY:  # the tables it fills grew a lot
            services.db.after_commit(session, lambda: services.db.refresh_statistics(Case, Task))
        return sum(isinstance(result, Case) for result in results)


def _author(services: Services, session: Session, job: StartJob) -> Actor:
    """The job's author as an actor now; refused (the job then fails) once the account is inactive or gone, or
    none of its roles may start the process any more."""
    if job.created_by == SYSTEM.username:  # a timer start's job, or `cadreflow bulk-start`
        return SYSTEM
    user = session.scalar(select(User).where(User.username == job.created_by, User.active.is_(True)))
    author = actor_of(user) if user is not None else None
    if author is None or not policy.allows(author, "case.start", roles.tables_in(session, services.settings),
                                           job.process_key):
        raise Forbidden(f"the job's author {job.created_by} may no longer start {job.process_key} "
                        f"(批量发起人 {job.created_by} 已无权发起该流程)")
    return author


def _next_cadres(session: Session, job: StartJob) -> list[Cadre]:
    query = select(Cadre).where(Cadre.id > job.cursor).order_by(Cadre.id).limit(BATCH)
    if not job.selector:
        query = query.where(Cadre.post != "")  # the default: every cadre holding a post
    return list(session.scalars(query))


def _already(session: Session, job: StartJob, cadre_ids: list[str]) -> set[str]:
    """Cadres of the batch that have their case already (so a job run twice opens nothing twice). Their rows are
    locked first, in id order: a batch of another job for the same cadres, run at the same moment by another
    process, then waits for this one's cases instead of finding none yet and opening them again."""
    session.execute(select(Cadre.id).where(Cadre.id.in_(cadre_ids)).order_by(Cadre.id).with_for_update())
    return already_started(session, job.process_key, cadre_ids, job.dedupe, job.data)


def already_started(session: Session, process: str, cadre_ids: list[str], dedupe: str,
                    data: dict[str, Any]) -> set[str]:
    """The cadres among `cadre_ids` that `dedupe` says have their case of `process` already: an unfinished one
    (`open`: open, or stopped in incident), or one, in any state, whose start field has the value it has in
    `data` (`field:<name>`)."""
    query = select(Case.cadre_id, Case.data).where(Case.process_key == process, Case.cadre_id.in_(cadre_ids))
    if dedupe == OPEN:
        return set(session.scalars(select(Case.cadre_id).where(
            Case.process_key == process, Case.cadre_id.in_(cadre_ids), queries.unfinished())))
    field = dedupe.split(":", 1)[1]
    wanted = data.get(field)
    return {cadre_id for cadre_id, data in session.execute(query) if _same(wanted, (data or {}).get(field))}


def _same(one: Any, other: Any) -> bool:
    """Equal as JSON values: the decoded values compared, as the integrity_report start rule's once a year does
    (2031 and 2031.0 are one year, objects in any key order), except that true is not 1."""
    return bool(one == other) and isinstance(one, bool) == isinstance(other, bool)


def _chosen(services: Services, job: StartJob, cadres: list[Cadre], whole: bool) -> list[Cadre]:
    """The cadres of a batch the job's filter picks (all of them without one; `whole`: see `_scope`)."""
    candidates = cadres
    if job.selector and candidates:
        scopes = [_scope(cadre, whole) for cadre in candidates]
        try:
            keep = services.runner.select(job.selector, scopes)
        except Incident as error:
            raise FilterFailed(_failing(services, job.selector, candidates, scopes), error) from error
        candidates = [cadre for cadre, chosen in zip(candidates, keep, strict=True) if chosen]
    return candidates


def _failing(services: Services, selector: str, candidates: list[Cadre], scopes: list[dict[str, Any]]) -> str | None:
    """The first cadre the filter fails on alone (to name it in the job's error), or None, also once the search
    has taken a step's time limit: a filter slow on every cadre fails its batch at the limit and no cadre alone,
    and trying each of them took a step limit per cadre of the batch (200) with the job's row locked."""
    stop = time.monotonic() + float(services.settings["STEP_TIMEOUT_SECONDS"])
    for cadre, scope in zip(candidates, scopes, strict=True):
        if time.monotonic() > stop:
            return None
        try:
            services.runner.select(selector, [scope])
        except Incident:
            return cadre.id
    return None


def _scope(cadre: Cadre, whole: bool = True) -> dict[str, Any]:
    """What a start filter sees of a cadre: the fields of its record for an author who reads every cadre's file
    (`whole`: `policy.reads_every_cadre`, the system); for any other starter what the picker shows of every cadre
    (`cadre.pick`: id, name, unit, post), so a filter cannot sort cadres by a file it may not read, such as the
    promotion ban a sanction set (the cadres a job fails or settles on would tell)."""
    picked = {"id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post}
    if not whole:
        return picked
    return {**picked, "post_level": cadre.post_level, "post_started_on": views.iso(cadre.post_started_on),
            "promotion_ban_until": views.iso(cadre.promotion_ban_until)}


def _count(job: StartJob, cadre: Cadre, result: Case | ServiceError) -> None:
    if isinstance(result, Case):
        job.opened += 1
        return
    job.failed += 1
    if len(job.errors) < MAX_ERRORS:
        job.errors = [*job.errors, {"cadre_id": cadre.id, "error": result.message, "fields": result.fields}]


def _job_view(session: Session, actor: Actor, job: StartJob) -> dict[str, Any]:
    """The job as the caller may see it: its errors were told as to its author (start_rules.py), so another
    starter sees of a cadre whose file it may not read only that it failed, not why."""
    view = job_view(job, policy.reads_every_case_of(session, actor, job.process_key))
    if actor.username == job.created_by or policy.reads_every_cadre(actor):
        return view
    named = {error["cadre_id"] for error in job.errors if error.get("cadre_id")}
    readable = set(session.scalars(select(Cadre.id).where(Cadre.id.in_(sorted(named)), policy.cadre_filter(actor))))
    return {**view, "errors": [error if not error.get("cadre_id") or error["cadre_id"] in readable else
                               {"cadre_id": error["cadre_id"], "error": NOT_QUALIFIED,
                                "fields": {"cadre_id": NOT_QUALIFIED}} for error in job.errors]}


def job_view(job: StartJob, reads_its_cases: bool) -> dict[str, Any]:
    """A job's progress; how many of its cadres had their case already only for who reads every case of its
    process (`reads_its_cases`): for anyone else that split would tell of cases it may not read."""
    return {"id": job.id, "process": job.process_key, "data": job.data, "filter": job.selector,
            "dedupe": job.dedupe, "status": job.status, "settled": job.opened + job.skipped,
            "opened": job.opened if reads_its_cases else None, "skipped": job.skipped if reads_its_cases else None,
            "failed": job.failed, "errors": job.errors, "cursor": job.cursor, "created_by": job.created_by,
            "created_at": views.iso(job.created_at), "finished_at": views.iso(job.finished_at)}
