"""The conformance suite's app: the template database, deadlines of one second, two cadres."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.api.support import app_from_template, make_api, template  # noqa: F401 - the session fixture
from tests.conformance.driver import Driver

DEADLINES = {"conformance": "PT1S", "slow": "P30D"}


@pytest.fixture
def conformance_app(template, tmp_path: Path) -> Iterator[Flask]:  # noqa: F811 - the template fixture
    app = app_from_template(template, tmp_path / "conformance", DEADLINES=DEADLINES)
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture
def driver(conformance_app: Flask, template) -> Driver:  # noqa: F811
    api = make_api(conformance_app, template)
    api.create_cadre("c1", post_level="leading")
    api.create_cadre("c2", post_level="middle")
    return Driver(api, conformance_app.extensions["cadreflow"])
