"""Ports for the real servers tests start (SMTP, S3, `cadreflow serve`, the browser's app)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on now (the kernel's pick; the caller binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
