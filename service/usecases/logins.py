"""Logging in and out: throttled password checks, API tokens and server-side web sessions.

A client holds a random secret (a bearer token, or a web session id inside the signed session
cookie); the database keeps only its HMAC-SHA256 under the instance key, in `api_tokens` or `web_sessions`
(a row written with SQL by someone without the key opens nothing). Each request costs
one indexed lookup of that hash joined to its user and roles, whose answer a web process keeps until
logins, users or roles change anywhere (service/db/credentials.py). Deleting the rows ends the logins:
logout deletes its session, and `end_credentials` ends all of a user's (users.py calls it whenever
a password, the roles or the active flag change), so nothing comes back on reactivation.

A web session also ends WEB_SESSION_IDLE_MINUTES after the last request it served (a browser left open on a
shared office computer); API tokens keep their fixed lifetime. The last request is stored only once a refresh
is due (`_refresh_seconds`), so an active session costs a write a minute, not one a request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import Row, Select, bindparam, delete, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from service.db.models import ApiToken, User, UserRole, WebSession, utcnow
from service.db.uow import rows_changed
from service.errors import Invalid, TooManyAttempts, Unauthorized
from service.ratelimit import Throttle, address_key

from . import devices
from .context import Actor, Services, actor_of

# A fixed hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not a password")
WRONG = "wrong username or password (用户名或密码错误)"
H = TypeVar("H")  # what a token or session's holder is read as
REFRESH_SECONDS = 60  # at most this often a session's last request is stored (less with an idle time under 2 min)


class SessionIdle(Exception):
    """The web session served no request for WEB_SESSION_IDLE_MINUTES: it has ended (its row is gone)."""


class SessionHolder(NamedTuple):
    """Who holds a web session, and whether they must first replace a password an admin set for them."""

    actor: Actor
    must_change_password: bool


class Checked(NamedTuple):
    """A password found right: whose it is, and the stored hash it matched (a login is stored only while the
    user still has that hash)."""

    user_id: int
    actor: Actor
    password_hash: str


def issue_token(services: Services, username: Any, password: Any, address: str = "",
                device: devices.Device | None = None) -> dict[str, Any]:
    """Check a password (throttled, per device when the client proves one) and hand out a bearer token; with
    `device`, also a fresh device credential for the client's next login."""
    checked = verify_password(services, username, password, address, device)
    token = _store(services, ApiToken, checked.user_id, float(services.settings["TOKEN_TTL_HOURS"]), checked)
    actor = checked.actor
    answer = {"token": token, "user": {"username": actor.username, "roles": sorted(actor.roles)}}
    if device is not None:
        answer["device"] = devices.issue(device.key, actor.username, checked.password_hash)
    return answer


class WebLogin(NamedTuple):
    """An opened web session: its id for the session cookie, whose it is, and this browser's new device cookie."""

    session_id: str
    actor: Actor
    device_cookie: str


def open_web_session(services: Services, username: Any, password: Any, address: str,
                     device: devices.Device) -> WebLogin:
    """Check a password (throttled, per device when the browser proves one) and open a web session."""
    checked = verify_password(services, username, password, address, device)
    hours = float(services.settings["SESSION_TTL_HOURS"])
    session_id = _store(services, WebSession, checked.user_id, hours, checked)
    return WebLogin(session_id, checked.actor, devices.issue(device.key, checked.actor.username, checked.password_hash))


def actor_for_token(services: Services, token: str) -> Actor | None:
    """The user a bearer token belongs to, if it is valid, unexpired and the user active."""
    return _kept_or_read(services, ApiToken, token, _read_token_holder)


def session_holder(services: Services, session_id: str) -> SessionHolder | None:
    """Who holds a web session, if it is open, unexpired and the user active; SessionIdle if it was left idle
    too long (it ends here). A refresh that is due stores this request as the session's last (one write)."""
    return _kept_or_read(services, WebSession, session_id, _read_session_holder)


def end_web_session(services: Services, session_id: str) -> None:
    """Log out: the session's row goes, so its cookie opens nothing any more."""
    with services.db.unit_of_work() as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == secret_hash(services, session_id)))
        services.db.credentials_changed(session)


def end_token(services: Services, token: str) -> None:
    """Log out of the API: the token's row goes, so it opens nothing any more."""
    with services.db.unit_of_work() as session:
        session.execute(delete(ApiToken).where(ApiToken.token_hash == secret_hash(services, token)))
        services.db.credentials_changed(session)


