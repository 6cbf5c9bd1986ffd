"""Validation of everything a client names: models, versions, file paths, tokens.

Names end up in SQL rows, URLs, blob-store keys and, on pull, in file system paths on
someone else's machine, so they are checked against allowlists at the API boundary and
again by the pull client before anything is written. A name that fails raises
`InvalidNameError` (HTTP 400); nothing is ever "cleaned up" into a different name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from modelward.errors import RegistryError

__all__ = [
    "MAX_FILES",
    "MAX_PATH_LENGTH",
    "RESERVED_FILES",
    "InvalidNameError",
    "check_file_path",
    "check_file_paths",
    "check_model_name",
    "check_reference",
    "check_version",
]

_PART: Final = r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?"
_MODEL_RE: Final = re.compile(rf"{_PART}(?:/{_PART})?")
_VERSION_RE: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,62}[A-Za-z0-9])?")
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@=-]{0,254}")
MAX_PATH_LENGTH: Final = 1024
MAX_DEPTH: Final = 32
MAX_FILES: Final = 10_000
RESERVED_FILES: Final = frozenset({"model.sig", "model.scan.sig", "model.lineage.sig"})
"""Top-level names the registry writes itself when it signs a version."""


class InvalidNameError(RegistryError):
    """A model name, version or file path that the registry refuses."""


def check_model_name(name: object) -> str:
    """Return `name` if it is a valid model name (``team/model`` or ``model``).

    Lower-case letters, digits, ``.``, ``_`` and ``-``, at most one ``/``; each part
    starts and ends with a letter or digit (so no ``..``, no hidden names). ``versions``
    is reserved as a part: API paths are ``/models/NAME/versions/VERSION``.

    Raises:
        InvalidNameError: anything else.
    """
    if (not isinstance(name, str) or not _MODEL_RE.fullmatch(name) or ".." in name
            or "versions" in name.split("/")):
        raise InvalidNameError(f"invalid model name {str(name)[:80]!r}",
                               hint="use lower-case letters, digits, '.', '_', '-', "
                               "optionally 'namespace/name'")
    return name


def check_version(version: object) -> str:
    """Return `version` if it is a valid version label (``1.0``, ``2024-01-rc1``).

    Raises:
        InvalidNameError: anything else.
    """
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version) or ".." in version:
        raise InvalidNameError(f"invalid version {str(version)[:80]!r}",
                               hint="letters, digits, '.', '_', '+', '-'; at most 64")
    return version


def check_reference(ref: str) -> tuple[str, str]:
    """Split and check ``NAME:VERSION``.

    Raises:
        InvalidNameError: no ``:`` or an invalid part.
    """
    name, sep, version = ref.rpartition(":")
    if not sep:
        raise InvalidNameError(f"{ref[:80]!r} is not NAME:VERSION")
    return check_model_name(name), check_version(version)


def check_file_path(path: object) -> str:
    """Return `path` if it is a safe relative POSIX path inside a model.

    Refused: absolute paths, ``.``/``..``/empty segments, backslashes, control or
    non-ASCII characters (no look-alikes, no normalisation surprises), names starting
    with ``.`` or ``-``, and the signature files the registry writes itself.

    Raises:
        InvalidNameError: any of those.
    """
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
        raise InvalidNameError(f"invalid file path {str(path)[:80]!r}")
    if unicodedata.normalize("NFC", path) != path or not path.isascii():
        raise InvalidNameError(f"file path {path[:80]!r} is not plain ASCII")
    parts = path.split("/")
    if len(parts) > MAX_DEPTH:
        raise InvalidNameError(f"file path {path[:80]!r} is nested too deeply")
    for part in parts:
        if not _SEGMENT_RE.fullmatch(part) or part in (".", ".."):
            raise InvalidNameError(
                f"invalid file path {path[:80]!r}",
                hint="relative '/'-separated path; segments of letters, digits, '._+@=-', "
                "not starting with '.' or '-'",
            )
    if path in RESERVED_FILES:
        raise InvalidNameError(f"{path!r} is reserved for the registry's own signature")
    return path


def check_file_paths(paths: Iterable[object]) -> list[str]:
    """Check each path, and that no two collide (also on case-insensitive file systems).

    A path may not also be the parent folder of another (``a`` and ``a/b``).

    Raises:
        InvalidNameError: an invalid path, a collision, or too many files.
    """
    checked = [check_file_path(p) for p in paths]
    if not checked:
        raise InvalidNameError("a model needs at least one file")
    if len(checked) > MAX_FILES:
        raise InvalidNameError(f"{len(checked)} files: more than {MAX_FILES}")
    folded = {p.casefold() for p in checked}
    if len(folded) != len(checked):
        raise InvalidNameError("file paths collide (duplicates, or differ only in case)")
    for path in checked:
        parts = path.casefold().split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in folded:
                raise InvalidNameError(f"{path!r} is inside a path that is also a file")
    return checked
