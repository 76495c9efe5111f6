"""Roles and who may start each process: data an admin manages, seeded from settings.

Until the `roles` table is first filled (by `cadreflow init-db`, or by an admin's first change), the catalog
is read from settings (ROLES, START_ROLES), so an upgraded install behaves exactly as before. From then on
the tables are the truth and settings are only the seed of a new instance.

The catalog is small and read once per use case (two queries), never per case or task row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.db.models import ProcessStarter, ProcessVersion, Role
from service.errors import Conflict, Invalid, NotFound

from . import account_log, casefile, policy
from .context import SYSTEM, Actor, Services

# Names of the shipped roles, used when settings' ROLES seed the table (a role settings add gets its code).
SHIPPED_NAMES = {
    "org_dept": ("组织部干部科", "Organisation dept. (cadres)"),
    "org_head": ("组织部部长", "Head of the organisation dept."),
    "committee": ("县委常委会", "Standing committee"), "discipline": ("纪委监委", "Discipline inspection"),
    "discipline_head": ("纪委书记", "Discipline secretary"), "audit": ("审计局", "Audit bureau"),
    "audit_head": ("审计局局长", "Head of the audit bureau"), "designer": ("流程设计员", "Process designer"),
    "admin": ("系统管理员", "Administrator"),
}
SHIPPED_HEADS = {"org_dept": "org_head", "discipline": "discipline_head", "audit": "audit_head"}
MAX_CODE = 40  # Role.code, UserRole.role, ProcessLane.role
MAX_NAME = 100
_CODE = re.compile(rf"[a-z][a-z0-9_]{{0,{MAX_CODE - 1}}}")


@dataclass(frozen=True)
class RoleInfo:
    code: str
    name_zh: str
    name_en: str
    head_role: str | None = None


@dataclass(frozen=True)
class Catalog:
    """The roles and the starters of each process, as one read gave them."""

    roles: dict[str, RoleInfo]
    starters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        """Every role code: the seeded ones in the order of settings, then those an admin added, by code."""
        return list(self.roles)

    def policy_tables(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The tables the policy's `$` entries read: START_ROLES from here, the others from settings."""
        return {"START_ROLES": self.starters, "MESSAGE_ROLES": settings.get("MESSAGE_ROLES", {}),
                "SIGNAL_ROLES": settings.get("SIGNAL_ROLES", {})}


def from_settings(settings: Mapping[str, Any]) -> Catalog:
    """The catalog settings describe (before the tables are filled, and to fill them)."""
    codes = [str(code) for code in settings.get("ROLES", [])]
    roles = {code: RoleInfo(code, *SHIPPED_NAMES.get(code, (code, code)),
                            head_role=SHIPPED_HEADS.get(code) if SHIPPED_HEADS.get(code) in codes else None)
             for code in codes}
    starters = {str(key): tuple(sorted(set(map(str, value)) & set(codes)))
                for key, value in (settings.get("START_ROLES") or {}).items()}
    return Catalog(roles, starters)


def catalog_of(session: Session, settings: Mapping[str, Any]) -> Catalog:
    """The catalog inside an open unit of work."""
    rows = session.scalars(select(Role)).all()
    if not rows:
        return from_settings(settings)
    starters: dict[str, list[str]] = {}
    for key, role in session.execute(select(ProcessStarter.process_key, ProcessStarter.role)):
        starters.setdefault(key, []).append(role)
    order = {code: index for index, code in enumerate(settings.get("ROLES", []))}
    rows = sorted(rows, key=lambda r: (order.get(r.code, len(order)), r.code))
    return Catalog({r.code: RoleInfo(r.code, r.name_zh, r.name_en, r.head_role) for r in rows},
                   {key: tuple(sorted(roles)) for key, roles in starters.items()})


def catalog(services: Services) -> Catalog:
    """The current catalog (one short read)."""
    with services.db.unit_of_work(write=False) as session:
        return catalog_of(session, services.settings)


def policy_tables(services: Services) -> dict[str, Any]:
    """What `policy.allows` needs for its `$` entries (who may start, send messages, send signals)."""
    return catalog(services).policy_tables(services.settings)