def renew_web_session(services: Services, session_id: str) -> str | None:
    """The same login under a new session id (the old one opens nothing any more); None if it had ended."""
    with services.db.unit_of_work() as session:
        user_id = session.scalar(delete(WebSession).where(WebSession.token_hash == secret_hash(services, session_id))
                                 .returning(WebSession.user_id))
        services.db.credentials_changed(session)
    if user_id is None:
        return None
    return _store(services, WebSession, user_id, float(services.settings["SESSION_TTL_HOURS"]))


def end_credentials(services: Services, session: Session, user_id: int, keep: str | None = None) -> None:
    """End every token and web session of a user, except the one whose secret is `keep`."""
    services.db.credentials_changed(session)
    kept = secret_hash(services, keep) if keep else ""
    for model in (ApiToken, WebSession):
        session.execute(delete(model).where(model.user_id == user_id, model.token_hash != kept))


def _idle_seconds(services: Services) -> float:
    return 60 * float(services.settings["WEB_SESSION_IDLE_MINUTES"])


def _refresh_seconds(idle: float) -> float:
    """How long a stored last request may age before a request stores itself instead (0: never): short enough
    that the session is not taken for idle while used, so it ends between idle minus this and idle after the
    last request."""
    return min(REFRESH_SECONDS, idle / 2)


def _mark_seen(services: Services, token_hash: str, now: datetime) -> bool:
    """Store `now` as the session's last request; False if the session has ended meanwhile. Moving it changes
    nobody's holder: migration 0030 keeps it from the credential notices, so no process forgets its cache."""
    with services.db.unit_of_work() as session:
        return rows_changed(session, update(WebSession).where(
            WebSession.token_hash == token_hash, WebSession.expires_at > now).values(last_seen_at=now)) == 1


def _end_idle_session(services: Services, token_hash: str, seen_before: datetime) -> None:
    """Delete a session left idle (unless a request of it moved its last one on meanwhile)."""
    with services.db.unit_of_work() as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == token_hash,
                                                 WebSession.last_seen_at <= seen_before))
        services.db.credentials_changed(session)


def verify_password(services: Services, username: Any, password: Any, address: str = "",
                    device: devices.Device | None = None, signed_in: str | None = None) -> Checked:
    """Whose the password is, when it is right; counts failures per username (per user and device when `device`
    proves one; per login when `signed_in`, the secret of the session or token a logged-in user confirms their
    password with) and per address (429 past the limit)."""
    if not isinstance(username, str) or not isinstance(password, str):
        raise Invalid("username and password are required (用户名和密码必填)",
                      {"username": "必填 (required)", "password": "必填 (required)"})
    nonce = None if signed_in else devices.trusted_nonce(services, username, device)
    throttle, keys = _login_throttle(services), _throttle_keys(username, address, nonce, signed_in)
    # Counted as a failure before the password is checked, in one atomic step: a burst of parallel guesses
    # cannot all pass a check made before any of them is counted, so at most the limit is ever evaluated.
    wait = throttle.take(*keys)
    if wait:
        raise TooManyAttempts(f"too many failed logins; try again in {wait} seconds "
                              f"(登录失败次数过多，请 {wait} 秒后再试)", wait)
    with services.db.unit_of_work(write=False) as session:
        user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
        if check_password_hash(user.password_hash if user else _DUMMY_HASH, password) and user is not None:
            throttle.give_back(*keys)  # a right password is no failure
            return Checked(user.id, actor_of(user), user.password_hash)
    raise Unauthorized(WRONG)


def secret_hash(services: Services, secret: str) -> str:
    """What the database keeps of a token or session id: its HMAC under the instance key, so that whoever can
    write the login tables but does not hold the key (SECRET_KEY kept apart from the database) cannot add a row
    that a secret of their own choosing opens, and so log in as anyone."""
    key = services.signing_key.encode()
    return hmac.new(key, secret.encode("utf-8", "backslashreplace"), hashlib.sha256).hexdigest()


def _login_throttle(services: Services) -> Throttle:
    settings = services.settings
    return Throttle(services.rate_storage, "cadreflow-login", int(settings["LOGIN_MAX_FAILURES"]),
                    int(settings["LOGIN_WINDOW"]))


def _throttle_keys(username: str, address: str, device_nonce: str | None = None,
                   signed_in: str | None = None) -> list[str]:
    """Failures count per username, or per username and device for a browser that proved a device cookie (so
    strangers' failures for the name do not lock its owner's browsers out, and a device that guesses locks only
    itself), and, when known, per client address (an IPv6 address by its /64, which one subscriber holds whole:
    single addresses would let it guess from a fresh one each time). A logged-in user's own check (a password
    change) counts on that login: strangers filling the name's count must not keep its owner from changing it,
    and a stolen login guesses no more often than a device."""
    account = (f"login:{hashlib.sha256(signed_in.encode('utf-8', 'backslashreplace')).hexdigest()}" if signed_in
               else f"device:{username}:{device_nonce}" if device_nonce else f"user:{username}")
    return [account, *([f"address:{address_key(address)}"] if address else [])]


