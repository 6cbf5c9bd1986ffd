"""The OpenAPI document is valid and documents every API route."""

from __future__ import annotations

import re

import pytest

from modelward.registry.api import api_routes
from modelward.registry.openapi import OPENAPI


def test_openapi_valid() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(OPENAPI)


def test_every_route_documented() -> None:
    documented = {re.sub(r"\{[^}]+\}", "{}", p) for p in OPENAPI["paths"]}
    for route in api_routes():
        path = re.sub(r"\{[^}]+\}", "{}", route.path)
        if path == "/api/v1/models/{}":  # one route serves the model and version trees
            assert any(p.startswith("/api/v1/models/{}") for p in documented)
            continue
        assert path in documented, route.path
