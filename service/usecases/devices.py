"""Device cookies (OWASP "Slow Down Online Guessing Attacks with Device Cookies"): a browser that once logged in
as a user proves it at that user's next login, and its attempts count per (user, device) instead of per user,
so strangers guessing a known username cannot lock its owner's own browsers out.

A cookie is `<payload>.<signature>`: the payload names the user, a random nonce, its expiry and a fingerprint of
the password hash it was issued under, signed (HMAC-SHA256) with the instance key. It is issued only after a
right password, and stops counting as a device once it expires or the password changes (a password change must
also end the guessing allowance of every browser that knew the old one). Anything else is no device at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from service.db.models import User

from .context import Services

COOKIE = "cadreflow_device"
MAX_AGE = 365 * 24 * 3600
MAX_LENGTH = 1024  # ours are about 200 characters: anything longer is not worth decoding


@dataclass(frozen=True)
class Device:
    """What a client shows at login: its device cookie or credential ("" when it has none; anything but a string
    counts as none) and the key that signs them."""

    cookie: Any
    key: str


def issue(key: str, username: str, password_hash: str, now: float | None = None) -> str:
    """A fresh device cookie for a user who just gave the right password (whose hash is `password_hash`)."""
    body = {"u": username, "n": secrets.token_urlsafe(16), "exp": int((now or time.time()) + MAX_AGE),
            "p": _fingerprint(key, password_hash)}
    encoded = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{encoded}.{_sign(key, encoded)}"


def trusted_nonce(services: Services, username: str, device: Device | None, now: float | None = None) -> str | None:
    """The nonce of the device cookie, if it is ours, unexpired and for this user under the password it has now;
    None otherwise (it then counts as no device)."""
    claim = _signed_claim(device, username, now) if device else None
    if claim is None or device is None:
        return None
    with services.db.unit_of_work(write=False) as session:  # read only for a cookie we signed for this name
        password_hash = session.scalar(select(User.password_hash).where(User.username == username,
                                                                         User.active.is_(True)))
    if password_hash is None or not hmac.compare_digest(claim["p"], _fingerprint(device.key, password_hash)):
        return None
    return str(claim["n"])


def _signed_claim(device: Device, username: str, now: float | None) -> dict[str, Any] | None:
    """The cookie's payload if its signature is ours, it names `username` and has not expired."""
    cookie = device.cookie
    if not _well_formed(cookie):
        return None
    encoded, signature = cookie.split(".")
    if not hmac.compare_digest(signature, _sign(device.key, encoded)):
        return None
    try:
        claim = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claim, dict) or claim.get("u") != username or claim.get("exp", 0) < (now or time.time()):
        return None
    return claim


def _well_formed(cookie: Any) -> bool:
    """Shaped like ours: ASCII (compare_digest raises on other text) `payload.signature` of a sane length."""
    return isinstance(cookie, str) and 0 < len(cookie) <= MAX_LENGTH and cookie.isascii() and cookie.count(".") == 1


def _fingerprint(key: str, password_hash: str) -> str:
    """Names the password hash without revealing anything of it."""
    return _b64(hmac.new(key.encode(), b"cadreflow-device-password:" + password_hash.encode(),
                         hashlib.sha256).digest()[:16])


def _sign(key: str, encoded: str) -> str:
    return _b64(hmac.new(key.encode(), b"cadreflow-device:" + encoded.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
