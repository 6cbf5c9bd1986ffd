"""Whether an archive member's name would land outside the extraction folder.

Zip, tar and 7z extractors all join member names onto a target folder; absolute names,
drive letters and ``..`` components escape it (path traversal, "zip slip"). One check
serves every archive scanner so they agree on what escapes.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DRIVE", "escape_reason"]

DRIVE: Final = re.compile(r"^[A-Za-z]:")
"""A Windows drive prefix (``C:``), which makes a name absolute on Windows."""


def escape_reason(name: str, *, backslash_is_separator: bool = False) -> str | None:
    """Why extracting `name` would leave the target folder, or ``None``.

    Args:
        name: the member name as stored in the archive.
        backslash_is_separator: treat ``\\`` as a path separator when looking for ``..``
            (tar); when false any backslash is itself a reason (zip and 7z names use
            ``/``, and extractors on Windows split on both).
    """
    if not backslash_is_separator and "\\" in name:
        return "contains a backslash (a path separator on Windows)"
    if name.startswith("/"):
        return "is an absolute path"
    if DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in name.replace("\\", "/").split("/"):
        return "climbs out of the folder with '..'"
    return None
