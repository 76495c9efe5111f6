"""Users and their roles: creating and changing accounts, the username and password rules.

Logging in, tokens and web sessions live in `logins.py`; whatever changes who a user is or what it
may do here (password, roles, deactivation) ends every token and web session it holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from service.db.models import Task, User, UserRole
from service.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, WrittenMeanwhile

from . import account_log, notifications, policy
from .casehistory import hand_back, lock_case
from .context import SYSTEM, Actor, Services
from .logins import end_credentials, still_valid, verify_password
from .mailing import apply_mail_settings, check_mail_settings, mail_settings_view
from .queries import still_active
from .roles import known_codes

MIN_PASSWORD = 10
MIN_DISTINCT = 4  # different characters in a password: `aaaaaaaaaa` or `1212121212` is guessed first
# The passwords of 10 or more characters that lists of leaked passwords put first, here and abroad: the first a
# guesser tries, whatever the length rule says.
COMMON_PASSWORDS = frozenset({
    "1234567890", "0123456789", "0987654321", "9876543210", "1234567890a", "a1234567890", "123456789a", "a123456789",
    "1234567890q", "qwertyuiop", "qwerty1234", "qwerty12345", "qwerty123456", "1qaz2wsx3edc", "1q2w3e4r5t",
    "1q2w3e4r5t6y", "q1w2e3r4t5", "q1w2e3r4t5y6", "zaq12wsxcde3", "asdfghjkl;", "zxcvbnm123", "password12",
    "password123", "password1234", "passw0rd123", "p@ssw0rd123", "p@ssword123", "iloveyou12", "iloveyou123",
    "abc1234567", "abcd123456", "abcd1234567", "abcde12345", "admin12345", "admin123456", "administrator",
    "woaini1314", "woaini520", "woaini5201314", "5201314520", "1314520520", "5201314woaini", "qq123456789",
    "aa123456789", "aa12345678", "zhang123456", "wang123456", "li123456789", "changeme123", "welcome123",
    "123123123123", "1231231231", "1122334455", "1111122222", "1357924680", "147258369a", "147258369147",
})
MAX_PASSWORD = 128  # hashing a megabyte-long password on every attempt would be a cheap denial of service
MAX_USERNAME = 32
_USERNAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_USERNAME}}}")


def check_username(username: Any) -> str:
    """The username if it is 1–32 letters, digits, `_ . -` (not only dots, so it fits in a URL)."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username) or not username.strip("."):
        raise Invalid(f"the username must be 1–{MAX_USERNAME} letters, digits, _ . - (用户名须为 1–{MAX_USERNAME} "
                      "位字母、数字或 _ . -)",
                      {"username": f"1–{MAX_USERNAME} 位字母、数字或 _ . - (1–{MAX_USERNAME} letters, digits, _ . -)"})
    return username


def check_new_password(username: str, password: Any, field: str = "password") -> str:
    """The one password policy (CLI, API, admin page, own change): 10–128 characters, neither holding the
    username nor among the passwords guessed first (a common one, or one of fewer than 4 different characters)."""
    problem = _password_problem(username, password)
    if problem is not None:
        raise Invalid(f"the password is not acceptable (密码不符合要求): {problem}", {field: problem})
    return str(password)


def _password_problem(username: str, password: Any) -> str | None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        return f"至少 {MIN_PASSWORD} 个字符 (at least {MIN_PASSWORD} characters)"
    if len(password) > MAX_PASSWORD:
        return f"至多 {MAX_PASSWORD} 个字符 (at most {MAX_PASSWORD} characters)"
    folded = password.strip().casefold()
    if folded == username.casefold():
        return "不能与用户名相同 (must differ from the username)"
    if len(username) >= 3 and username.casefold() in folded:
        return "不能包含用户名 (must not contain the username)"
    if len(set(folded)) < MIN_DISTINCT or folded in COMMON_PASSWORDS:
        return "过于简单，容易被猜中 (too easy to guess: a common password, or too few different characters)"
    return None


