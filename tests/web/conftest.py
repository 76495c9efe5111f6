"""Fixtures of the web tests: tests/conftest.py's per-test app, the API tests' template database, and the
hostile world the never-a-500 tests share (tests/api/hostile.py)."""

from tests.api.hostile import hostile_world  # noqa: F401
from tests.api.support import template  # noqa: F401
