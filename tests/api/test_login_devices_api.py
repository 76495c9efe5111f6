"""Device credentials on POST /api/auth/token: a program that logged in before keeps getting tokens while
strangers hold its username's count full; the plain `{username, password}` login is unchanged."""

from __future__ import annotations

import secrets

import pytest

from tests.api.support import assert_error
from tests.conftest import PASSWORD

LIMIT = 10  # LOGIN_MAX_FAILURES as shipped


def address() -> str:
    return "10." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))


def token_login(client, username: str, password: str = PASSWORD, source: str | None = None, **extra):
    return client.post("/api/auth/token", json={"username": username, "password": password, **extra},
                       environ_base={"REMOTE_ADDR": source or address()})


def device_of(client, username: str) -> str:
    response = token_login(client, username, device="")
    assert response.status_code == 200, response.json
    return response.json["device"]


def strangers_lock(client, username: str) -> None:
    for _ in range(LIMIT):
        assert_error(token_login(client, username, "wrong-password"), 401)
    assert_error(token_login(client, username), 429, "too_many_attempts")


def test_a_right_password_gets_a_token_and_a_device_credential(client):
    """The answer keeps `token` and `user` and adds `device`, which names no one in clear."""
    answer = token_login(client, "org_head").json
    assert answer["token"] and answer["user"] == {"username": "org_head", "roles": ["org_head"]}
    assert answer["device"] and "org_head" not in answer["device"]


def test_the_owners_program_gets_a_token_while_strangers_have_locked_the_name(client):
    device = device_of(client, "org_head")
    strangers_lock(client, "org_head")
    response = token_login(client, "org_head", device=device)
    assert response.status_code == 200 and response.json["token"]
    assert response.json["device"] != device  # a fresh one for next time; the old one still counts until it expires
    assert token_login(client, "org_head", device=device).status_code == 200


def test_a_device_that_fails_the_limit_is_refused_and_the_name_is_not(client):
    device = device_of(client, "org_head")
    for _ in range(LIMIT):
        assert_error(token_login(client, "org_head", "wrong-password", device=device), 401)
    assert_error(token_login(client, "org_head", device=device), 429, "too_many_attempts")
    assert token_login(client, "org_head").status_code == 200


@pytest.mark.parametrize("spoil", ["other_user", "tampered", 12345, ["a.b"], {"a": "b"}, None, "é.x"])
def test_a_credential_that_proves_nothing_counts_as_none(client, spoil):
    """Another user's credential, a tampered one or any other JSON value: a plain login, never a 500."""
    if spoil == "other_user":
        spoil = device_of(client, "org_dept")
    elif spoil == "tampered":
        payload, signature = device_of(client, "org_head").split(".")
        spoil = f"{payload}x.{signature}"
    strangers_lock(client, "org_head")
    assert_error(token_login(client, "org_head", device=spoil), 429, "too_many_attempts")


def test_the_address_count_applies_with_a_device_too(client):
    device, source = device_of(client, "org_head"), address()
    for attempt in range(LIMIT):
        assert_error(token_login(client, f"ghost{attempt}", "wrong-password", source), 401)
    assert_error(token_login(client, "org_head", source=source, device=device), 429)
    assert token_login(client, "org_head", device=device).status_code == 200