def _store(services: Services, model: type[ApiToken] | type[WebSession], user_id: int, hours: float,
           checked: Checked | None = None) -> str:
    """A new random secret stored hashed for the user; that user's expired ones are swept on the way. A login
    (`checked`) is stored only if the user is still active with the password it checked: a password change or
    deactivation that committed after the check ended the user's logins, and this one must not slip in after it."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    with services.db.unit_of_work() as session:
        if checked is not None and not still_valid(session, checked):
            raise Unauthorized(WRONG)
        session.execute(delete(model).where(model.user_id == user_id, model.expires_at < now))
        row = model(token_hash=secret_hash(services, secret), user_id=user_id, expires_at=now + timedelta(hours=hours))
        if isinstance(row, WebSession):
            row.last_seen_at = now  # on the clock its expiry and idle time are read by
        session.add(row)
    return secret


def still_valid(session: Session, checked: Checked) -> bool:
    """Whether the user is active with the checked password hash, its row locked until the commit (PostgreSQL;
    SQLite's writers queue anyway), so no change to it commits between this check and the login it lets in."""
    found = session.scalar(select(User.id).where(User.id == checked.user_id, User.active.is_(True),
                                                 User.password_hash == checked.password_hash).with_for_update())
    return found is not None


def _kept_or_read(services: Services, model: type[ApiToken] | type[WebSession], secret: str,
                  read: Callable[[Services, str, datetime], tuple[H, datetime] | None]) -> H | None:
    """The holder of a secret kept between requests (until anything about logins changes, service/db/
    credentials.py, or the time `read` gives), or else `read` from the database."""
    key, cache = (model.__tablename__, secret_hash(services, secret)), services.db.credentials
    if cache is not None and (kept := cache.get(key)) is not None:
        return cast(H, kept)
    generation = cache.generation() if cache is not None else None
    now = utcnow()
    found = read(services, key[1], now)
    if found is None:
        return None  # a refused secret is never kept: the next request asks again
    if cache is not None:
        cache.put(key, found[0], generation, (found[1] - now).total_seconds())
    return found[0]


def _read_token_holder(services: Services, token_hash: str, now: datetime) -> tuple[Actor, datetime] | None:
    """One indexed lookup: the token's row, its active user and the user's roles; kept until the token expires."""
    rows = services.db.read_rows(_TOKEN_HOLDER, {"hash": token_hash, "now": now})
    return (_actor(rows), rows[0].expires_at) if rows else None


def _read_session_holder(services: Services, token_hash: str, now: datetime) -> tuple[SessionHolder, datetime] | None:
    """The session's holder, kept no longer than its next refresh is due: a kept holder never outlives the
    idle deadline, and a session in use is stored as seen before that deadline comes."""
    rows = services.db.read_rows(_SESSION_HOLDER, {"hash": token_hash, "now": now})
    if not rows:
        return None
    idle, last_seen = _idle_seconds(services), rows[0].last_seen_at
    if idle and now - last_seen >= timedelta(seconds=idle):
        _end_idle_session(services, token_hash, now - timedelta(seconds=idle))
        raise SessionIdle()
    refresh = timedelta(seconds=_refresh_seconds(idle))
    if refresh and now - last_seen >= refresh:
        if not _mark_seen(services, token_hash, now):
            return None  # ended meanwhile
        last_seen = now
    kept_until = min(rows[0].expires_at, last_seen + refresh) if refresh else rows[0].expires_at
    return SessionHolder(_actor(rows), rows[0].must_change_password), kept_until


def _actor(rows: Sequence[Row[Any]]) -> Actor:
    return Actor(rows[0].username, frozenset(row.role for row in rows if row.role))


# Built once: every request asks one of these, and building a statement costs more than running it.
def _holder_query(model: type[ApiToken] | type[WebSession]) -> Select[str, str, datetime]:
    return (select(User.username, UserRole.role, model.expires_at).select_from(model)
            .join(User, User.id == model.user_id)
            .outerjoin(UserRole, UserRole.user_id == User.id)
            .where(model.token_hash == bindparam("hash"), model.expires_at > bindparam("now"), User.active.is_(True)))


_TOKEN_HOLDER = _holder_query(ApiToken)
# A web session's also says when it was last seen and whether the user must replace an admin-set password.
_SESSION_HOLDER = _holder_query(WebSession).add_columns(WebSession.last_seen_at, User.must_change_password)
