"""Fixtures of the need-to-know tests: the API tests' template, and the small world built on it once."""

from __future__ import annotations

import pytest

from tests.api.support import api, app, cadre, template  # noqa: F401
from tests.policy.world import World, build_world


@pytest.fixture(scope="session")
def world(template, tmp_path_factory) -> World:  # noqa: F811 - the template fixture imported above
    return build_world(template, tmp_path_factory.mktemp("world"))
