"""Login throttling under a burst: parallel wrong guesses never get more password checks than the limit allows.

The attempt is counted before its password is checked, atomically per key, in memory and in Redis alike
(set CADREFLOW_TEST_REDIS, default redis://127.0.0.1:6379/0; skipped with a loud note when Redis is down).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from service.errors import TooManyAttempts, Unauthorized
from service.ratelimit import Throttle, open_storage
from service.usecases import devices, logins, users
from tests.conftest import PASSWORD
from tests.service.test_concurrency import race

REDIS_URL = os.environ.get("CADREFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
DEVICE_KEY = "a-device-cookie-signing-key-for-tests"


@pytest.fixture(params=["memory://", REDIS_URL])
def storage(request) -> Iterator[Any]:
    if request.param.startswith("redis"):
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            pytest.skip(f"!!! REDIS IS NOT REACHABLE at {REDIS_URL} ({error}): the Redis burst test did NOT run !!!")
    yield open_storage(request.param)


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """Every password check, each slowed down so a burst overlaps the way real hashing makes it."""
    seen: list[str] = []
    real = logins.check_password_hash

    def slow_check(password_hash: str, password: str) -> bool:
        seen.append(password)
        time.sleep(0.05)
        return real(password_hash, password)

    monkeypatch.setattr(logins, "check_password_hash", slow_check)
    return seen


def test_a_burst_of_wrong_guesses_checks_at_most_the_limit_then_even_the_right_password_is_429(
        services, storage, checks):
    """3× LOGIN_MAX_FAILURES parallel wrong guesses from as many addresses: at most the limit are checked (401),
    the rest are 429 unchecked, and the right password afterwards is 429 too."""
    services.rate_storage = storage
    name, limit = f"burst{secrets.token_hex(4)}", int(services.settings["LOGIN_MAX_FAILURES"])
    users.create_user(services, name, PASSWORD, ["audit"])  # a fresh name: runs sharing one Redis never meet
    checks.clear()
    results = race(*[lambda i=i: logins.verify_password(services, name, "wrong-password", f"10.{i}.0.1")
                     for i in range(3 * limit)])
    assert len(checks) <= limit, f"{len(checks)} guesses checked, limit {limit}"
    assert sum(isinstance(result, Unauthorized) for result in results) == len(checks)
    assert sum(isinstance(result, TooManyAttempts) for result in results) == 3 * limit - len(checks)
    with pytest.raises(TooManyAttempts):
        logins.verify_password(services, name, PASSWORD, "10.200.0.1")
    assert len(checks) <= limit


def test_a_burst_with_one_device_cookie_checks_at_most_the_limit_and_locks_only_that_device(
        services, storage, checks):
    """3× LOGIN_MAX_FAILURES parallel wrong guesses presenting the owner's device cookie, from as many addresses:
    at most the limit are checked, the device is then refused even the right password, and the name is not."""
    services.rate_storage = storage
    name, limit = f"burst{secrets.token_hex(4)}", int(services.settings["LOGIN_MAX_FAILURES"])
    users.create_user(services, name, PASSWORD, ["audit"])
    device = devices.Device(devices.issue(DEVICE_KEY, name, logins.verify_password(services, name, PASSWORD)
                                          .password_hash), DEVICE_KEY)
    checks.clear()
    results = race(*[lambda i=i: logins.verify_password(services, name, "wrong-password", f"10.{i}.0.2", device)
                     for i in range(3 * limit)])
    assert len(checks) <= limit, f"{len(checks)} guesses checked, limit {limit}"
    assert sum(isinstance(result, TooManyAttempts) for result in results) == 3 * limit - len(checks)
    with pytest.raises(TooManyAttempts):
        logins.verify_password(services, name, PASSWORD, "10.201.0.1", device)
    assert logins.verify_password(services, name, PASSWORD, "10.202.0.1").actor.username == name


def test_right_passwords_in_parallel_use_up_nothing(services, storage, checks):
    """Parallel right passwords are counted while checked and given back: afterwards the full allowance is left."""
    services.rate_storage = storage
    name, limit = f"burst{secrets.token_hex(4)}", int(services.settings["LOGIN_MAX_FAILURES"])
    users.create_user(services, name, PASSWORD, ["audit"])
    results = race(*[lambda: logins.verify_password(services, name, PASSWORD) for _ in range(limit)])
    assert all(isinstance(result, tuple) for result in results), results
    for _ in range(limit - 1):
        with pytest.raises(Unauthorized):
            logins.verify_password(services, name, "wrong-password")
    assert logins.verify_password(services, name, PASSWORD)[1].username == name


def test_take_is_all_or_nothing_and_give_back_uncounts(storage):
    """A take refused for one key counts nothing on the others; give_back frees one place."""
    throttle = Throttle(storage, f"test-{secrets.token_hex(4)}", 2, 60)
    assert throttle.take("a", "b") == 0 and throttle.take("a", "b") == 0
    assert throttle.take("c", "a") > 0  # `a` is full: `c` is not counted either
    assert throttle.take("c") == 0 and throttle.take("c") == 0 and throttle.take("c") > 0
    throttle.give_back("a")
    assert throttle.take("a") == 0 and throttle.take("a") > 0


def test_a_burst_of_public_posts_from_one_address_passes_only_the_limit(services, storage, monkeypatch):
    """The public post limit counts as it tests: were the test and the count two steps (a pause between them
    here), every post of a burst would pass the test before any was counted."""
    from service.usecases import public_posts

    services.rate_storage = storage
    limit = int(services.settings["PUBLIC_POST_LIMIT"])
    real_wait = Throttle.retry_after

    def slow_wait(self: Throttle, *keys: str) -> int:
        wait = real_wait(self, *keys)
        time.sleep(0.05)
        return wait
    monkeypatch.setattr(Throttle, "retry_after", slow_wait)
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.7"  # runs sharing one Redis never meet
    results = race(*[lambda: public_posts.count_public_post(services, address) for _ in range(2 * limit)])
    assert sum(result is None for result in results) == limit
    assert sum(isinstance(result, TooManyAttempts) for result in results) == limit


def test_a_challenge_replayed_in_parallel_is_accepted_once(storage, monkeypatch):
    """A solved proof of work is spent as it is tested: were the test and the spending two steps (a pause between
    them here), every replay of a burst would pass the test before the first spent it."""
    from service.usecases import proof

    real_wait = Throttle.retry_after

    def slow_wait(self: Throttle, *keys: str) -> int:
        wait = real_wait(self, *keys)
        time.sleep(0.05)
        return wait
    monkeypatch.setattr(Throttle, "retry_after", slow_wait)
    issued = proof.issue("test-key", 4, 60)
    nonce = proof.solve(issued["challenge"], 4)
    results = race(*[lambda: proof.verify("test-key", storage, issued["challenge"], nonce, 4, 60) for _ in range(8)])
    assert sum(result is None for result in results) == 1
    assert all(isinstance(result, proof.ProofRefused) and "已使用" in result.message for result in results if result)
