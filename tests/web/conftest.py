"""Fixtures of the web tests: tests/conftest.py's per-test app, and the API tests' template database for the
tests that want one app per module (see tests/api/support.py)."""

from tests.api.support import template  # noqa: F401
