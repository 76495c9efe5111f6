"""One log line per HTTP request for `cadreflow serve` (waitress logs none of its own)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

LOG = logging.getLogger("cadreflow.requests")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# What must not reach a log line as itself: line breaks (a path with %0a would forge a line of its own, a request
# by any address to any page), other controls (a terminal's escapes) and the bidi controls that reorder the line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class RequestLog:
    """Log address, method, path (never the query string: it may carry a search or a tracking key), status, time."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["-"]

        def noting_start(code: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, *rest)

        try:
            return self.app(environ, noting_start)
        finally:
            LOG.info("%s %s %s %s %.1fms", environ.get("REMOTE_ADDR", "-"), printable(environ.get("REQUEST_METHOD")),
                     printable(environ.get("PATH_INFO")), status[0], (time.perf_counter() - started) * 1000)


def printable(raw: Any) -> str:
    """A WSGI string (the request's bytes as Latin-1) as UTF-8 text, with what is unprintable escaped (\\n, \\u202e)."""
    text = str(raw or "").encode("latin-1", "backslashreplace").decode("utf-8", "backslashreplace")
    return _UNPRINTABLE.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


def log_to_stderr() -> None:
    """Send request lines to stderr, timestamped, unless logging was configured already."""
    if not LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
        LOG.propagate = False
