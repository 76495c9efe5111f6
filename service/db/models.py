"""The relational schema: process versions, cases, the task read model, cadres, users, history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from workflows.engine.bounds import MAX_ASSIGNEE, MAX_ELEMENT_ID, MAX_ELEMENT_NAME, MAX_OUTCOME


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ChainedEntry:
    """The columns of an entry of a hash-chained, append-only log (service/db/chain.py): a case's history, a
    cadre's personal-report log. Each table adds the record its chain belongs to."""

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 ... within its chain
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hash: Mapped[str] = mapped_column(String(64))  # over the entry's content and the previous entry's hash


class ProcessVersion(Base):
    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("process_key", "version"),
                      UniqueConstraint("process_key", "content_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(MAX_ELEMENT_NAME))
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)  # large: loaded only when read
    dmn_files: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, deferred=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    deployed_by: Mapped[str] = mapped_column(String(100))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Cadre(Base):
    __tablename__ = "cadres"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(200))
    post: Mapped[str] = mapped_column(String(200), default="")
    post_level: Mapped[str] = mapped_column(String(20))
    post_started_on: Mapped[date | None] = mapped_column(Date)
    promotion_ban_until: Mapped[date | None] = mapped_column(Date)
    # The head of the cadre's personal-report log (service/db/chain.py): how many entries, the last one's hash.
    report_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    report_hash: Mapped[str | None] = mapped_column(String(64))

    sanctions: Mapped[list[Sanction]] = relationship(order_by="Sanction.id", lazy="selectin")
    cleared_audits: Mapped[list[ClearedAudit]] = relationship(order_by="ClearedAudit.id", lazy="selectin")
    assessments: Mapped[list[Assessment]] = relationship(order_by="Assessment.id", lazy="selectin")
    disclosures: Mapped[list[Disclosure]] = relationship(order_by="Disclosure.year", lazy="selectin")


class PersonalReport(Base):
    """A report of a change in family or property (家庭成员和财产变动报告), or such a change found unreported."""

    __tablename__ = "personal_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # family | property | other
    event_on: Mapped[date] = mapped_column(Date)
    reported_on: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text)
    found_unreported: Mapped[bool] = mapped_column(default=False)
    late: Mapped[bool] = mapped_column(default=False)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))  # the admonishment it opened
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonalReportLog(ChainedEntry, Base):
    """Append-only, hash-chained log of a cadre's personal reports (service/usecases/report_log.py): one entry per
    report recorded, saying what its row holds. Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""

    __tablename__ = "personal_report_log"
    __table_args__ = (Index("ix_personal_report_log_cadre_seq", "cadre_id", "seq", unique=True),)

    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"))  # its chain; report | correct | backfill (0025)


class AccountLogEntry(ChainedEntry, Base):
    """Append-only, hash-chained log of account and role changes (service/usecases/account_log.py): one chain for
    the whole log, its head in `account_log_head`. Each entry names its `target` (a username, a role code or a
    process key, by its action) and never holds a password, hash or token. Triggers refuse UPDATE and DELETE (and
    TRUNCATE on PostgreSQL)."""

    __tablename__ = "account_log"
    __table_args__ = (Index("ix_account_log_seq", "seq", unique=True),
                      Index("ix_account_log_actor", "actor"), Index("ix_account_log_target", "target"))

    target: Mapped[str] = mapped_column(String(100))


class AccountLogHead(Base):
    """The account log's head: how many entries, the last one's hash. One row (id 1), locked by each append so two
    changes at once never fork the chain; a cut-off end shows against it."""

    __tablename__ = "account_log_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    hash: Mapped[str | None] = mapped_column(String(64))


class Sanction(Base):
    __tablename__ = "sanctions"

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    sanction: Mapped[str] = mapped_column(String(40))
    decided_on: Mapped[date] = mapped_column(Date)


class ClearedAudit(Base):
    __tablename__ = "cleared_audits"

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    cleared_on: Mapped[date] = mapped_column(Date)


class Assessment(Base):
    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    year: Mapped[int]
    grade: Mapped[str] = mapped_column(String(20))
    measure: Mapped[str | None] = mapped_column(String(40))


class Disclosure(Base):
    """A 述职述廉 case's public disclosure (docs/processes.md §8): open while `closed_at` is null; once the
    case concludes, its `result` (satisfactory | dissatisfied) is the cadre's record for the year."""

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    year: Mapped[int]
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    result: Mapped[str | None] = mapped_column(String(20))
    conclusion: Mapped[str | None] = mapped_column(Text)
    concluded_on: Mapped[date | None] = mapped_column(Date)


