"""Helpers every subcommand shares: the ``-v`` flag, colour decisions, writing results.

Results go to stdout or, with ``--output FILE``, to a file written atomically (a
temporary file in the same folder, then renamed), so a reader never sees half a report
and an earlier report is never truncated by a failed run. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from modelward.errors import InputError

__all__ = [
    "add_verbose", "key_password", "terminal_width", "wants_color", "write_output",
]


def add_verbose(parser: argparse.ArgumentParser) -> None:
    """Accept ``-v/--verbose`` after the subcommand too (``modelward scan -v x``)."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="more detail; tracebacks on errors")


def key_password(env_var: str | None) -> bytes | None:
    """The private key's password from the environment variable `env_var` (if one is named).

    Raises:
        InputError: `env_var` is named but not set.
    """
    if not env_var:
        return None
    value = os.environ.get(env_var)
    if value is None:
        raise InputError(f"environment variable {env_var} is not set")
    return value.encode()


def wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal; ``NO_COLOR`` (https://no-color.org) wins, then ``FORCE_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def terminal_width(stream: TextIO, default: int = 100) -> int:
    """The terminal's width when `stream` is one, else `default` (stable for files/pipes)."""
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return max(40, shutil.get_terminal_size((default, 24)).columns)
    return default


def write_output(text: str, output: str | None) -> None:
    """Write `text` to stdout, or atomically to the file `output`.

    Raises:
        InputError: the file cannot be written.
    """
    if output is None or output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    folder = target.parent if str(target.parent) else Path(".")
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=folder, prefix=f".{target.name}.", suffix=".tmp",
            delete=False,
        ) as tmp:
            tmp_name = tmp.name
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as err:
        raise InputError(f"cannot write {output}: {err.strerror or err}",
                         hint="check that the folder exists and is writable") from err
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
