"""Settings: config/defaults.toml, then the file named by CADREFLOW_CONFIG, then CADREFLOW_<KEY>."""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflows.engine import add_duration

from .private_files import private_dir

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = PROJECT_ROOT / "config" / "defaults.toml"
ENV_PREFIX = "CADREFLOW_"
MIN_SECRET_KEY = 32
# Keys published in examples and earlier defaults: anyone can sign a session cookie with them.
PLACEHOLDER_KEYS = frozenset({"change-me-in-production", "change-me", "changeme", "secret", "secret-key",
                              "dev", "development", "test", "testing", "ui-test-secret", "your-secret-key"})
# A number setting must be above 0 (a lifetime, window, interval, limit or size of 0 makes nothing work), except
# these, where 0 has a meaning of its own. Negative numbers are always refused.
ZERO_ALLOWED = frozenset({
    "CREDENTIAL_CACHE_SECONDS",  # keep no credentials
    "WEB_SESSION_IDLE_MINUTES",  # web sessions end only at SESSION_TTL_HOURS
    "TRUSTED_PROXIES",  # trust no X-Forwarded-* header
    "PUBLIC_POW_BITS",  # no proof of work
    "PUBLIC_SURGE_EXTRA_BITS",  # no harder work in a surge
    "EXECUTOR_WORKERS",  # start executors only when a step needs one
    "INCIDENT_RETRIES", "INCIDENT_RETRY_SECONDS",  # no automatic retry; retry at the next poll
    "PDF_WAIT_SECONDS",  # a busy printer answers 503 at once
    "NOTIFY_DUE_SOON_HOURS",  # no "due soon" notice
    "MAIL_DIGEST_HOUR",  # midnight
})
# A browser solves PUBLIC_POW_BITS in JavaScript: 16 bits take a phone about a second and each bit doubles it, so
# 24 take it minutes, near what a reporter waits and inside PUBLIC_POW_TTL's default 15; more locks the public out.
MAX_POW_BITS = 24
# A surge's extra bits are added up to MAX_POW_BITS (service/usecases/portal.py).
AT_MOST = {"PUBLIC_POW_BITS": MAX_POW_BITS, "PUBLIC_SURGE_EXTRA_BITS": 8, "MAIL_DIGEST_HOUR": 23, "SMTP_PORT": 65535,
           "PUBLIC_MAX_BODY": 1_048_576}  # the portal's promise: a body over 1 MB is a 413
# The portal's promises (docs/api.md § Public portal), which no setting may break: at least PROMISED_POSTS public
# POSTs per address (and per IPv6 /48) within PROMISED_WINDOW seconds are served, and a report of 20,000 characters
# is taken: as JSON with every character escaped (a surrogate pair, 12 bytes, for one outside the BMP), 240,000
# bytes and its other fields.
PROMISED_POSTS, PROMISED_WINDOW = 10, 600
AT_LEAST = {"PUBLIC_MAX_BODY": 262_144}


class SettingsError(ValueError):
    """A setting the service refuses to start with."""


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge the layers of configuration into one dictionary."""
    environ = os.environ if environ is None else environ
    defaults = _read_toml(DEFAULTS)
    settings = dict(defaults)  # a shallow copy is enough: _merge replaces values, it never edits a table in place
    if environ.get("CADREFLOW_CONFIG"):
        _merge(settings, _read_toml(Path(environ["CADREFLOW_CONFIG"])))
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != "CADREFLOW_CONFIG":
            key = name[len(ENV_PREFIX):]
            _merge(settings, {key: _parse_env(raw, text=isinstance(defaults.get(key), str))})
    _merge(settings, dict(overrides or {}))
    if not settings.get("DATABASE_URL"):
        instance = PROJECT_ROOT / "instance"
        private_dir(instance)  # the database, its key and attachments: the service's user alone may read them
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'cadreflow.sqlite3'}"
    settings["BPMN_DIR"] = str((PROJECT_ROOT / settings["BPMN_DIR"]).resolve())
    check_settings(settings, defaults)
    return settings


def check_settings(settings: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Refuse at start, naming the key, a setting the service would only fail on later (a 500, a crashed worker,
    a case stuck on its timer): each keeps its default's kind (number, true/false, table, list) and range, every
    deadline is a duration the engine reads, and TIMEZONE is a zone."""
    for key, default in defaults.items():
        _check_kind(key, settings.get(key), default)
    for name, duration in settings["DEADLINES"].items():
        _check_duration(f"DEADLINES.{name}", duration)
    _check_zone(settings.get("TIMEZONE"))
    _check_portal_rate(settings)


