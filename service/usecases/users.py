"""Users, roles, passwords and API tokens (both stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from service.db.models import ApiToken, User, UserRole, utcnow
from service.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

from .context import Actor, Services

MIN_PASSWORD = 8  # for accounts an admin creates in the browser
# A fixed hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not a password")


def create_user(services: Services, username: str, password: str, roles: list[str]) -> dict[str, Any]:
    """Create a user, or update an existing user's password and roles."""
    _require_known_roles(services, roles)
    if not username or not password:
        raise Invalid("username and password are required (用户名和密码必填)")
    with services.db.unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, password_hash="", active=True)
            session.add(user)
        user.password_hash = generate_password_hash(password)
        _assign_roles(user, roles)
        session.flush()
        return {"username": user.username, "roles": user.role_keys}


def issue_token(services: Services, username: Any, password: Any) -> dict[str, Any]:
    """Check a password and hand out a bearer token."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Invalid("username and password are required (用户名和密码必填)",
                      {"username": "必填 (required)", "password": "必填 (required)"})
    with services.db.unit_of_work() as session:
        user = _authenticated(session, username, password)
        if user is None:
            raise Unauthorized("wrong username or password (用户名或密码错误)")
        token = secrets.token_urlsafe(32)
        hours = float(services.settings["TOKEN_TTL_HOURS"])
        session.add(ApiToken(token_hash=_hash(token), user_id=user.id, expires_at=utcnow() + timedelta(hours=hours)))
        return {"token": token, "user": {"username": user.username, "roles": user.role_keys}}


def actor_for_token(services: Services, token: str) -> Actor | None:
    """The user a bearer token belongs to, if it is valid and unexpired."""
    with services.db.unit_of_work(write=False) as session:
        row = session.get(ApiToken, _hash(token))
        if row is None or row.expires_at < utcnow() or not row.user.active:
            return None
        return Actor(row.user.username, frozenset(row.user.role_keys))


def actor_for_username(services: Services, username: str) -> Actor | None:
    """The active user of that name, as an actor (for session login)."""
    with services.db.unit_of_work(write=False) as session:
        user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
        return Actor(user.username, frozenset(user.role_keys)) if user else None


def check_password(services: Services, username: str, password: str) -> Actor | None:
    """The actor if the password is right, else None."""
    with services.db.unit_of_work(write=False) as session:
        user = _authenticated(session, username, password)
        return Actor(user.username, frozenset(user.role_keys)) if user else None


def _authenticated(session: Session, username: str, password: str) -> User | None:
    """The active user if the password is right (a missing user costs the same hash check)."""
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password):
        return None
    return user


def _require_known_roles(services: Services, roles: list[str]) -> None:
    unknown = sorted(set(roles) - set(services.roles))
    if unknown:
        raise Invalid(f"unknown roles: {', '.join(unknown)} (未知角色)", {"roles": ", ".join(unknown)})


def _assign_roles(user: User, roles: list[str]) -> None:
    user.roles = [UserRole(role=role) for role in sorted(set(roles))]


def user_has_role_in(session: Session) -> Callable[[str, str], bool]:
    """A check 'does this username hold that role' bound to an open session (for forms)."""
    def has_role(username: str, role: str) -> bool:
        found = session.scalar(select(UserRole.role).join(User).where(
            User.username == username, User.active.is_(True), UserRole.role == role))
        return found is not None
    return has_role


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def list_users(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Every user with roles and whether it may log in (admin)."""
    _require_admin(actor)
    with services.db.unit_of_work(write=False) as session:
        rows = session.scalars(select(User).order_by(User.username))
        return [{"username": u.username, "roles": u.role_keys, "active": u.active} for u in rows]


def set_roles(services: Services, actor: Actor, username: str, roles: list[str]) -> dict[str, Any]:
    """Replace a user's roles (admin)."""
    _require_admin(actor)
    _require_known_roles(services, roles)
    with services.db.unit_of_work() as session:
        user = _user(session, username)
        _assign_roles(user, roles)
        session.flush()
        return {"username": user.username, "roles": user.role_keys, "active": user.active}


def set_active(services: Services, actor: Actor, username: str, active: bool) -> dict[str, Any]:
    """Let a user log in again, or stop it (admin; nobody deactivates themselves)."""
    _require_admin(actor)
    if username == actor.username and not active:
        raise Conflict("you cannot deactivate yourself (不能停用自己的账户)")
    with services.db.unit_of_work() as session:
        user = _user(session, username)
        user.active = active
        return {"username": user.username, "roles": user.role_keys, "active": user.active}


def usernames_with_role(services: Services, role: str) -> list[str]:
    """Active users holding a role, by name (choices for `x-user-role` fields)."""
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(User.username).join(UserRole).where(
            UserRole.role == role, User.active.is_(True)).order_by(User.username)))


def _require_admin(actor: Actor) -> None:
    if not actor.has_any("admin"):
        raise Forbidden("only an admin may manage users (仅系统管理员可管理用户)")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username} not found (用户不存在)")
    return user


def add_user(services: Services, actor: Actor, username: str, password: str, roles: list[str]) -> dict[str, Any]:
    """Create a new user (admin); an existing name is a conflict, not a password reset."""
    _require_admin(actor)
    if len(password or "") < MIN_PASSWORD:
        raise Invalid(f"the password needs at least {MIN_PASSWORD} characters (密码至少 {MIN_PASSWORD} 位)",
                      {"password": f"至少 {MIN_PASSWORD} 位 (at least {MIN_PASSWORD} characters)"})
    with services.db.unit_of_work(write=False) as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise Conflict(f"user {username} exists already (用户名已存在)", {"username": "用户名已存在 (taken)"})
    return create_user(services, username, password, roles)
