"""`cadreflow demo` run twice keeps the demo users' passwords unless asked to reset them."""

from __future__ import annotations

import pytest

from service.errors import ServiceError
from service.usecases import devices, logins
from service.usecases.demo import load_demo


def _passwords(lines: list[str]) -> dict[str, str]:
    """The user block that opens the output: `  name  password  roles` lines up to the first other line."""
    users = []
    for line in lines[1:]:
        if not line.startswith("  "):
            break
        users.append(line.split())
    return {row[0]: row[1] for row in users}


def test_a_second_demo_run_keeps_passwords_and_a_reset_replaces_them(fast_services) -> None:
    """The fixture's users exist already, as a first demo run leaves them; a reset gives them printed passwords."""
    assert set(_passwords(load_demo(fast_services)).values()) == {"(unchanged)"}
    first = _passwords(load_demo(fast_services, reset_passwords=True))
    second = load_demo(fast_services)
    assert set(_passwords(second).values()) == {"(unchanged)"}
    assert any("--reset-passwords" in line for line in second)
    assert logins.verify_password(fast_services, "org_dept", first["org_dept"])[1].username == "org_dept"

    reset = _passwords(load_demo(fast_services, reset_passwords=True))
    assert reset["org_dept"] not in ("(unchanged)", first["org_dept"])
    with pytest.raises(ServiceError):
        logins.verify_password(fast_services, "org_dept", first["org_dept"])


def test_a_database_with_records_of_its_own_is_refused_before_anything_is_written(fast_services, fast_app) -> None:
    """Audit finding: `cadreflow demo` on a county's real database created accounts and cadres, then stopped on
    a cadre id of its own with a traceback. It now refuses first, saying why, and writes nothing."""
    from service.usecases import cadres, users
    from service.usecases.context import SYSTEM

    cadres.create_cadre(fast_services, SYSTEM, {"id": "c003", "name": "真实干部", "unit": "县局", "post": "局长",
                                                "post_level": "leading", "post_started_on": "2020-01-01"})
    accounts = users.existing_accounts(fast_services)
    with pytest.raises(ServiceError) as refused:
        load_demo(fast_services, reset_passwords=True)
    assert "empty database" in refused.value.message
    result = fast_app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 1 and "empty database" in result.output and "Traceback" not in result.output
    assert users.existing_accounts(fast_services) == accounts
    assert [c["id"] for c in cadres.list_cadres(fast_services, SYSTEM, what=None)] == ["c003"]


def test_a_reset_never_touches_an_account_that_is_not_the_demos(fast_services) -> None:
    """An `admin` that also holds discipline_head is a person's account, not the demo's: a reset leaves its roles
    and password alone (it was given discipline_head and a new password, never printed, before)."""
    from service.usecases import users
    from service.usecases.context import SYSTEM
    from tests.conftest import PASSWORD

    users.update_user(fast_services, SYSTEM, "admin", roles=["admin", "discipline_head"])
    lines = load_demo(fast_services, reset_passwords=True)
    assert _passwords(lines)["admin"] == "(kept)"
    assert users.existing_accounts(fast_services)["admin"] == {"admin", "discipline_head"}
    assert logins.verify_password(fast_services, "admin", PASSWORD)[1].username == "admin"
    assert _passwords(lines)["org_dept"] not in ("(unchanged)", "(kept)")


def test_the_demo_users_log_in_on_the_web_without_a_demanded_password_change(fast_services) -> None:
    """The printed passwords are the operator's to hand out, as `make run` says: no page waits for a change."""
    printed = _passwords(load_demo(fast_services, reset_passwords=True))
    for username in ("org_dept", "admin"):
        opened = logins.open_web_session(fast_services, username, printed[username], "",
                                         devices.Device("", "no device cookie"))
        holder = logins.session_holder(fast_services, opened.session_id)
        assert holder is not None and not holder.must_change_password