def create_user(services: Services, username: str, password: str, roles: list[str],
                replace: bool = True, by: Actor = SYSTEM) -> dict[str, Any]:
    """Create a user, or (`replace`) reset an existing user's password and roles (its logins end); without
    `replace` an existing name is a conflict, decided in the writing transaction itself. `by`, an admin, must
    still be one when it writes."""
    check_username(username)
    check_new_password(username, password)
    _require_known_roles(services, roles)
    try:
        with services.db.unit_of_work() as session:
            require_still_admin(session, by)
            user = session.scalar(select(User).where(User.username == username))
            if user is not None and not replace:
                raise _taken(username, username)
            created = user is None
            if user is None:
                _require_distinct(session, username)
                user = User(username=username, password_hash="", active=True)
                session.add(user)
                session.flush()
            had_roles = set(user.role_keys)
            if "admin" in had_roles and "admin" not in roles and user.active:
                _locked_user(session, username, by)  # every admin row-locked, as for the API's change
            user.password_hash = generate_password_hash(password)
            user.must_change_password = _set_for_someone_else(by, user)
            _assign_roles(user, roles)
            if "admin" in had_roles and "admin" not in roles:
                session.flush()
                _require_an_active_admin(session)  # the command keeps the last one too
            end_credentials(services, session, user.id)
            _give_back_tasks_of_lost_roles(session, user, had_roles, SYSTEM.username)
            _log_create(session, by, user, None if created else sorted(had_roles))
            return _view(user)
    except WrittenMeanwhile:
        # Another transaction created the name, or one differing in case alone, after the checks above: the
        # unique indexes refused this one (nothing written). Say so as the checks would have.
        with services.db.unit_of_work(write=False) as session:
            winner = _lookalike(session, username)
        if winner is None:
            raise
        raise _taken(winner, username) from None


def _log_create(session: Session, by: Actor, user: User, had_roles: list[str] | None) -> None:
    """A new account's entry, or (the CLI's reset of an existing one, `had_roles`) its password's and roles'."""
    if had_roles is None:
        account_log.record(session, by.username, "user.create", user.username,
                           {"roles": user.role_keys, **account_log.password_detail(user)})
        return
    account_log.record(session, by.username, "user.password_reset", user.username, account_log.password_detail(user))
    if had_roles != user.role_keys:
        account_log.record(session, by.username, "user.roles", user.username,
                           {"roles": account_log.changed(had_roles, user.role_keys)})


def _set_for_someone_else(by: Actor, user: User) -> bool:
    """Whether a password set by `by` is one the user must replace at their next web login: an admin set it for
    someone else, who then shares it. The service's own acts (the CLI's create-user, the demo data) are the
    operator's, who hands over the password knowingly."""
    return by.username not in (SYSTEM.username, user.username)


def _taken(existing: str, username: str) -> Conflict:
    """The 409 of a new name that another user's name already is, or is but for letter case."""
    if existing == username:
        return Conflict(f"user {username} exists already (用户名已存在)", {"username": "用户名已存在 (taken)"})
    return Conflict(f"user {existing} exists already; names may not differ in letter case alone "
                    f"(已有用户 {existing}，用户名不能仅大小写不同)", {"username": "用户名已存在 (taken)"})


def _lookalike(session: Session, username: str) -> str | None:
    return session.scalar(select(User.username).where(func.lower(User.username) == username.lower()))


def _require_distinct(session: Session, username: str) -> None:
    """A new name must not pass for another in a list of people: no other user's name differing only in letter
    case (`Admin` beside `admin`), no dot at either end (`org_head.` beside `org_head`), and not the name the
    history gives the service's own actions (`system`)."""
    if username != username.strip("."):
        raise Invalid("a username may not begin or end with a dot (用户名不能以点开头或结尾)",
                      {"username": "不能以点开头或结尾 (no dot at either end)"})
    if username.lower() == SYSTEM.username:  # the history's actor for what the service does by itself
        raise Invalid(f"the username {username} is reserved for the service's own actions (该用户名为系统保留)",
                      {"username": "系统保留 (reserved)"})
    lookalike = _lookalike(session, username)
    if lookalike is not None:
        raise _taken(lookalike, username)


