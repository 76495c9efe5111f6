"""Fixtures of the API tests: see support.py (`services` of tests/conftest.py uses the `app` here)."""

from tests.api.hostile import hostile_world  # noqa: F401
from tests.api.support import (  # noqa: F401
    api,
    app,
    cadre,
    fast_api,
    fast_app,
    fast_services,
    patient_api,
    template,
)
