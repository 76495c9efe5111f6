"""The relational schema: process versions, cases, the task read model, cadres, users, history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
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


class ProcessVersion(Base):
    __tablename__ = "process_versions"
    __table_args__ = (UniqueConstraint("process_key", "version"),
                      UniqueConstraint("process_key", "content_hash"))

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
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

    sanctions: Mapped[list[Sanction]] = relationship(order_by="Sanction.id", lazy="selectin")
    cleared_audits: Mapped[list[ClearedAudit]] = relationship(order_by="ClearedAudit.id", lazy="selectin")
    assessments: Mapped[list[Assessment]] = relationship(order_by="Assessment.id", lazy="selectin")


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


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_timer", "status", "next_timer_due"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    cadre_id: Mapped[str] = mapped_column(ForeignKey("cadres.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # open | completed | cancelled | incident
    outcome: Mapped[str | None] = mapped_column(String(40))
    incident: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    next_timer_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    process_version: Mapped[ProcessVersion] = relationship(lazy="joined")
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


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
    process_key: Mapped[str] = mapped_column(String(100))
    process_version_id: Mapped[int] = mapped_column(ForeignKey("process_versions.id"))
    element_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(40))
    assignee: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | completed | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_by: Mapped[str | None] = mapped_column(String(100))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HistoryEntry(Base):
    """Append-only record of everything that happened to a case."""

    __tablename__ = "history"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    task: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    roles: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_keys(self) -> list[str]:
        return sorted(r.role for r in self.roles)


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


class ScheduledRun(Base):
    """When a daily job last ran, so several workers run it once a day between them."""

    __tablename__ = "scheduled_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_on: Mapped[date] = mapped_column(Date)
