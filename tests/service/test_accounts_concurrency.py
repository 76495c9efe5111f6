"""Accounts under concurrency: two admins demoting each other at once never leave the instance without one."""

from __future__ import annotations

from service.errors import Conflict, Forbidden
from service.usecases import users
from service.usecases.context import SYSTEM, Actor
from tests.conftest import actor
from tests.service.test_concurrency import race

ROUNDS = 5


def test_two_admins_demoting_each_other_at_once_leave_one_admin(services):
    """Each round, admin and admin2 take the role from each other in two racing transactions: exactly one wins;
    the other is refused, as the last active admin (409) or as no longer an admin itself (403)."""
    admin, admin2 = actor("admin"), Actor("admin2", frozenset({"admin"}))
    for round_number in range(ROUNDS):
        users.update_user(services, SYSTEM, "admin", roles=["admin"])  # the loser of the last round is admin again
        if round_number == 0:
            users.add_user(services, admin, "admin2", "second-boss-pw", ["admin"])
        else:
            users.update_user(services, SYSTEM, "admin2", roles=["admin"])
        results = race(lambda: users.update_user(services, admin2, "admin", roles=["audit"]),
                       lambda: users.update_user(services, admin, "admin2", roles=["audit"]))
        refused = [result for result in results if isinstance(result, (Conflict, Forbidden))]
        assert len(refused) == 1 and sum(isinstance(result, dict) for result in results) == 1, results
        admins = [u["username"] for u in users.list_users(services, SYSTEM) if "admin" in u["roles"] and u["active"]]
        assert len(admins) == 1
