"""Settings: config/defaults.toml, then the file named by CADREFLOW_CONFIG, then CADREFLOW_<KEY>."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = PROJECT_ROOT / "config" / "defaults.toml"
ENV_PREFIX = "CADREFLOW_"
MIN_SECRET_KEY = 32
# Keys published in examples and earlier defaults: anyone can sign a session cookie with them.
PLACEHOLDER_KEYS = frozenset({"change-me-in-production", "change-me", "changeme", "secret", "secret-key",
                              "dev", "development", "test", "testing", "ui-test-secret", "your-secret-key"})


class SettingsError(ValueError):
    """A setting the service refuses to start with."""


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge the layers of configuration into one dictionary."""
    environ = os.environ if environ is None else environ
    settings = _read_toml(DEFAULTS)
    if environ.get("CADREFLOW_CONFIG"):
        _merge(settings, _read_toml(Path(environ["CADREFLOW_CONFIG"])))
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != "CADREFLOW_CONFIG":
            _merge(settings, {name[len(ENV_PREFIX):]: _parse_env(raw)})
    _merge(settings, dict(overrides or {}))
    if not settings.get("DATABASE_URL"):
        instance = PROJECT_ROOT / "instance"
        instance.mkdir(exist_ok=True)
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'cadreflow.sqlite3'}"
    settings["BPMN_DIR"] = str((PROJECT_ROOT / settings["BPMN_DIR"]).resolve())
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _parse_env(raw: str) -> Any:
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
