"""Shared test fixtures.

- An autouse guard proves no test path deserializes a sample: malicious fixtures' payloads
  only ever touch a marker file (see `marker_path`), and the marker must never appear.
  While a test runs, `pickle.loads`/`pickle.load`/`pickle.Unpickler` raise, unless the test
  is marked ``allow_unpickle`` (only tests that *compare* with CPython's own unpickler on
  benign data do that, and they say why).
- `marker_path` / `marker_command`: where a harmless payload would write if it ever ran.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
MARKER_ENV = "MODELWARD_TEST_MARKER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_unpickle: the test runs CPython's unpickler on benign data on purpose"
    )


@pytest.fixture(scope="session")
def marker_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file that a malicious fixture's payload would create if it were ever executed."""
    path = tmp_path_factory.mktemp("marker") / "PWNED"
    os.environ[MARKER_ENV] = str(path)
    return path


@pytest.fixture(scope="session")
def marker_command(marker_path: Path) -> str:
    """Shell command used as the payload of malicious fixtures: touch the marker."""
    return f"touch {marker_path}"


class _UnpicklingForbidden(AssertionError):
    pass


def _forbidden(*_args: object, **_kwargs: object) -> object:
    raise _UnpicklingForbidden("a test tried to deserialize a pickle")


@pytest.fixture(autouse=True)
def _no_deserialization(
    request: pytest.FixtureRequest, marker_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("allow_unpickle") is None:
        monkeypatch.setattr(pickle, "loads", _forbidden)
        monkeypatch.setattr(pickle, "load", _forbidden)
        monkeypatch.setattr(pickle, "Unpickler", _forbidden)
    yield
    assert not marker_path.exists(), "a malicious payload ran during this test"


@pytest.fixture
def asset() -> object:
    """Return a function mapping a relative name to a path under tests/assets/."""

    def get(name: str) -> Path:
        path = ASSETS / name
        if not path.exists():
            pytest.fail(f"missing test asset {name}")
        return path

    return get
