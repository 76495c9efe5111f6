"""Open cases of one process for many cadres: a timer start's firing, or a bulk start asked for by a person.

A start job works through the cadres in id order, a batch per transaction: it can stop at any moment
(a crash, a deploy) and the next worker pass resumes from its cursor; it never opens a second case
for a cadre it already opened one for (`dedupe`: an open case of the process, or a case with the same
value of a start field, such as the assessment `year`).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, StartJob, Task, utcnow
from service.errors import Invalid, NotFound, ServiceError

from . import policy, queries, roles, views
from .context import Actor, Services
from .stepper import newest_version, start_batch

BATCH = 200
ANALYZE_EVERY = 5_000  # cases a job opens between two refreshes of the planner's statistics (PostgreSQL)
MAX_ERRORS = 20
OPEN = "open"


def create_job(services: Services, actor: Actor, process: Any, data: Any = None, selector: Any = None,
               dedupe: Any = OPEN) -> dict[str, Any]:
    """Ask for cases of `process` for every cadre `selector` picks (default: every cadre holding a post)."""
    _check(services, actor, process, data, selector, dedupe)
    with services.db.unit_of_work() as session:
        newest_version(session, process)
        job = StartJob(process_key=process, data=dict(data or {}), selector=selector or None, dedupe=dedupe,
                       created_by=actor.username)
        session.add(job)
        session.flush()
        return job_view(job)


def _check(services: Services, actor: Actor, process: Any, data: Any, selector: Any, dedupe: Any) -> None:
    fields = {}
    if not isinstance(process, str) or not process:
        fields["process"] = "必填 (required)"
    if data is not None and not isinstance(data, dict):
        fields["data"] = "必须是对象 (must be an object)"
    if selector is not None and (not isinstance(selector, str) or len(selector) > 2000):
        fields["filter"] = "必须是表达式文本 (an expression)"
    if not isinstance(dedupe, str) or not (dedupe == OPEN or dedupe.startswith("field:")):
        fields["dedupe"] = '可选 "open" 或 "field:<字段>" ("open" or "field:<name>")'
    if fields:
        raise Invalid("invalid bulk start (批量发起参数有误)", fields)
    policy.require(actor, "case.start", roles.policy_tables(services), process)


def get_job(services: Services, actor: Actor, job_id: int) -> dict[str, Any]:
    """A job's progress."""
    with services.db.unit_of_work(write=False) as session:
        job = session.get(StartJob, job_id)
        if job is None or not policy.allows(actor, "case.start", roles.tables_in(session, services.settings),
                                                  job.process_key):
            raise NotFound(f"start job {job_id} not found (批量发起任务不存在)")
        return job_view(job)


def run_jobs(services: Services, max_batches: int | None = None) -> int:
    """Work off running jobs a batch at a time; returns how many cases were opened."""
    opened, batches = 0, 0
    with services.db.unit_of_work(write=False) as session:
        running = list(session.scalars(select(StartJob.id).where(StartJob.status == "running").order_by(StartJob.id)))
    for job_id in running:
        while max_batches is None or batches < max_batches:
            step = run_batch(services, job_id)
            batches += 1
            if step is None:
                break
            opened += step
    return opened


def run_batch(services: Services, job_id: int) -> int | None:
    """Open the cases of the job's next batch of cadres; None once the job is done."""
    with services.db.unit_of_work() as session:
        job = session.scalar(select(StartJob).where(StartJob.id == job_id).with_for_update())
        if job is None or job.status != "running":
            return None
        cadres = _next_cadres(session, job)
        if not cadres:
            job.status, job.finished_at = "done", utcnow()
            return None
        chosen = _chosen(services, job, cadres, _already(session, job, [c.id for c in cadres]))
        actor = Actor(job.created_by, frozenset({"admin"}))  # the job's author was checked when it was made
        results = start_batch(services, session, actor, job.process_key, [(c.id, dict(job.data)) for c in chosen])
        opened_before = job.opened
        for cadre, result in zip(chosen, results, strict=True):
            _count(job, cadre, result)
        job.cursor = cadres[-1].id
        if opened_before // ANALYZE_EVERY < job.opened // ANALYZE_EVERY:  # the tables it fills grew a lot
            services.db.after_commit(session, lambda: services.db.refresh_statistics(Case, Task))
        return sum(isinstance(result, Case) for result in results)


def _next_cadres(session: Session, job: StartJob) -> list[Cadre]:
    query = select(Cadre).where(Cadre.id > job.cursor).order_by(Cadre.id).limit(BATCH)
    if not job.selector:
        query = query.where(Cadre.post != "")  # the default: every cadre holding a post
    return list(session.scalars(query))


def _already(session: Session, job: StartJob, cadre_ids: list[str]) -> set[str]:
    """Cadres of the batch that have their case already (so a job run twice opens nothing twice)."""
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
    wanted = json.dumps(data.get(field), sort_keys=True)
    return {cadre_id for cadre_id, data in session.execute(query)
            if json.dumps((data or {}).get(field), sort_keys=True) == wanted}


def _chosen(services: Services, job: StartJob, cadres: list[Cadre], skip: set[str]) -> list[Cadre]:
    job.skipped += len(skip)
    candidates = [cadre for cadre in cadres if cadre.id not in skip]
    if not job.selector or not candidates:
        return candidates
    keep = services.runner.select(job.selector, [_scope(cadre) for cadre in candidates])
    return [cadre for cadre, chosen in zip(candidates, keep, strict=True) if chosen]


def _scope(cadre: Cadre) -> dict[str, Any]:
    """What a start filter sees of a cadre."""
    return {"id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post,
            "post_level": cadre.post_level, "post_started_on": views.iso(cadre.post_started_on),
            "promotion_ban_until": views.iso(cadre.promotion_ban_until)}


def _count(job: StartJob, cadre: Cadre, result: Case | ServiceError) -> None:
    if isinstance(result, Case):
        job.opened += 1
        return
    job.failed += 1
    if len(job.errors) < MAX_ERRORS:
        job.errors = [*job.errors, {"cadre_id": cadre.id, "error": result.message, "fields": result.fields}]


def job_view(job: StartJob) -> dict[str, Any]:
    return {"id": job.id, "process": job.process_key, "data": job.data, "filter": job.selector,
            "dedupe": job.dedupe, "status": job.status, "opened": job.opened, "skipped": job.skipped,
            "failed": job.failed, "errors": job.errors, "cursor": job.cursor, "created_by": job.created_by,
            "created_at": views.iso(job.created_at), "finished_at": views.iso(job.finished_at)}
