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
from service.errors import Invalid, Unauthorized

from .context import Actor, Services

# A fixed hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not a password")


def create_user(services: Services, username: str, password: str, roles: list[str]) -> dict[str, Any]:
    """Create a user, or update an existing user's password and roles."""
    unknown = sorted(set(roles) - set(services.roles))
    if unknown:
        raise Invalid(f"unknown roles: {', '.join(unknown)} (未知角色)", {"roles": ", ".join(unknown)})
    if not username or not password:
        raise Invalid("username and password are required (用户名和密码必填)")
    with services.db.unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, password_hash="", active=True)
            session.add(user)
        user.password_hash = generate_password_hash(password)
        user.roles = [UserRole(role=role) for role in sorted(set(roles))]
        session.flush()
        return {"username": user.username, "roles": user.role_keys}


def issue_token(services: Services, username: Any, password: Any) -> dict[str, Any]:
    """Check a password and hand out a bearer token."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Invalid("username and password are required (用户名和密码必填)",
                      {"username": "必填 (required)", "password": "必填 (required)"})
    with services.db.unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
        if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password) or user is None:
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
        user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
        if not check_password_hash(user.password_hash if user else _DUMMY_HASH, password) or user is None:
            return None
        return Actor(user.username, frozenset(user.role_keys))


def user_has_role_in(session: Session) -> Callable[[str, str], bool]:
    """A check 'does this username hold that role' bound to an open session (for forms)."""
    def has_role(username: str, role: str) -> bool:
        found = session.scalar(select(UserRole.role).join(User).where(
            User.username == username, User.active.is_(True), UserRole.role == role))
        return found is not None
    return has_role


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