def _check_portal_rate(settings: Mapping[str, Any]) -> None:
    """Each public-post limit serves at least PROMISED_POSTS within PROMISED_WINDOW: as many at once, and as many
    per PROMISED_WINDOW over a longer window."""
    window = settings["PUBLIC_POST_WINDOW"]
    for key in ("PUBLIC_POST_LIMIT", "PUBLIC_NETWORK_POST_LIMIT"):
        limit = settings[key]
        _require(limit * PROMISED_WINDOW >= PROMISED_POSTS * max(window, PROMISED_WINDOW), key, limit,
                 f"at least {PROMISED_POSTS} per {PROMISED_WINDOW} s of PUBLIC_POST_WINDOW ({window} s)",
                 f"每 {PROMISED_WINDOW} 秒至少应受理 {PROMISED_POSTS} 次")


def _check_kind(key: str, value: Any, default: Any) -> None:
    """`value` is of the kind of `default` (a number in range; tables entry by entry); strings are not checked."""
    if isinstance(default, dict):
        _require(isinstance(value, dict), key, value, "a table, like its default", "应为表")
        for name, inner in default.items():
            if name in value:
                _check_kind(f"{key}.{name}", value[name], inner)
    elif isinstance(default, list):
        _require(isinstance(value, list), key, value, "a list", "应为列表")
    elif isinstance(default, bool):
        _require(isinstance(value, bool), key, value, "true or false", "应为 true 或 false")
    elif isinstance(default, int | float):
        _check_number(key, value, whole=isinstance(default, int))


def _check_number(key: str, value: Any, whole: bool) -> None:
    if whole:
        _require(isinstance(value, int) and not isinstance(value, bool), key, value, "a whole number", "应为整数")
    else:
        _require(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
                 key, value, "a number", "应为数字")
    short = key.rsplit(".", 1)[-1]
    if short in ZERO_ALLOWED:
        _require(value >= 0, key, value, "0 or more", "不得为负数")
    else:
        _require(value > 0, key, value, "more than 0", "应大于 0")
    highest, lowest = AT_MOST.get(key), AT_LEAST.get(key)
    if highest is not None:
        _require(value <= highest, key, value, f"at most {highest}", f"不得大于 {highest}")
    if lowest is not None:
        _require(value >= lowest, key, value, f"at least {lowest}", f"不得小于 {lowest}")


def _check_duration(key: str, value: Any) -> None:
    """An ISO 8601 duration as the engine's timers read it (P5D, PT12H; "" and "P" name no time: refused)."""
    try:
        usable = isinstance(value, str) and any(c.isdigit() for c in value) \
            and bool(add_duration(datetime.now(UTC), value))
    except Exception:  # SpiffWorkflow's parser raises a bare Exception("Invalid duration"); a huge one overflows
        usable = False
    _require(usable, key, value, "an ISO 8601 duration such as P5D or PT12H", "应为 ISO 8601 时长，如 P5D")


def _check_zone(value: Any) -> None:
    try:
        known = isinstance(value, str) and bool(ZoneInfo(value))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown; not a name; a name too long for a file
        known = False
    _require(known, "TIMEZONE", value, "a time zone name such as Asia/Shanghai", "应为时区名称，如 Asia/Shanghai")


def _require(condition: bool, key: str, value: Any, what: str, chinese: str) -> None:
    if not condition:
        raise SettingsError(f"{key} must be {what}, not {value!r:.60} ({key} {chinese})")


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _json_string(raw: str) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def _parse_env(raw: str, text: bool) -> Any:
    """An environment variable's value: as written for a text setting (a password "1.50" must not become 1.5),
    unless written as a JSON string ("…", as every value was once read: such a deployment keeps its value), else
    read as JSON when it parses (numbers, flags, tables such as DEADLINES)."""
    if text:
        return _json_string(raw) if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _merge(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Merge tables key by key, so DEADLINES={"public_notice": "PT2S"} keeps the other deadlines."""
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        else:
            target[key] = value


def secret_key(settings: Mapping[str, Any]) -> str:
    """The configured SECRET_KEY, "" when unset (the instance then generates its own); weak keys are refused."""
    key = settings.get("SECRET_KEY") or ""
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)  # CADREFLOW_SECRET_KEY=<digits> parses as a JSON number
    if not isinstance(key, str):
        raise SettingsError("SECRET_KEY must be a string (SECRET_KEY 必须是字符串)")
    if key and (key.strip().lower() in PLACEHOLDER_KEYS or len(key) < MIN_SECRET_KEY or len(set(key)) < 10):
        raise SettingsError(
            f"SECRET_KEY is a known placeholder or too weak: use at least {MIN_SECRET_KEY} random characters "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), or leave it empty and the "
            f"instance generates and keeps its own key (SECRET_KEY 是公开的占位值或过弱：请使用至少 {MIN_SECRET_KEY} "
            "个随机字符，或留空由实例自动生成并保存)")
    return key