def add_user(services: Services, actor: Actor, username: Any, password: Any, roles: Any) -> dict[str, Any]:
    """Create a new user (admin); an existing name is a conflict, not a password reset."""
    _require_admin(actor)
    check_username(username)
    check_new_password(username, password)
    return create_user(services, username, password, _role_list(services, [] if roles is None else roles),
                       replace=False, by=actor)


def update_user(services: Services, actor: Actor, username: str, roles: Any = None, active: Any = None,
                password: Any = None, email: Any = None, mail_digest: Any = None) -> dict[str, Any]:
    """Change a user's roles, whether it may log in, its password (these end its logins), or its e-mail (admin)."""
    _require_admin(actor)
    roles = None if roles is None else _role_list(services, roles)
    if active is not None and not isinstance(active, bool):
        raise Invalid("active must be true or false (active 须为 true 或 false)", {"active": "须为布尔值 (boolean)"})
    if active is False and username == actor.username:
        raise Conflict("you cannot deactivate yourself (不能停用自己的账户)")
    if password is not None:
        check_new_password(username, password)
    check_mail_settings(email, mail_digest)
    with services.db.unit_of_work() as session:
        user = _locked_user(session, username, actor)
        require_still_admin(session, actor)
        was_active, had_roles, had_mail = user.active, set(user.role_keys), mail_settings_view(user)
        if _apply(user, roles, active, password):
            end_credentials(services, session, user.id)
        if password is not None:
            user.must_change_password = _set_for_someone_else(actor, user)
        if was_active and not user.active:
            _hand_back_tasks(session, user.username, actor.username)
        else:
            _give_back_tasks_of_lost_roles(session, user, had_roles, actor.username)
        apply_mail_settings(user, email, mail_digest)
        session.flush()
        _require_an_active_admin(session)
        _log_update(session, actor, user, (sorted(had_roles), was_active, had_mail), password is not None)
        return _view(user)


def _log_update(session: Session, actor: Actor, user: User, before: tuple[list[str], bool, dict[str, Any]],
                password_set: bool) -> None:
    """One entry per kind of change an admin made to an account (none for what stayed as it was); a password
    set is recorded as such, never with it."""
    roles, active, mail = before
    if roles != user.role_keys:
        account_log.record(session, actor.username, "user.roles", user.username,
                           {"roles": account_log.changed(roles, user.role_keys)})
    if active != user.active:
        account_log.record(session, actor.username, "user.activate" if user.active else "user.deactivate",
                           user.username)
    if password_set:
        account_log.record(session, actor.username, "user.password_reset", user.username,
                           account_log.password_detail(user))
    now = mail_settings_view(user)
    if mail != now:
        account_log.record(session, actor.username, "user.mail", user.username,
                           account_log.changes(mail, now))


def _apply(user: User, roles: list[str] | None, active: bool | None, password: str | None) -> bool:
    """Apply the changes; whether any of them ends the user's logins."""
    changed = False
    if roles is not None and sorted(set(roles)) != user.role_keys:
        _assign_roles(user, roles)
        changed = True
    if active is not None and active != user.active:
        user.active = active
        changed = True
    if password is not None:
        user.password_hash = generate_password_hash(password)
        changed = True
    return changed


DEACTIVATED = "账号停用 (account deactivated)"
ROLE_REMOVED = "角色变更 (role removed)"
_TOLD = {DEACTIVATED: notifications.deactivated_holder_texts, ROLE_REMOVED: notifications.role_removed_texts}
# Why a task a step opens for a named user waits in its role's pool instead: the name is deactivated or nobody's.
NO_ACTIVE_ACCOUNT = "该用户名无在用账号 (no active account by that name)"


