"""The portal's abuse limits across processes: two real `cadreflow serve` processes on one database and
one Redis count an address's public POSTs together, and a solved challenge is spent on both."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.usecases import proof
from tests.e2e.support import prepare_database, server_env, serving
from tests.e2e.test_login_throttle_redis import REDIS_URL, _require_redis, random_address

pytestmark = pytest.mark.e2e
LIMIT = 10  # docs/api.md: at least 10 public POSTs per address per 10 minutes are served
REPORT = {"subject_name": "张三", "subject_unit": "县交通局", "category": "other", "content": "反映问题"}


def call(base: str, path: str, body: dict | None = None, address: str = "10.0.0.1") -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json", "X-Forwarded-For": address})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def solved(base: str) -> dict[str, str]:
    _status, challenge, _ = call(base, "/public/challenge")
    return {"pow_challenge": challenge["challenge"], "pow_nonce": proof.solve(challenge["challenge"],
                                                                               challenge["bits"])}


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[str]]:
    _require_redis()
    env = server_env(tmp_path, RATE_LIMIT_STORAGE=REDIS_URL, TRUSTED_PROXIES="1", PUBLIC_POST_LIMIT=str(LIMIT),
                     PUBLIC_POW_BITS="8", SECRET_KEY="portal-e2e-" + "k" * 40, WORKER_POLL_SECONDS="0.5")
    prepare_database(env, {})
    with serving(tmp_path, env, 2) as servers:
        yield [server.base for server in servers]


def test_an_address_is_limited_across_both_processes(two_servers):
    bases = two_servers
    address = random_address()
    for attempt in range(LIMIT):
        base = bases[attempt % 2]
        status, body, _ = call(base, "/public/reports", {**REPORT, **solved(base)}, address)
        assert status == 201, body
    for base in bases:
        status, body, headers = call(base, "/public/reports", {**REPORT, **solved(base)}, address)
        assert status == 429 and int(headers["Retry-After"]) > 0, body
    assert call(bases[1], "/public/reports", {**REPORT, **solved(bases[1])}, random_address())[0] == 201


def test_a_challenge_is_spent_on_every_process(two_servers):
    first, second = two_servers
    work = solved(first)
    assert call(first, "/public/reports", {**REPORT, **work}, random_address())[0] == 201
    status, body, _ = call(second, "/public/reports", {**REPORT, **work}, random_address())
    assert status == 400 and body["error"]["code"] == "proof_of_work"
