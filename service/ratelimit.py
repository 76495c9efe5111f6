"""Count events per key in a moving window, in this process or shared by every process through Redis.

Built on `limits` (what Flask-Limiter is built on). The storage comes from the RATE_LIMIT_STORAGE
setting: `memory://` counts within one process; `redis://host:6379/0` shares the counts between all
web processes of an instance, so an attacker gains nothing by spreading attempts over them. Login
throttling counts failed logins per username and per address here; the public portal can count its
POSTs per address with a `Throttle` of its own on the same storage, keyed by `address_key` (an IPv6 /64), and
per wider network with another, keyed by `network_key` (an IPv6 /48).

`take` counts an attempt and tells whether it fits in one atomic step per key, so a burst of parallel
attempts cannot all pass a check made before any of them is counted; `give_back` un-counts an attempt
that turned out not to count (a right password). Only the memory and Redis storages can give back.

A store out of reach (Redis down, or silent past redis-py's socket timeout) is `Unavailable`, a 503: the
throttles fail closed, since whoever could knock Redis over must not thereby lift the login throttle, the
portal's limits or a challenge's single use; and a 500 would tell callers nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from service.errors import Unavailable

Result = TypeVar("Result")


def open_storage(uri: str) -> Storage:
    """The counter storage named by a URI (`memory://`, `redis://host:port/db`, ...)."""
    storage = storage_from_string(uri or "memory://")
    if not isinstance(storage, Storage):  # an async storage (`async+redis://`) would never be awaited here
        raise ValueError(f"not a synchronous rate-limit storage: {uri}")
    if not isinstance(storage, (MemoryStorage, RedisStorage)):  # Throttle.give_back knows these two only
        raise ValueError(f"rate-limit storage must be memory:// or redis:// (Sentinel, Cluster): {uri}")
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


def network_key(address: str) -> str | None:
    """The wider network an IPv6 client stands in, its /48, for the limits per network; None for IPv4 and anything
    else. A /48 is one site's allocation, and a tunnel broker hands one out for free: 65,536 /64s, each of which
    `address_key` would count apart. (An IPv4 /24 is no such unit: behind a carrier's NAT it holds strangers.)"""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if not isinstance(ip, ipaddress.IPv6Address) or ip.ipv4_mapped is not None:
        return None
    return str(ipaddress.IPv6Network((int(ip) >> 80 << 80, 48)))


def _reachable(method: Callable[..., Result]) -> Callable[..., Result]:
    """A storage error inside `method` becomes Unavailable (503, nothing counted that the caller relies on)."""
    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Result:
        try:
            return method(*args, **kwargs)
        except (RedisError, StorageError):
            raise Unavailable("the rate-limit store cannot be reached; try again shortly "
                              "(计数服务暂时无法访问，请稍后再试)") from None
    return wrapper


class Throttle:
    """At most `limit` events per key within any `window_seconds`; counts only what `take` is told."""

    def __init__(self, storage: Storage, name: str, limit: int, window_seconds: int) -> None:
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(max(1, limit), max(1, window_seconds), namespace=name)

    @_reachable
    def take(self, *keys: str) -> int:
        """Count one event for every key if each is below its limit (0), else count none: the seconds to wait.

        Each key's test-and-count is one atomic step (a lock in memory, a Lua script in Redis), so of any
        number of parallel takes at most `limit` per key succeed within the window.
        """
        taken: list[str] = []
        for key in keys:
            if not self._limiter.hit(self._item, _digest(key)):
                self.give_back(*taken)  # all or nothing: a refused attempt uses up no other key's allowance
                return max(1, self.retry_after(*keys))
            taken.append(key)
        return 0

    @_reachable
    def give_back(self, *keys: str) -> None:
        """Un-count one event (the newest) of each key: a `take` that turned out not to count."""
        for key in keys:
            _drop_newest(self._storage, self._item.key_for(_digest(key)))

    @_reachable
    def retry_after(self, *keys: str) -> int:
        """Seconds until every key is below its limit again; 0 when all may go ahead now."""
        return max((self._wait(_digest(key)) for key in keys), default=0)

    def _wait(self, key: str) -> int:
        if self._limiter.test(self._item, key):
            return 0
        reset_at, _remaining = self._limiter.get_window_stats(self._item, key)
        return max(1, math.ceil(reset_at - time.time()))


def _drop_newest(storage: Storage, key: str) -> None:
    """Remove the newest entry of a moving window (`limits` keeps them newest first) from the storage."""
    if isinstance(storage, RedisStorage):
        connection: Any = storage.get_connection()  # redis-py (plain, Sentinel, Cluster): limits types it narrower
        connection.lpop(storage.prefixed_key(key))
    elif isinstance(storage, MemoryStorage):
        with storage.locks[key]:
            del storage.events.get(key, [])[:1]
    else:
        raise TypeError(f"cannot un-count in {type(storage).__name__}")


def _digest(key: str) -> str:
    """A short fixed-size storage key, whatever a client sent as username or address."""
    return hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()[:32]