def _hand_back_tasks(session: Session, username: str, by: str, which: ColumnElement[bool] | None = None,
                     reason: str = DEACTIVATED) -> None:
    """Give every open task a deactivated user holds (or, `which`, those of the roles it lost) back to its role, as
    an unclaim by the admin `by`: nobody else may take a held task, so it would wait for someone who can no longer
    log in; and a holder may complete its task whatever its roles, so one moved off a role would go on deciding
    that role's cases. The role's holders are told, or the task would wait unseen in their pool. Whatever gives a
    user a task share-locks the user's row first (queries.still_active), so a task given meanwhile has committed
    before the scan below, which sees it."""
    held_by = (Task.status == "open") & (Task.assignee == username)
    if which is not None:
        held_by &= which
    freed: list[tuple[Task, str]] = []
    for case_id in sorted(set(session.scalars(select(Task.case_id).where(held_by)))):
        case = lock_case(session, case_id)  # in id order: two writers locking several cases cannot deadlock
        # Read again under the case's lock: a completion may have closed the task meanwhile.
        for task in session.scalars(select(Task).where(held_by, Task.case_id == case_id).order_by(Task.id)
                                    .execution_options(populate_existing=True)):
            hand_back(session, case, task, by, reason=reason)
            freed.append((task, case.process_version.name))
    _tell_the_pools(session, freed, username, reason)


def _give_back_tasks_of_lost_roles(session: Session, user: User, had_roles: set[str], by: str) -> None:
    """The open tasks an active user holds of the roles it held and holds no more go back to those roles; having
    lost `admin`, which may take any task, every task of a role it does not hold now (an admin keeps every task)."""
    kept, lost = set(user.role_keys), had_roles - set(user.role_keys)
    if not user.active or not lost or "admin" in kept:
        return
    which = or_(Task.role.is_(None), Task.role.not_in(sorted(kept))) if "admin" in lost else \
        Task.role.in_(sorted(lost))
    _hand_back_tasks(session, user.username, by, which, ROLE_REMOVED)


def _tell_the_pools(session: Session, freed: list[tuple[Task, str]], username: str, reason: str) -> None:
    """A `new_task` notice of each handed-back task to the active holders of its role (the user, flushed inactive
    or without the role first, is not among them)."""
    if not freed:
        return
    session.flush()
    people = notifications.holders(session, [task for task, _ in freed])
    for task, process in freed:
        notifications.notify(session, people[task.id], "new_task", task, _TOLD[reason](task, process, username))


def lock_own_account(session: Session, actor: Actor) -> None:
    """The acting user's own row, share-locked while it is active with the roles the caller was authenticated with
    (queries.still_active), else 403. Taken before any case's lock, in the order a deactivation or a role change
    takes them (the user's row, then its cases): they never deadlock, and one committed meanwhile refuses the
    action, which would otherwise give the user a task after they handed its tasks back."""
    rows = session.execute(still_active(select(User.id, UserRole.role).outerjoin(UserRole).where(
        User.username == actor.username, User.active.is_(True)))).all()
    if not rows:
        raise Forbidden(f"the account {actor.username} has been deactivated (账号 {actor.username} 已停用)")
    if frozenset(role for _, role in rows if role) != actor.roles:
        raise Forbidden("your roles have changed since you logged in; log in again (您的角色已变更，请重新登录)")


def change_password(services: Services, actor: Actor, old_password: Any, new_password: Any, keep: str | None = None,
                    address: str = "") -> None:
    """Change one's own password; every other token and web session ends (the one whose secret is `keep` stays)."""
    if not isinstance(old_password, str):
        raise Invalid("the current password is required (请填写原密码)", {"old_password": "必填 (required)"})
    check_new_password(actor.username, new_password, "new_password")
    if new_password == old_password:
        raise Invalid("the new password must differ (新密码不能与原密码相同)",
                      {"new_password": "须与原密码不同 (must differ from the old one)"})
    wrong = Invalid("the current password is wrong (原密码不正确)", {"old_password": "原密码不正确 (wrong password)"})
    try:
        checked = verify_password(services, actor.username, old_password, address, signed_in=keep)
    except Unauthorized:
        raise wrong from None
    with services.db.unit_of_work() as session:
        # Written only over the password just checked: an admin's reset (or a deactivation) that committed since
        # must stand, not be undone by a change whose old password was right a moment before.
        if not still_valid(session, checked):
            raise wrong
        user = session.get_one(User, checked.user_id)
        user.password_hash = generate_password_hash(new_password)
        user.must_change_password = False  # their own now, whoever set the one before
        end_credentials(services, session, checked.user_id, keep)
        account_log.record(session, actor.username, "user.password_change", actor.username,
                           account_log.password_detail(user))


