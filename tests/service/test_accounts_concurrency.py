"""Accounts under concurrency: two admins demoting each other at once never leave the instance without one."""

from __future__ import annotations

from service.errors import Conflict
from service.usecases import users
from tests.conftest import actor
from tests.service.test_concurrency import race

ROUNDS = 5


def test_two_admins_demoting_each_other_at_once_leave_one_admin(services):
    """Each round, admin and admin2 lose the role in two racing transactions: exactly one wins, one gets 409."""
    boss = actor("admin")
    for round_number in range(ROUNDS):
        users.update_user(services, boss, "admin", roles=["admin"])
        if round_number == 0:
            users.add_user(services, boss, "admin2", "second-boss-pw", ["admin"])
        else:
            users.update_user(services, boss, "admin2", roles=["admin"])
        results = race(lambda: users.update_user(services, boss, "admin", roles=["audit"]),
                       lambda: users.update_user(services, boss, "admin2", roles=["audit"]))
        assert sorted(type(result).__name__ for result in results) == ["Conflict", "dict"], results
        assert sum(isinstance(result, Conflict) for result in results) == 1
        admins = [u["username"] for u in users.list_users(services, boss) if "admin" in u["roles"] and u["active"]]
        assert len(admins) == 1