class DisclosureRating(Base):
    """One member of the public's rating of a disclosure: one per address, a few per IPv6 /48 (kept only as keyed
    hashes)."""

    __tablename__ = "disclosure_ratings"
    __table_args__ = (UniqueConstraint("disclosure_id", "address_hash", name="uq_disclosure_ratings_address"),
                      Index("ix_disclosure_ratings_network", "disclosure_id", "network_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    disclosure_id: Mapped[int] = mapped_column(ForeignKey("disclosures.id"), index=True)
    address_hash: Mapped[str] = mapped_column(String(64))
    # An IPv6 rater's /48, keyed and hashed like the address: PUBLIC_RATINGS_PER_NETWORK per disclosure. None: IPv4.
    network_hash: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[str] = mapped_column(String(24))  # satisfied | basically_satisfied | dissatisfied
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_timer", "status", "next_timer_due"),
                      # A cadre's cases of one process (start rules, bulk starts' dedupe): both columns in one
                      # index, so no planner takes the far less selective process_key index instead.
                      Index("ix_cases_cadre_process", "cadre_id", "process_key"),
                      Index("ix_cases_search_text", "search_text", postgresql_using="gin",
                            postgresql_ops={"search_text": "gin_trgm_ops"}))

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID), index=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    # None only for a public report (信访举报) until its triage links the cadre it is about.
    cadre_id: Mapped[str | None] = mapped_column(ForeignKey("cadres.id"))
    status: Mapped[str] = mapped_column(String(20), index=True)  # open | completed | cancelled | incident
    outcome: Mapped[str | None] = mapped_column(String(MAX_OUTCOME))
    incident: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    next_timer_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_task_id: Mapped[str | None] = mapped_column(String(36))  # the caller's call activity task
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)  # an incident's next automatic retry
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The head of the history's hash chain (service/db/chain.py): how many entries, the last one's hash.
    history_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    history_hash: Mapped[str | None] = mapped_column(String(64))
    # What search finds the case by (usecases/search.py), kept with each step.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Whether `case_waits` may hold rows of this case: a step with nothing to wait for before or after
    # skips the DELETE (true for rows older than the column, so they are cleared once).
    has_waits: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())
    # Timer steps since a person last acted on the case (usecases/timers.py): a loop through a short timer is held
    # as an incident past MAX_TIMER_FIRINGS_WITHOUT_PERSON instead of firing at every poll for ever.
    timer_firings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    process_version: Mapped[ProcessVersion] = relationship(lazy="joined")
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it once, at mapping


class Task(Base):
    """The task read model: one row per user task a case ever opened, indexed for inboxes."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_open_role", "role", "due_at", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
        Index("ix_tasks_open_assignee", "assignee", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
        Index("ix_tasks_open_due", "due_at", "created_at", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID))
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    element_id: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID))
    name: Mapped[str] = mapped_column(String(MAX_ELEMENT_NAME))
    role: Mapped[str | None] = mapped_column(String(40))
    assignee: Mapped[str | None] = mapped_column(String(MAX_ASSIGNEE))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | completed | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_by: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HistoryEntry(ChainedEntry, Base):
    """Append-only, hash-chained record of everything that happened to a case (service/db/chain.py).

    Only `casehistory.record` adds entries; triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).
    """

    __tablename__ = "history"
    __table_args__ = (Index("ix_history_case_seq", "case_id", "seq", unique=True),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))  # its chain
    task: Mapped[str | None] = mapped_column(String(MAX_ELEMENT_ID))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str | None] = mapped_column(String(254))  # where notifications are mailed, when mail is on
    mail_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # one mail a day
    # An admin set the password (someone else's knows it): the user's web pages wait until they choose their own.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    roles: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_keys(self) -> list[str]:
        return sorted(r.role for r in self.roles)


# No two names differing in letter case alone (`bob` beside `Bob`): users.py checks first and says so, but only the
# database sees two admins creating them at the same moment (migration 0026).
Index("uq_users_username_lower", func.lower(User.username), unique=True)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship(lazy="joined")


class WebSession(Base):
    """A browser login: the cookie holds a random id, this row its hash; deleting the row ends the login."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last request seen, to the minute (logins.py): past WEB_SESSION_IDLE_MINUTES after it the session ends.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CredentialEpoch(Base):
    """One row counting changes to logins, users and roles, moved by SQLite triggers (migration 0022): a web
    process on SQLite keeps who holds a token only while this count stays put (service/db/credentials.py).
    PostgreSQL announces the same changes with NOTIFY and leaves the row alone."""

    __tablename__ = "credential_epoch"

    id: Mapped[int] = mapped_column(primary_key=True)
    changes: Mapped[int] = mapped_column(default=0)


