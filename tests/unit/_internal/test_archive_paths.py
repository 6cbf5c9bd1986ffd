"""The shared member-name escape check used by the zip, tar and 7z scanners."""

from __future__ import annotations

import pytest

from modelward._internal.archive_paths import escape_reason


@pytest.mark.parametrize(("name", "why"), [
    ("model/weights.bin", None),
    ("a/..b/c", None),
    ("/etc/passwd", "absolute"),
    ("C:/x", "drive letter"),
    ("a/../../x", "'..'"),
    ("..", "'..'"),
    ("a\\b", "backslash"),
])
def test_zip_style_names(name: str, why: str | None) -> None:
    reason = escape_reason(name)
    assert (reason is None) if why is None else (reason is not None and why in reason)


def test_tar_treats_backslash_as_separator() -> None:
    assert escape_reason("a\\b", backslash_is_separator=True) is None
    reason = escape_reason("a\\..\\..\\x", backslash_is_separator=True)
    assert reason is not None and "'..'" in reason
