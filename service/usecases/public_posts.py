"""Who may post to the public portal without logging in: counts per address, per IPv6 /48 and for the world.

Every public POST that stores something (a report, an objection, a 述职述廉 rating) is counted for its client
address (an IPv6 one by its /64) and, for an IPv6 one, its /48 (`count_public_post`: 429 past a limit). Reports
and objections also need a solved proof-of-work challenge (`proof.py`), as hard as the world's load asks:
past PUBLIC_SURGE_POSTS within PUBLIC_SURGE_WINDOW from everyone, PUBLIC_SURGE_EXTRA_BITS more (`required_bits`).
A flood so costs its senders more and more, and shuts no genuine reporter out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.config import MAX_POW_BITS
from service.errors import TooManyAttempts, Unavailable
from service.ratelimit import Throttle, address_key, network_key

from . import proof
from .context import Services

EVERYONE = "everyone"  # the key of the world's count of reports and objections (the surge)


@dataclass(frozen=True)
class Admission:
    """Who knocks at a public POST: the client address and its solved challenge (and the key that signs them)."""

    address: str
    challenge: Any
    nonce: Any
    key: str


def challenge(services: Services, key: str) -> dict[str, Any]:
    """A proof-of-work challenge for a public form, as hard as the portal's load now asks (`required_bits`)."""
    return proof.issue(key, required_bits(services), int(services.settings["PUBLIC_POW_TTL"]))


def required_bits(services: Services) -> int:
    """The work a report or objection needs now: PUBLIC_POW_BITS, and PUBLIC_SURGE_EXTRA_BITS more while the world
    has sent PUBLIC_SURGE_POSTS within PUBLIC_SURGE_WINDOW. A flood from many addresses so costs its sender more
    and more, and never shuts the portal: a genuine reporter waits longer for the page's work, and gets through."""
    settings = services.settings
    bits = int(settings["PUBLIC_POW_BITS"])
    if bits > 0 and _surging(services):
        return min(MAX_POW_BITS, bits + int(settings["PUBLIC_SURGE_EXTRA_BITS"]))
    return bits


def _surging(services: Services) -> bool:
    """Whether the world's window is full. A counter store out of reach says no: the pages still show their forms,
    and a POST then fails closed at its address's count (503) before any work is checked."""
    try:
        return _surge(services).retry_after(EVERYONE) > 0
    except Unavailable:
        return False


def _surge(services: Services) -> Throttle:
    """The world's reports and objections within PUBLIC_SURGE_WINDOW: full means the portal is flooded."""
    settings = services.settings
    return Throttle(
        services.rate_storage, "public_surge", int(settings["PUBLIC_SURGE_POSTS"]), int(settings["PUBLIC_SURGE_WINDOW"])
    )


def count_public_post(services: Services, address: str) -> None:
    """Count a public POST (report, objection, 述职述廉 rating) for its address (an IPv6 one by its /64), and for an
    IPv6 one its /48 too: past PUBLIC_POST_LIMIT for the address, or PUBLIC_NETWORK_POST_LIMIT for the /48, within
    PUBLIC_POST_WINDOW seconds, 429 with the wait (counted in neither)."""
    taken: list[tuple[Throttle, str]] = []
    for throttle, key in _post_throttles(services, address):
        wait = throttle.take(key)  # test and count at once: a burst cannot all pass the test first
        if wait:
            for earlier, its_key in taken:
                earlier.give_back(its_key)  # a refused post uses up no allowance
            raise TooManyAttempts(
                f"too many submissions from this address; try again in {wait} s (提交过于频繁，请 {wait} 秒后再试)",
                wait,
            )
        taken.append((throttle, key))


def _post_throttles(services: Services, address: str) -> list[tuple[Throttle, str]]:
    """The public-post throttles an address is counted in, each with its key."""
    settings, window = services.settings, int(services.settings["PUBLIC_POST_WINDOW"])
    counted = [
        (
            Throttle(services.rate_storage, "public_post", int(settings["PUBLIC_POST_LIMIT"]), window),
            address_key(address),
        )
    ]
    if (network := network_key(address)) is not None:
        counted.append(
            (
                Throttle(
                    services.rate_storage, "public_post_network", int(settings["PUBLIC_NETWORK_POST_LIMIT"]), window
                ),
                network,
            )
        )
    return counted


def admit(services: Services, admission: Admission) -> None:
    """Count a public POST for its address (429 past the limit), check its proof of work as hard as now required
    (400; a challenge handed out easier before a surge too), and count it in the world's load."""
    count_public_post(services, admission.address)
    bits = required_bits(services)
    if bits > 0:
        proof.verify(
            admission.key,
            services.rate_storage,
            admission.challenge,
            admission.nonce,
            bits,
            int(services.settings["PUBLIC_POW_TTL"]),
        )
        _surge(services).take(EVERYONE)  # once full, the window holds PUBLIC_SURGE_POSTS and counts no more