class InstanceSecret(Base):
    """Secrets an instance generates once and shares between its processes (the session signing key)."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class LearningRecord(Base):
    """One entry of a cadre's study file (干部学习档案): group study days, elective or online hours."""

    __tablename__ = "learning_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # group_study_days | elective_hours | online_hours
    studied_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[float]
    source: Mapped[str] = mapped_column(String(200), default="")
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerHeartbeat(Base):
    """When a worker last finished a poll (any worker: one row), so people can see that deadlines are enforced."""

    __tablename__ = "worker_heartbeat"

    id: Mapped[int] = mapped_column(primary_key=True)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScheduledRun(Base):
    """When a daily job last ran, so several workers run it once a day between them."""

    __tablename__ = "scheduled_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_on: Mapped[date] = mapped_column(Date)


class OutboxItem(Base):
    """Work a committed step left for other cases: a message, a signal, a child case's end for its caller.

    Delivered right after the step commits, each to one case in its own transaction (so no step
    ever locks two cases), and retried by the worker until it is delivered or given up."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # message | signal | call_done
    source_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    target_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


class CaseWait(Base):
    """A message or signal an open case waits for, so messages between cases find their receivers."""

    __tablename__ = "case_waits"
    __table_args__ = (Index("ix_case_waits_lookup", "kind", "name", "correlation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # message | signal
    name: Mapped[str] = mapped_column(String(200))
    correlation: Mapped[str] = mapped_column(String(500), default="")  # "key=value" (canonical JSON), "" if none


class ScheduledStart(Base):
    """When a process with a timer start event opens its cases next (claimed by one worker at a time)."""

    __tablename__ = "scheduled_starts"

    process_key: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID), primary_key=True)
    next_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    interval: Mapped[str | None] = mapped_column(String(40))  # ISO 8601 duration between firings
    remaining: Mapped[int | None] = mapped_column(Integer)  # firings left after the next (None: no end)


class StartJob(Base):
    """Cases to open for many cadres at once (a timer start's firing, or a bulk start), in batches:
    resumable from `cursor` after a crash, and idempotent per cadre (`dedupe`)."""

    __tablename__ = "start_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # start data shared by every case
    selector: Mapped[str | None] = mapped_column(Text)  # an expression over the cadre's fields
    dedupe: Mapped[str] = mapped_column(String(100), default="open")  # "open" | "field:<name>"
    cursor: Mapped[str] = mapped_column(String(64), default="")  # the last cadre id handled
    opened: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the first few failures, for people
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)  # running | done
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProcessLane(Base):
    """A role owning a lane of a process version (lanes of embedded subprocesses included), for reads in SQL."""

    __tablename__ = "process_lanes"

    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class CaseParticipant(Base):
    """A user who took part in a case: started it, claimed, completed, was assigned or delegated a task."""

    __tablename__ = "case_participants"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)


class AccessLogEntry(Base):
    """One read of a case's detail or of a cadre record: who, when, what."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    username: Mapped[str] = mapped_column(String(100), index=True)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    cadre_id: Mapped[str | None] = mapped_column(String(64), index=True)
    what: Mapped[str] = mapped_column(String(20))


NOTICE_TEXT = 500  # characters of a notification's text, in either language


class Notification(Base):
    """A message for one user: a new task, one due soon or overdue, a supervision (督办)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user", "user_id", "id"),
        Index("ix_notifications_unread", "user_id", postgresql_where=text("read_at IS NULL"),
              sqlite_where=text("read_at IS NULL")),
        Index("ix_notifications_mail_pending", "id", postgresql_where=text("mail_status = 'pending'"),
              sqlite_where=text("mail_status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))  # new_task | due_soon | overdue | supervision | unreached
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"))
    text: Mapped[str] = mapped_column(String(NOTICE_TEXT))  # Chinese
    text_en: Mapped[str] = mapped_column(String(NOTICE_TEXT))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # pending: to be mailed (the user takes one mail per event); queued: in the mail outbox; skipped: mail off
    mail_status: Mapped[str | None] = mapped_column(String(10))


class TaskReminder(Base):
    """That a task's due-soon or overdue notice went out, so the worker's scan sends each once."""

    __tablename__ = "task_reminders"

    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # due_soon | overdue | unreached_<either>
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailItem(Base):
    """An e-mail waiting to be sent: written after a commit, sent by the worker, retried until it goes."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'"),
                            sqlite_where=text("status = 'pending'")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # notification | digest
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed | dropped
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class Role(Base):
    """A role users hold and lanes name: the shipped ones, seeded from settings, and those an admin adds."""

    __tablename__ = "roles"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)  # the lane name in BPMN
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    head_role: Mapped[str | None] = mapped_column(ForeignKey("roles.code"))  # supervises this role's lanes


