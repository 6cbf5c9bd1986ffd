"""The ``modelward`` command: a thin layer of argument parsing over the library.

Each subcommand is one module of this package with ``add_parser(subparsers)`` (which
registers its flags and sets ``run`` as the parser default) and ``run(args) -> int``.
`SUBCOMMANDS` lists them explicitly; adding one is one import and one entry.

`main` owns what every subcommand shares: ``-v/--verbose`` (tracebacks on errors), turning
a `ModelwardError` into a message on stderr and exit code 2, and turning argparse's own
exits into return values so tests can call ``main([...])`` in process.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType
from typing import Final

from modelward import __version__
from modelward.errors import ModelwardError
from modelward.results import ExitCode

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

SUBCOMMANDS: Final[tuple[str, ...]] = (
    "scan", "rules", "sign", "verify", "bom", "registry", "push", "pull", "diff",
)
"""Subcommand module names (``modelward.cli.<name>``), in ``--help`` order. Add new ones
here. Only the module of the command being run is imported, so ``modelward verify`` does
not pay for the scanners, the renderers or the registry client at start-up."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every subcommand, or only the one named `only`."""
    parser = argparse.ArgumentParser(
        prog="modelward",
        description="Security toolkit for machine-learning model artifacts. 'scan' never "
        "loads or executes a model: files are parsed as bytes ('diff' runs models on purpose).",
        epilog="Run 'modelward COMMAND --help' for a command's options. "
        "Documentation: docs/cli.md, docs/rules.md.",
    )
    parser.add_argument("--version", action="version", version=f"modelward {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="more detail; tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS if only is None else (only,):
        _module(name).add_parser(subparsers)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv`, if its first positional argument is one."""
    for arg in argv:
        if arg.startswith("-"):
            continue
        return arg if arg in SUBCOMMANDS else None
    return None


def _status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return int(ExitCode.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``modelward`` command line; returns the process exit code.

    Args:
        argv: arguments without the program name; defaults to ``sys.argv[1:]``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, usage errors (exit 2)
        return _status(done.code)
    verbose = bool(getattr(args, "verbose", False))
    try:
        return int(args.run(args))
    except ModelwardError as err:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"modelward: error: {err.diagnostics()}", file=sys.stderr)
        return int(ExitCode.ERROR)
    except KeyboardInterrupt:
        print("modelward: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``| head``); silence the flush at interpreter exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.ERROR)
