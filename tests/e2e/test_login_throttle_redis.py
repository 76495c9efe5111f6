"""Login throttling across processes: two real `cadreflow serve` processes counting failures in one Redis."""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import PASSWORD, prepare_database, server_env, serving

pytestmark = pytest.mark.e2e
REDIS_URL = os.environ.get("CADREFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"!!! REDIS IS NOT REACHABLE at {REDIS_URL} ({error}): the cross-process login throttling "
                    "test did NOT run; start redis-server (or set CADREFLOW_TEST_REDIS) to run it !!!")


def post_login(base: str, username: str, password: str, address: str) -> tuple[int, dict[str, str]]:
    """POST /api/auth/token from a client address (a trusted proxy's X-Forwarded-For); (status, headers)."""
    request = urllib.request.Request(base + "/api/auth/token", method="POST",
                                     data=json.dumps({"username": username, "password": password}).encode(),
                                     headers={"Content-Type": "application/json", "X-Forwarded-For": address})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[list[str], list[str]]]:
    """Two serve processes on one database and one Redis, behind one (pretend) trusted proxy.

    Usernames and addresses are random, so runs sharing the Redis server (other checkouts) never meet.
    """
    _require_redis()
    names = [f"u{secrets.token_hex(6)}", f"v{secrets.token_hex(6)}"]
    env = server_env(tmp_path, RATE_LIMIT_STORAGE=REDIS_URL, TRUSTED_PROXIES="1", WORKER_POLL_SECONDS="0.5")
    env.pop("CADREFLOW_SECRET_KEY", None)
    prepare_database(env, {name: "audit" for name in names})
    with serving(tmp_path, env, 2) as servers:
        yield [server.base for server in servers], names


def random_address() -> str:
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def test_failures_spread_over_two_processes_block_the_username_on_both(two_servers):
    """10 wrong passwords alternating between the processes; the 11th try, right password, is 429 on either."""
    bases, (name, other) = two_servers
    for attempt in range(10):
        status, _ = post_login(bases[attempt % 2], name, "wrong-password", random_address())
        assert status == 401
    for base in bases:
        status, headers = post_login(base, name, PASSWORD, random_address())
        assert status == 429 and int(headers["Retry-After"]) > 0
    assert post_login(bases[1], other, PASSWORD, random_address())[0] == 200


def test_failures_spread_over_two_processes_block_the_address_on_both(two_servers):
    """10 wrong logins from one address over both processes block that address for every username."""
    bases, (name, _other) = two_servers
    address = random_address()
    for attempt in range(10):
        assert post_login(bases[attempt % 2], f"ghost{attempt}", "wrong-password", address)[0] == 401
    assert post_login(bases[0], name, PASSWORD, address)[0] == 429
    assert post_login(bases[1], name, PASSWORD, address)[0] == 429
    assert post_login(bases[1], name, PASSWORD, random_address())[0] == 200
