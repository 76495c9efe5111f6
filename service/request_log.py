"""One log line per HTTP request for `cadreflow serve` (waitress logs none of its own)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

LOG = logging.getLogger("cadreflow.requests")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
            LOG.info("%s %s %s %s %.1fms", environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD"),
                     environ.get("PATH_INFO"), status[0], (time.perf_counter() - started) * 1000)


def log_to_stderr() -> None:
    """Send request lines to stderr, timestamped, unless logging was configured already."""
    if not LOG.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
        LOG.propagate = False
