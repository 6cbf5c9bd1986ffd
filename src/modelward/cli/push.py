"""``modelward push``: upload a model folder to a registry, then wait for its verdict.

The registry scans the upload under its policy; a clean model is signed and published,
anything else is quarantined. Exit code: 0 published, 1 quarantined, 2 error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from modelward.cli._common import add_verbose
from modelward.errors import InputError
from modelward.results import ExitCode

__all__ = ["add_parser", "registry_options", "run"]


def registry_options(parser: argparse.ArgumentParser) -> None:
    """``--registry`` and ``--token`` (with environment fallbacks)."""
    parser.add_argument("--registry", metavar="URL",
                        default=os.environ.get("MODELWARD_REGISTRY", "http://127.0.0.1:8750"),
                        help="registry URL (default: $MODELWARD_REGISTRY or "
                        "http://127.0.0.1:8750)")
    parser.add_argument("--token", metavar="TOKEN",
                        help="API token (default: $MODELWARD_TOKEN)")


def token_of(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get("MODELWARD_TOKEN") or None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``push`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "push", help="upload a model to a modelward registry",
        description="Upload MODEL_DIR as NAME:VERSION; the registry scans, signs and "
        "publishes it, or quarantines it.")
    parser.add_argument("model", metavar="MODEL_DIR")
    parser.add_argument("reference", metavar="NAME:VERSION")
    registry_options(parser)
    parser.add_argument("--private", action="store_true",
                        help="only you and admins can see the model")
    parser.add_argument("--description", default="", help="one-line description")
    parser.add_argument("--derived-from", metavar="NAME:VERSION",
                        help="published registry model this one was produced from")
    parser.add_argument("--no-wait", action="store_true",
                        help="return once uploaded, without waiting for the scan")
    parser.add_argument("--timeout", type=float, default=1800, metavar="SECONDS",
                        help="how long to wait for the scan (default 1800)")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Push, then report the verdict."""
    from modelward.registry.client import RegistryClient
    from modelward.registry.names import check_reference

    name, version = check_reference(args.reference)
    model = Path(args.model)
    if not model.is_dir():
        raise InputError(f"{model}: not a folder")
    client = RegistryClient(args.registry, token_of(args))
    client.push(model, name, version, visibility="private" if args.private else "public",
                description=args.description, derived_from=args.derived_from,
                on_file=lambda rel: print(f"uploaded {rel}", file=sys.stderr))
    if args.no_wait:
        print(f"{name}:{version}: uploaded; scan queued")
        return int(ExitCode.OK)
    info = client.wait(name, version, timeout=args.timeout)
    print(f"{name}:{version}: {info['state']} (verdict: {info['verdict']}, "
          f"{len(info['findings'])} findings)")
    for finding in info["findings"][:20]:
        print(f"  {finding['severity']} {finding['rule']} {finding['path']}: "
              f"{finding['message']}")
    if info["state"] == "published":
        return int(ExitCode.OK)
    return int(ExitCode.FINDINGS) if info["state"] == "quarantined" else int(ExitCode.ERROR)
