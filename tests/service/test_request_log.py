"""`serve`'s request log: one line per request, whatever the path holds."""

from __future__ import annotations

import logging

import pytest

from service.request_log import RequestLog

FORGED = "\n2026-12-07 09:00:00,000 10.1.2.3 GET /reports/5 200 1.0ms"


def logged(caplog: pytest.LogCaptureFixture, path: str) -> str:
    """The message logged for one request to `path` (a WSGI string: the request's bytes as Latin-1)."""

    def app(environ, start_response):
        start_response("404 NOT FOUND", [])
        return [b""]

    with caplog.at_level(logging.INFO, logger="cadreflow.requests"):
        RequestLog(app)({"REMOTE_ADDR": "198.51.100.9", "REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda *args: None)
    return caplog.records[-1].getMessage()


def test_a_line_break_in_the_path_forges_no_line_of_its_own(caplog):
    """waitress decodes %0a in a path: a stranger's request must not add a line saying another address read a
    report's file. The break is shown escaped, on the one line of that request."""
    line = logged(caplog, "/public/reports/x" + FORGED)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("198.51.100.9 GET /public/reports/x\\n2026-12-07") and line.split()[-2] == "404"


@pytest.mark.parametrize("hidden", ["\r", "\x1b[2J", "\u202e", "\u2028", "\x85"])
def test_controls_and_bidi_overrides_are_escaped(caplog, hidden):
    raw = ("/public/reports/" + hidden).encode("utf-8").decode("latin-1")
    line = logged(caplog, raw)
    assert hidden not in line and "\\" in line


def test_a_chinese_path_is_logged_as_chinese(caplog):
    assert "/cadres/张三" in logged(caplog, "/cadres/张三".encode().decode("latin-1"))
