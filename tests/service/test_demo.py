"""`cadreflow demo` run twice keeps the demo users' passwords unless asked to reset them."""

from __future__ import annotations

import pytest

from service.errors import ServiceError
from service.usecases import logins
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
