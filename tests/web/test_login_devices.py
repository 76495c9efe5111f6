"""Device cookies at the login form: strangers guessing a known username do not lock its owner's browsers out.

Each test runs with the login counts in memory and in Redis (CADREFLOW_TEST_REDIS, default
redis://127.0.0.1:6379/0; skipped with a loud note when Redis is down). Usernames and addresses are random, so
runs sharing one Redis never meet.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from service import create_app
from service.db.models import User
from service.usecases import devices, users
from tests.conftest import PASSWORD, copy_database, make_settings
from tests.web.test_web_shell import csrf_token

REDIS_URL = os.environ.get("CADREFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")
LIMIT = 10  # LOGIN_MAX_FAILURES as shipped


@pytest.fixture(params=["memory://", REDIS_URL])
def app(request, role_users_template, tmp_path) -> Iterator[Flask]:
    if request.param.startswith("redis"):
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except redis.RedisError as error:
            pytest.skip(f"!!! REDIS IS NOT REACHABLE at {REDIS_URL} ({error}): the Redis device-cookie tests "
                        "did NOT run !!!")
    copy_database(role_users_template, tmp_path)
    app = create_app(make_settings(tmp_path, RATE_LIMIT_STORAGE=request.param))
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def owner(app) -> str:
    """A fresh user (a fresh name: runs sharing one Redis never meet)."""
    name = f"head{secrets.token_hex(4)}"
    users.create_user(app.extensions["cadreflow"], name, PASSWORD, ["org_head"])
    return name


def address() -> str:
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def post_login(client, username: str, password: str = PASSWORD, source: str | None = None) -> int:
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": csrf_token(client)},
                           environ_base={"REMOTE_ADDR": source or address()})
    return response.status_code


def device_cookie(client) -> str:
    cookie = client.get_cookie(devices.COOKIE, path="/login")
    assert cookie is not None, "the login set no device cookie"
    return cookie.value


def browser_with(app: Flask, cookie: str):
    client = app.test_client()
    client.set_cookie(devices.COOKIE, cookie, path="/login")
    return client


def strangers_lock(app: Flask, username: str) -> None:
    """LIMIT wrong passwords for the name from as many addresses and cookie-less browsers: its per-user key is full."""
    for _ in range(LIMIT):
        assert post_login(app.test_client(), username, "wrong-password") == 401
    assert post_login(app.test_client(), username) == 429


def password_hash(app: Flask, username: str) -> str:
    with app.extensions["cadreflow"].db.unit_of_work(write=False) as session:
        return session.scalar(select(User.password_hash).where(User.username == username))


class TestTheCookie:
    def test_a_login_gives_a_long_lived_httponly_strict_cookie_for_the_login_form_only(self, app, owner):
        """Set after a right password only; it names no one in clear, lives a year and goes back only to /login."""
        client = app.test_client()
        assert post_login(client, owner, "wrong-password") == 401
        assert client.get_cookie(devices.COOKIE, path="/login") is None
        response = client.post("/login", data={"username": owner, "password": PASSWORD,
                                                "csrf_token": csrf_token(client)})
        header = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith(devices.COOKIE))
        assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/login" in header
        assert f"Max-Age={365 * 24 * 3600}" in header and "Secure" not in header and owner not in header

    def test_over_https_the_cookie_is_secure(self, app, owner):
        """Like the session cookie: https (here, or at a trusted proxy) never hands it to plain http."""
        client = app.test_client()
        how = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/login"}}
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login", **how).get_data(as_text=True))
        response = client.post("/login", data={"username": owner, "password": PASSWORD, "csrf_token": token.group(1)},
                               **how)
        assert response.status_code == 302, response.get_data(as_text=True)
        assert any(value.startswith(devices.COOKIE) and "Secure" in value
                   for value in response.headers.getlist("Set-Cookie"))


class TestStrangersCannotLockTheOwnerOut:
    def test_the_owners_browser_logs_in_while_strangers_have_locked_the_name(self, app, owner):
        """Strangers fill the per-user count: a browser without the cookie is refused, the owner's goes in."""
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        strangers_lock(app, owner)
        assert post_login(app.test_client(), owner) == 429
        assert post_login(browser_with(app, device_cookie(mine)), owner) == 302

    def test_the_owners_failures_count_on_the_device_not_the_name(self, app, owner):
        """A mistyped password on the owner's browser still leaves it in once strangers locked the name."""
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        strangers_lock(app, owner)
        for _ in range(LIMIT - 1):
            assert post_login(mine, owner, "wrong-password") == 401
        assert post_login(mine, owner) == 302


