"""``modelward bom``: write a CycloneDX 1.6 ML-BOM for a model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelward.cli._common import add_verbose, write_output
from modelward.errors import InputError
from modelward.results import ExitCode

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bom`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bom", help="write a CycloneDX 1.6 ML-BOM for a model",
        description="Hash a model's files, read model-card facts from config files and tensor "
        "headers, scan it, and write a CycloneDX 1.6 JSON bill of materials.",
    )
    parser.add_argument("model", metavar="MODEL_DIR_OR_FILE")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.add_argument("--no-scan", action="store_true", help="leave the scan verdict out")
    parser.add_argument("--config", metavar="FILE", help="policy file for the scan (TOML)")
    parser.add_argument("--workers", type=int, metavar="N", help="hashing threads")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build the BOM (scanning first unless --no-scan) and write it."""
    from modelward.bom import build_bom
    from modelward.policy import load_policy
    from modelward.scan import scan_path

    model = Path(args.model)
    if not model.exists():
        raise InputError(f"{model}: no such file or directory")
    report = None
    if not args.no_scan:
        report = scan_path(model, policy=load_policy(Path(args.config) if args.config else None))
    write_output(build_bom(model, report, workers=args.workers), args.output)
    return int(ExitCode.OK)
