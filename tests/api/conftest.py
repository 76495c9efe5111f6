"""Fixtures of the API tests: see support.py (`services` of tests/conftest.py uses the `app` here)."""

from tests.api.support import api, app, cadre, fast_api, fast_app, fast_services, template  # noqa: F401