def tables_in(session: Session, settings: Mapping[str, Any]) -> dict[str, Any]:
    """`policy_tables` inside an open unit of work."""
    return catalog_of(session, settings).policy_tables(settings)


def known_codes(services: Services) -> list[str]:
    """Every role code (what users may hold and lanes may name)."""
    return catalog(services).codes


def seed(services: Services) -> bool:
    """Fill the tables from settings if they are empty (init-db); whether it did."""
    with services.db.unit_of_work() as session:
        return _seed(session, services.settings)


def _seed(session: Session, settings: Mapping[str, Any]) -> bool:
    """Materialise the settings' catalog once, each role and each process's starters with its account log entry
    (`system`), so `check` can hold the tables to the log. Seeders queue on the log's head: those after the first
    find the rows and write nothing."""
    if _seeded(session):
        return False
    account_log.lock_head(session)
    if _seeded(session):
        return False
    found = from_settings(settings)
    rows = {r.code: Role(code=r.code, name_zh=r.name_zh, name_en=r.name_en) for r in found.roles.values()}
    session.add_all(rows.values())
    session.flush()  # every role exists before one names another as its head
    for role in found.roles.values():
        rows[role.code].head_role = role.head_role
        account_log.record(session, SYSTEM.username, "role.create", role.code, _role_fields(rows[role.code]))
    session.add_all(ProcessStarter(process_key=key, role=role) for key, roles in found.starters.items()
                    for role in roles)
    session.flush()
    for key, roles in found.starters.items():
        if roles:
            account_log.record(session, SYSTEM.username, "process.starters", key,
                               {"roles": account_log.changed([], list(roles))})
    return True


def _seeded(session: Session) -> bool:
    return session.scalar(select(Role.code).limit(1)) is not None


# Managing roles (admin).

