"""Fixtures of the service tests: the same fast template copies as the API tests."""

from tests.api.support import api, app, cadre, fast_api, fast_app, fast_services, template  # noqa: F401
