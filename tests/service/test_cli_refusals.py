"""`cadreflow` commands refuse what they cannot do with a message and an exit code, never a traceback, and never
do something other than what was asked (a scan of year 9999, a port taken modulo 65536, a server without threads)."""

from __future__ import annotations

import pytest


def refused(result, exit_code: int) -> str:
    """A refusal said in a message, not a traceback: the command exits `exit_code`; its output."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return result.output


def case_total(api) -> int:
    return api.get("/api/cases").json["total"]


@pytest.mark.parametrize("command", ["rotation-scan", "early-warning-scan"])
@pytest.mark.parametrize("day", ["0001-01-01", "1949-09-30", "3000-01-01", "9999-12-31"])
def test_a_scan_day_lies_where_the_api_lets_it(app, api, cadre, command, day):
    """The bounds of the API's `on` (1949-10-01 … 2999-12-31): outside them a scan opens nothing and says why."""
    before = case_total(api)
    output = refused(app.test_cli_runner().invoke(args=[command, "--on", day]), 2)
    assert "--on" in output and "1949-10-01" in output and "2999-12-31" in output
    assert case_total(api) == before