class TestADeviceLocksItself:
    def test_a_device_that_fails_the_limit_is_refused_even_the_right_password(self, app, owner):
        """LIMIT failures with one device cookie (from as many addresses) lock that cookie for the window; the
        name's own count is untouched, so another browser of the owner still gets in."""
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        cookie = device_cookie(mine)
        for _ in range(LIMIT):
            assert post_login(browser_with(app, cookie), owner, "wrong-password") == 401
        assert post_login(browser_with(app, cookie), owner) == 429
        assert post_login(app.test_client(), owner) == 302


class TestNoDevice:
    @pytest.mark.parametrize("spoil", ["forged", "other_user", "expired", "old_password", "garbage"])
    def test_a_cookie_that_proves_nothing_counts_as_none(self, app, owner, spoil):
        """A forged, another user's, expired or pre-password-change cookie (or junk) is a cookie-less attempt:
        the per-user count that strangers filled refuses it."""
        services = app.extensions["cadreflow"]
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        real = device_cookie(mine)
        if spoil == "other_user":
            other = app.test_client()
            assert post_login(other, "org_head") == 302
            cookie = device_cookie(other)
        elif spoil == "expired":
            cookie = devices.issue(str(app.secret_key), owner, password_hash(app, owner),
                                   now=time.time() - devices.MAX_AGE - 60)
        elif spoil == "old_password":
            users.create_user(services, owner, PASSWORD, ["org_head"])  # reset: a new hash of the same password
            cookie = real
        elif spoil == "forged":
            payload, signature = real.split(".")
            cookie = f"{payload}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"
        else:
            cookie = "x" * 2000 + ".y"  # past the length worth decoding
        strangers_lock(app, owner)
        assert post_login(browser_with(app, cookie), owner) == 429

    def test_a_cookie_signed_with_another_key_counts_as_none(self, app, owner):
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        cookie = devices.issue("another-instance-key-" + "k" * 20, owner, password_hash(app, owner))
        strangers_lock(app, owner)
        assert post_login(browser_with(app, cookie), owner) == 429
        assert post_login(browser_with(app, device_cookie(mine)), owner) == 302


class TestTheAddressStillCounts:
    def test_an_address_that_failed_the_limit_blocks_even_a_proven_device(self, app, owner):
        """The per-address count applies with a device cookie too: a guessing address gains nothing by holding one."""
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        cookie, source = device_cookie(mine), address()
        for attempt in range(LIMIT):
            assert post_login(app.test_client(), f"ghost{secrets.token_hex(3)}{attempt}", "wrong-password",
                              source) == 401
        assert post_login(browser_with(app, cookie), owner, source=source) == 429
        assert post_login(browser_with(app, cookie), owner) == 302


class TestAPasswordChangeCountsOnItsLogin:
    def change(self, client, old: str, new: str = "a-new-password-2026") -> str:
        response = client.post("/account/password", data={"old_password": old, "new_password": new,
                                                          "confirm_password": new, "csrf_token": csrf_token(client)},
                               environ_base={"REMOTE_ADDR": address()})
        return response.headers.get("Location", "")

    def test_the_owner_changes_the_password_while_strangers_have_locked_the_name(self, app, owner):
        """The change confirms the old password on the login it is made from: the name's full count is not its."""
        mine = app.test_client()
        assert post_login(mine, owner) == 302
        strangers_lock(app, owner)
        before = password_hash(app, owner)
        assert self.change(mine, PASSWORD) == "/"
        assert password_hash(app, owner) != before

    def test_a_login_that_guesses_the_old_password_locks_itself_not_the_name(self, app, owner):
        """A stolen session guessing the old password gets LIMIT tries, then 429 even for the right one; the
        owner's other browsers still log in."""
        stolen = app.test_client()
        assert post_login(stolen, owner) == 302
        for _ in range(LIMIT):
            assert self.change(stolen, "wrong-password") == "/account/password"
        before = password_hash(app, owner)
        assert self.change(stolen, PASSWORD) == "/account/password"
        assert password_hash(app, owner) == before
        assert post_login(app.test_client(), owner) == 302