def list_roles(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Every role with its names, head role and the processes it may start (admin)."""
    policy.require(actor, "role.manage")
    found = catalog(services)
    return [_view(found.roles[code], found) for code in found.codes]


def create_role(services: Services, actor: Actor, code: Any, name_zh: Any, name_en: Any = None,
                head_role: Any = None) -> dict[str, Any]:
    """Add a role users may hold and lanes may name (admin); an existing code is a conflict."""
    policy.require(actor, "role.manage")
    code = _check_code(code)
    names = _check_names(name_zh, name_en if name_en is not None else name_zh)
    with services.db.unit_of_work() as session:
        _require_still_admin(session, actor)
        _seed(session, services.settings)
        if session.get(Role, code) is not None:
            raise Conflict(f"role {code} exists already (角色已存在)", {"code": "角色已存在 (taken)"})
        role = Role(code=code, name_zh=names[0], name_en=names[1], head_role=_check_head(session, code, head_role))
        session.add(role)
        session.flush()
        account_log.record(session, actor.username, "role.create", code, _role_fields(role))
        return _view_of(session, services, code)


def update_role(services: Services, actor: Actor, code: str, name_zh: Any = None, name_en: Any = None,
                head_role: Any = ...) -> dict[str, Any]:
    """Rename a role or change its head role (admin); its code, which lanes and users name, stays."""
    policy.require(actor, "role.manage")
    with services.db.unit_of_work() as session:
        _require_still_admin(session, actor)
        _seed(session, services.settings)
        role = session.get(Role, code)
        if role is None:
            raise NotFound(f"role {code} not found (角色不存在)")
        before = _role_fields(role)
        role.name_zh, role.name_en = _check_names(role.name_zh if name_zh is None else name_zh,
                                                  role.name_en if name_en is None else name_en)
        if head_role is not ...:
            role.head_role = _check_head(session, code, head_role)
        session.flush()
        after = _role_fields(role)
        if after != before:
            account_log.record(session, actor.username, "role.update", code, account_log.changes(before, after))
        return _view_of(session, services, code)


def _role_fields(role: Role) -> dict[str, Any]:
    """What the account log says of a role's definition."""
    return {"name_zh": role.name_zh, "name_en": role.name_en, "head_role": role.head_role}


def roles_page(services: Services, actor: Actor) -> dict[str, Any]:
    """The admin's roles page: every role, and every deployed process with the roles that may start it."""
    policy.require(actor, "role.manage")
    with services.db.unit_of_work(write=False) as session:
        found = catalog_of(session, services.settings)
        names = casefile.process_names(session)
    return {"roles": [_view(found.roles[code], found) for code in found.codes],
            "processes": [{"key": key, "name": names[key], "starters": list(found.starters.get(key, ()))}
                          for key in sorted(names)]}


def get_starters(services: Services, actor: Actor, key: str) -> dict[str, Any]:
    """The roles that may start a deployed process (admin)."""
    policy.require(actor, "role.manage")
    with services.db.unit_of_work(write=False) as session:
        _require_process(session, key)
        return {"process": key, "roles": list(catalog_of(session, services.settings).starters.get(key, ()))}


def set_starters(services: Services, actor: Actor, key: str, roles: Any) -> dict[str, Any]:
    """Say which roles may start a deployed process, replacing the earlier list (admin may start anything)."""
    policy.require(actor, "role.manage")
    with services.db.unit_of_work() as session:
        _require_still_admin(session, actor)
        _require_process(session, key)
        _seed(session, services.settings)
        found = catalog_of(session, services.settings)
        wanted = _role_list(roles, found.codes)
        had = list(found.starters.get(key, ()))
        session.execute(delete(ProcessStarter).where(ProcessStarter.process_key == key))
        session.add_all(ProcessStarter(process_key=key, role=role) for role in wanted)
        session.flush()
        if had != wanted:
            account_log.record(session, actor.username, "process.starters", key,
                               {"roles": account_log.changed(had, wanted)})
        return {"process": key, "roles": wanted}


def _require_still_admin(session: Session, actor: Actor) -> None:
    """403 unless the caller is still the admin its token said it was (users.require_still_admin)."""
    from .users import require_still_admin  # users.py needs this module

    require_still_admin(session, actor)


def _require_process(session: Session, key: str) -> None:
    if session.scalar(select(ProcessVersion.id).where(ProcessVersion.process_key == key).limit(1)) is None:
        raise NotFound(f"process {key} not found (流程不存在)")


def _role_list(roles: Any, known: list[str]) -> list[str]:
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise Invalid("roles must be a list of role codes (roles 须为角色列表)", {"roles": "须为角色列表 (a list)"})
    unknown = sorted(set(roles) - set(known))
    if unknown:
        raise Invalid(f"unknown roles: {', '.join(unknown)}; the roles are: {', '.join(known)} (未知角色)",
                      {"roles": f"未知角色 (unknown): {', '.join(unknown)}"})
    return sorted(set(roles))


def _check_code(code: Any) -> str:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise Invalid(f"a role code is 1–{MAX_CODE} lower-case letters, digits or _, starting with a letter "
                      f"(角色代码须为 1–{MAX_CODE} 位小写字母、数字或下划线，以字母开头)",
                      {"code": f"1–{MAX_CODE} 位小写字母、数字或 _ (a-z, 0-9, _)"})
    return code


def _check_names(name_zh: Any, name_en: Any) -> tuple[str, str]:
    fields = {}
    for name, value in (("name_zh", name_zh), ("name_en", name_en)):
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
            fields[name] = f"必填，至多 {MAX_NAME} 个字符 (required, at most {MAX_NAME} characters)"
    if fields:
        raise Invalid("a role needs a Chinese and an English name (角色须有中文名称和英文名称)", fields)
    return name_zh.strip(), name_en.strip()


def _check_head(session: Session, code: str, head_role: Any) -> str | None:
    if head_role is None or head_role == "":
        return None
    if not isinstance(head_role, str) or head_role == code or session.get(Role, head_role) is None:
        raise Invalid("the head role must be another existing role (上级角色须为另一个已有角色)",
                      {"head_role": "须为另一个已有角色 (another existing role)"})
    return head_role


def _view_of(session: Session, services: Services, code: str) -> dict[str, Any]:
    found = catalog_of(session, services.settings)
    return _view(found.roles[code], found)


def _view(role: RoleInfo, found: Catalog) -> dict[str, Any]:
    starts = sorted(key for key, roles in found.starters.items() if role.code in roles)
    return {"code": role.code, "name_zh": role.name_zh, "name_en": role.name_en, "head_role": role.head_role,
            "starts": starts}
