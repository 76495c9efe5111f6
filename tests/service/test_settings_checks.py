"""Settings are checked at start: a value the service would only fail on later (a 500, a crashed worker, a case
stuck on its timer) is refused with a SettingsError naming its key, and the CLI says so without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import create_app
from service.config import DEFAULTS, SettingsError, _read_toml, load_settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NUMBERS = [key for key, value in _read_toml(DEFAULTS).items()
                   if isinstance(value, int | float) and not isinstance(value, bool)]

# What the audit of a running instance set (CADREFLOW_<KEY>=<raw>), and the key each must be refused for.
AUDITED = [("TOKEN_TTL_HOURS", "abc"), ("LOGIN_MAX_FAILURES", "ten"), ("PUBLIC_MAX_BODY", "abc"),
           ("PUBLIC_POW_BITS", "abc"), ("PUBLIC_POW_BITS", "300"), ("TOKEN_TTL_HOURS", "-5"),
           ("WORKER_POLL_SECONDS", "abc"), ("DEADLINES", '{"public_notice": "5 days"}'), ("TRUSTED_PROXIES", "one"),
           ("MAX_ATTACHMENT_BYTES", "10MB"), ("CREDENTIAL_CACHE_SECONDS", "abc"), ("TIMEZONE", "Mars/Base"),
           ("DEADLINES", '"P5D"')]


@pytest.mark.parametrize(("key", "raw"), AUDITED)
def test_what_the_audit_found_is_refused_naming_the_key(key, raw):
    with pytest.raises(SettingsError, match=key):
        load_settings(environ={f"CADREFLOW_{key}": raw})


@pytest.mark.parametrize("key", DEFAULT_NUMBERS)
def test_every_number_of_the_defaults_must_stay_a_number(key):
    """Derived from config/defaults.toml: a new number setting is checked without being listed anywhere."""
    for raw in ("abc", "-1", '"12"', "null", "true"):
        with pytest.raises(SettingsError, match=key):
            load_settings(environ={f"CADREFLOW_{key}": raw})


@pytest.mark.parametrize(("settings", "key"), [
    ({"TOKEN_TTL_HOURS": 0}, "TOKEN_TTL_HOURS"),  # tokens refused the moment they are issued
    ({"TOKEN_TTL_HOURS": 1.5}, "TOKEN_TTL_HOURS"),  # a whole number, like its default
    ({"WORKER_POLL_SECONDS": 0}, "WORKER_POLL_SECONDS"),  # a busy loop
    ({"WORKER_POLL_SECONDS": float("inf")}, "WORKER_POLL_SECONDS"),
    ({"PUBLIC_POW_BITS": 25}, "PUBLIC_POW_BITS"),  # beyond what a phone solves while the challenge lives
    ({"PUBLIC_SURGE_EXTRA_BITS": 9}, "PUBLIC_SURGE_EXTRA_BITS"),  # 512 times the work: the public locked out
    ({"PUBLIC_SURGE_POSTS": 0}, "PUBLIC_SURGE_POSTS"),  # a portal always in surge
    ({"MAIL_DIGEST_HOUR": 24}, "MAIL_DIGEST_HOUR"),
    ({"SMTP_SSL": "yes"}, "SMTP_SSL"),
    ({"SMTP_STARTTLS": 1}, "SMTP_STARTTLS"),
    ({"DEPLOY_LIMITS": {"max_fan_out": "50"}}, "DEPLOY_LIMITS.max_fan_out"),
    ({"DEPLOY_LIMITS": 50}, "DEPLOY_LIMITS"),
    ({"START_ROLES": ["org_dept"]}, "START_ROLES"),
    ({"ROLES": "admin"}, "ROLES"),
    ({"DEADLINES": {"public_notice": 5}}, "DEADLINES.public_notice"),
    ({"DEADLINES": {"public_notice": ""}}, "DEADLINES.public_notice"),
    ({"DEADLINES": {"public_notice": "P99999Y"}}, "DEADLINES.public_notice"),  # past the year 9999
    ({"DEADLINES": {"a_new_one": "soon"}}, "DEADLINES.a_new_one"),  # a deadline the defaults do not name
    ({"TIMEZONE": "../../etc/passwd"}, "TIMEZONE"),
    ({"TIMEZONE": 8}, "TIMEZONE"),
])
def test_kinds_ranges_durations_and_zones(settings, key):
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_settings(settings, environ={})


def test_what_the_defaults_allow_still_starts():
    """An int where the default is a float, 0 where 0 means something, a new deadline, another zone."""
    settings = load_settings({"WORKER_POLL_SECONDS": 1, "SCRIPT_TIMEOUT_SECONDS": 0.25, "TRUSTED_PROXIES": 0,
                              "PUBLIC_POW_BITS": 0, "PUBLIC_SURGE_EXTRA_BITS": 0,
                              "CREDENTIAL_CACHE_SECONDS": 0, "INCIDENT_RETRY_SECONDS": 0,
                              "WEB_SESSION_IDLE_MINUTES": 0,
                              "SESSION_COOKIE_SECURE": True, "TIMEZONE": "Asia/Urumqi",
                              "DEADLINES": {"public_notice": "PT30S", "a_new_one": "P1Y2M"}}, environ={})
    assert settings["DEADLINES"]["public_notice"] == "PT30S" and settings["DEADLINES"]["investigation"] == "P60D"


def test_create_app_refuses_before_building_anything(tmp_path):
    with pytest.raises(SettingsError, match="PUBLIC_POW_BITS"):
        create_app(make_settings(tmp_path, PUBLIC_POW_BITS=300))


@pytest.mark.parametrize("command", [["worker", "--once"], ["serve", "--port", "1"]])
def test_the_cli_refuses_to_start_naming_the_key(tmp_path, command):
    """`cadreflow worker` with WORKER_POLL_SECONDS=abc exits at once, saying which setting and why."""
    env = {**os.environ, "CADREFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
           "CADREFLOW_WORKER_POLL_SECONDS": "abc"}
    done = subprocess.run([sys.executable, "-c", "from service.cli import main; main()", *command], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "refusing to start: WORKER_POLL_SECONDS must be a number" in done.stderr


@pytest.mark.parametrize(("settings", "key"), [
    ({"PUBLIC_POST_LIMIT": 9}, "PUBLIC_POST_LIMIT"),  # the tenth report of an address within 10 minutes a 429
    ({"PUBLIC_POST_LIMIT": 10, "PUBLIC_POST_WINDOW": 601}, "PUBLIC_POST_LIMIT"),  # fewer than 10 per 10 minutes
    ({"PUBLIC_POST_LIMIT": 20, "PUBLIC_POST_WINDOW": 3600}, "PUBLIC_POST_LIMIT"),
    ({"PUBLIC_NETWORK_POST_LIMIT": 5}, "PUBLIC_NETWORK_POST_LIMIT"),  # one IPv6 address is its /48's only one
    ({"PUBLIC_MAX_BODY": 1_048_577}, "PUBLIC_MAX_BODY"),  # a body over 1 MB taken by the portal
    ({"PUBLIC_MAX_BODY": 100_000}, "PUBLIC_MAX_BODY"),  # a report of 20,000 characters refused as too large
])
def test_portal_settings_that_would_break_its_promises_are_refused(settings, key):
    """docs/api.md § Public portal promises at least 10 public POSTs per address per 10 minutes, reports of 20,000
    characters taken and bodies over 1 MB refused (413): an operator's setting cannot quietly break it."""
    with pytest.raises(SettingsError, match=key):
        load_settings(settings, environ={})


def test_portal_settings_that_keep_its_promises_start():
    settings = load_settings({"PUBLIC_POST_LIMIT": 10, "PUBLIC_POST_WINDOW": 600, "PUBLIC_NETWORK_POST_LIMIT": 20,
                              "PUBLIC_MAX_BODY": 262_144}, environ={})
    assert settings["PUBLIC_POST_LIMIT"] == 10 and settings["PUBLIC_MAX_BODY"] == 262_144
    assert load_settings({"PUBLIC_POST_LIMIT": 60, "PUBLIC_POST_WINDOW": 3600}, environ={})["PUBLIC_POST_LIMIT"] == 60
