"""Count events per key in a moving window, in this process or shared by every process through Redis.

Built on `limits` (what Flask-Limiter is built on). The storage comes from the RATE_LIMIT_STORAGE
setting: `memory://` counts within one process; `redis://host:6379/0` shares the counts between all
web processes of an instance, so an attacker gains nothing by spreading attempts over them. Login
throttling counts failed logins per username and per address here; the public portal can count its
POSTs per address with a `Throttle` of its own on the same storage, keyed by `address_key` (an IPv6 /64).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter


def open_storage(uri: str) -> Storage:
    """The counter storage named by a URI (`memory://`, `redis://host:port/db`, ...)."""
    storage = storage_from_string(uri or "memory://")
    if not isinstance(storage, Storage):  # an async storage (`async+redis://`) would never be awaited here
        raise ValueError(f"not a synchronous rate-limit storage: {uri}")
    return storage


def address_key(address: str) -> str:
    """Whom a client address stands for in per-address limits: an IPv4 address itself, an IPv6 address its /64
    (one subscriber's network gets a whole /64, so counting single addresses would let it rotate through them)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class Throttle:
    """At most `limit` events per key within any `window_seconds`; counts only what `hit` is told."""

    def __init__(self, storage: Storage, name: str, limit: int, window_seconds: int) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(max(1, limit), max(1, window_seconds), namespace=name)

    def retry_after(self, *keys: str) -> int:
        """Seconds until every key is below its limit again; 0 when all may go ahead now."""
        return max((self._wait(_digest(key)) for key in keys), default=0)

    def hit(self, *keys: str) -> None:
        """Count one event for each key."""
        for key in keys:
            self._limiter.hit(self._item, _digest(key))

    def _wait(self, key: str) -> int:
        if self._limiter.test(self._item, key):
            return 0
        reset_at, _remaining = self._limiter.get_window_stats(self._item, key)
        return max(1, math.ceil(reset_at - time.time()))


def _digest(key: str) -> str:
    """A short fixed-size storage key, whatever a client sent as username or address."""
    return hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()[:32]
