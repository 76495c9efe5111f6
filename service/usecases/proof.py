"""Proof of work for the public portal, needing no outside service (hashcash style).

The server hands out a challenge signed with its key (random id, difficulty, expiry); the client finds
a nonce such that SHA-256 of "<challenge>:<nonce>" starts with `bits` zero bits, and sends both with
its POST. The server checks the signature, the expiry and the work, and accepts each challenge once
(the spent ids are counted in the rate-limit storage, shared by every process like the limits).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from limits.storage import Storage

from service.errors import BadRequest
from service.ratelimit import Throttle

MAX_BITS = 32


class ProofRefused(BadRequest):
    code = "proof_of_work"


def issue(key: str, bits: int, ttl_seconds: int, now: float | None = None) -> dict[str, Any]:
    """A fresh signed challenge: `{challenge, bits, expires_in}`."""
    body = {"id": secrets.token_urlsafe(12), "bits": int(bits), "exp": int((now or time.time()) + ttl_seconds)}
    encoded = _b64(json.dumps(body, separators=(",", ":")).encode())
    return {"challenge": f"{encoded}.{_sign(key, encoded)}", "bits": int(bits), "expires_in": int(ttl_seconds)}


def solve(challenge: str, bits: int) -> str:
    """The nonce a client would find (tests and scripts; browsers run the same loop in JavaScript)."""
    nonce = 0
    while not meets(challenge, str(nonce), bits):
        nonce += 1
    return str(nonce)


def meets(challenge: str, nonce: str, bits: int) -> bool:
    """Whether SHA-256 of "<challenge>:<nonce>" starts with `bits` zero bits."""
    digest = int.from_bytes(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest(), "big")
    return digest >> (256 - bits) == 0 if bits > 0 else True


def verify(key: str, storage: Storage, challenge: Any, nonce: Any, bits: int, ttl_seconds: int,
           now: float | None = None) -> None:
    """Accept a solved challenge once (challenges live at most `ttl_seconds`); ProofRefused (400) otherwise."""
    if not isinstance(challenge, str) or not isinstance(nonce, str) or len(nonce) > 64 or challenge.count(".") != 1:
        raise ProofRefused("a solved challenge is required (请先完成防刷验证)", {"pow": "必填 (required)"})
    encoded, signature = challenge.split(".")
    # Ours are ASCII; compare_digest raises TypeError on other text, and signing it may not encode.
    if not challenge.isascii() or not hmac.compare_digest(signature, _sign(key, encoded)):
        raise ProofRefused("the challenge is not ours (验证无效，请刷新页面重试)", {"pow": "无效 (invalid)"})
    try:
        body = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except ValueError:
        raise ProofRefused("the challenge is not ours (验证无效，请刷新页面重试)", {"pow": "无效 (invalid)"}) from None
    if body["exp"] < (now or time.time()):
        raise ProofRefused("the challenge has expired (验证已过期，请刷新页面重试)", {"pow": "已过期 (expired)"})
    if int(body["bits"]) < min(bits, MAX_BITS):  # handed out before the portal's load asked for more work
        raise ProofRefused("the challenge is easier than now required (验证难度已提高，请重新验证)",
                           {"pow": "难度已提高 (harder now)"})
    if not nonce.isascii() or not meets(challenge, nonce, int(body["bits"])):
        raise ProofRefused("the work does not check out (验证未通过，请重试)", {"pow": "未通过 (not solved)"})
    # One fixed window for every challenge: the storage keys a limit by its size, so it must not vary.
    spent = Throttle(storage, "pow_spent", 1, ttl_seconds + 1)
    if spent.take(body["id"]):  # tested and spent in one step: a challenge replayed in parallel passes once
        raise ProofRefused("this challenge was already used (验证已使用，请刷新页面重试)", {"pow": "已使用 (used)"})


def _sign(key: str, encoded: str) -> str:
    return _b64(hmac.new(key.encode(), b"cadreflow-pow:" + encoded.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