class ProcessStarter(Base):
    """A role whose holders may start cases of a process (admin may start anything)."""

    __tablename__ = "process_starters"

    process_key: Mapped[str] = mapped_column(String(MAX_ELEMENT_ID), primary_key=True)
    role: Mapped[str] = mapped_column(ForeignKey("roles.code"), primary_key=True)


class Attachment(Base):
    """A file added to a case: its bytes live in the attachment store under their SHA-256 (content-addressed)."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))  # sniffed from the content, never the client's word
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Comment(Base):
    """A remark on a case, read with the case."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Substitute(Base):
    """An absence (out of office): between its times, tasks that would be assigned to `username` go to `substitute`."""

    __tablename__ = "substitutes"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    substitute: Mapped[str] = mapped_column(String(100))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublicReport(Base):
    """What the public portal handed out: a tracking code and the hash of its query key, for a report
    (its `public_report` case) or an objection to a public notice (the vetting case it reached)."""

    __tablename__ = "public_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(20), unique=True, index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # report | objection
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    content: Mapped[str | None] = mapped_column(Text)  # an objection's text (a report's is in its case)
    contact: Mapped[str | None] = mapped_column(String(200))  # an objector's contact: discipline roles only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WatchEntry(Base):
    """A cadre on the early-warning watch list (PROCESSES.md §10): its level (watch 关注 | alert 预警), the
    signals and the rule's reason at the last scan, since when at that level, the 提醒谈话 case it opened."""

    __tablename__ = "watchlist"

    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), primary_key=True)
    level: Mapped[str] = mapped_column(String(10), index=True)
    signals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    since: Mapped[date] = mapped_column(Date)
    scanned_on: Mapped[date] = mapped_column(Date)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class WatchCount(Base):
    """How many cadres of a unit a scan put at a level (alert | watch | none) on its day: the watch list's
    history (PROCESSES.md §10), which the watch list itself, current only, cannot give. Written by the scan in
    its own transaction; a second scan of the same day replaces that day's rows."""

    __tablename__ = "watch_counts"

    scanned_on: Mapped[date] = mapped_column(Date, primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[str] = mapped_column(String(10), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class IdempotencyKey(Base):
    """An API POST sent with an `Idempotency-Key` header (docs/api.md): whose key, a digest of what was sent, and,
    once the first sending succeeded, its answer, replayed to a retry of it. No answer yet: the first sending is
    still running (or its process died; the row then answers 409 until it expires)."""

    __tablename__ = "idempotency_keys"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