def _locked_user(session: Session, username: str, actor: Actor) -> User:
    """The user, with it, the acting admin and every admin row-locked (in one ordered statement, so two admins
    cannot demote each other at once nor deadlock)."""
    admins = select(UserRole.user_id).where(UserRole.role == "admin")
    session.execute(select(User.id).where(or_(User.username.in_([username, actor.username]), User.id.in_(admins)))
                    .order_by(User.id).with_for_update())
    return _user(session, username)


def require_still_admin(session: Session, actor: Actor) -> None:
    """403 unless the acting admin is still active with the roles its request was authenticated with (the service
    itself has no account): a request read its token just before another admin took the role or the account away
    must not write after that, say giving the role back or creating another admin."""
    if actor.username != SYSTEM.username:
        lock_own_account(session, actor)


def _require_an_active_admin(session: Session) -> None:
    count = session.scalar(select(func.count()).select_from(User).join(UserRole).where(
        UserRole.role == "admin", User.active.is_(True)))
    if not count:
        raise Conflict("the last active admin cannot lose the admin role or be deactivated "
                       "(最后一位在用的系统管理员不能被取消管理员角色或停用)")


def list_users(services: Services, actor: Actor) -> list[dict[str, Any]]:
    """Every user with roles and whether it may log in (admin)."""
    _require_admin(actor)
    with services.db.unit_of_work(write=False) as session:
        return [_view(user) for user in session.scalars(select(User).order_by(User.username))]


def existing_accounts(services: Services) -> dict[str, frozenset[str]]:
    """Every account's username and roles (the demo loader leaves existing accounts alone, unless they are its own
    and a reset is asked for)."""
    with services.db.unit_of_work(write=False) as session:
        return {user.username: frozenset(user.role_keys) for user in session.scalars(select(User))}


def active_usernames(services: Services) -> list[str]:
    """Every active user with at least one role, by name (who may stand in for someone)."""
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(User.username).where(
            User.active.is_(True), User.id.in_(select(UserRole.user_id))).order_by(User.username)))


def usernames_with_role(services: Services, role: str) -> list[str]:
    """Active users holding a role, by name (choices for `x-user-role` fields)."""
    with services.db.unit_of_work(write=False) as session:
        return list(session.scalars(select(User.username).join(UserRole).where(
            UserRole.role == role, User.active.is_(True)).order_by(User.username)))


def user_has_role_in(session: Session) -> Callable[[str, str], bool]:
    """A check 'does this username hold that role' bound to an open session (for forms)."""
    def has_role(username: str, role: str) -> bool:
        found = session.scalar(select(UserRole.role).join(User).where(
            User.username == username, User.active.is_(True), UserRole.role == role))
        return found is not None
    return has_role


def _role_list(services: Services, roles: Any) -> list[str]:
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise Invalid("roles must be a list of role keys (roles 须为角色列表)", {"roles": "须为角色列表 (a list)"})
    _require_known_roles(services, roles)
    return roles


def _require_known_roles(services: Services, roles: list[str]) -> None:
    known = known_codes(services)
    unknown = sorted(set(roles) - set(known))
    if unknown:
        raise Invalid(f"unknown roles: {', '.join(unknown)}; the roles are: {', '.join(known)} (未知角色)",
                      {"roles": ", ".join(unknown)})


def _assign_roles(user: User, roles: list[str]) -> None:
    user.roles = [UserRole(role=role) for role in sorted(set(roles))]


def _require_admin(actor: Actor) -> None:
    policy.require(actor, "user.manage")


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {username} not found (用户不存在)")
    return user


def _view(user: User) -> dict[str, Any]:
    return {"username": user.username, "roles": user.role_keys, "active": user.active, **mail_settings_view(user)}
