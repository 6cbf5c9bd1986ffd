"""``modelward diff``: is a converted model faithful to its source, on every backend?

``modelward diff SOURCE TARGET`` compares two models; ``modelward diff MODEL --backends
cpu,cuda`` one model across devices. Flags map onto `modelward.diff.DiffOptions`. Exit codes:
0 faithful, 1 divergent or suspicious, 2 error. Unlike ``scan``, diff executes the models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modelward.errors import BackendUnavailableError, InputError

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  modelward diff model.pt model.onnx                  # TorchScript source vs ONNX export
  modelward diff model.onnx model.int8.onnx --format html -o diff.html
  modelward diff model.onnx --backends cpu,cuda       # one model, two execution providers
  modelward diff a.onnx b.onnx --inputs samples/ --precision fp16 --rtol 0.05

Exit codes: 0 faithful, 1 divergent or suspicious, 2 error. Models are executed.
"""


def _dims(items: list[str]) -> dict[str, int]:
    dims = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise InputError(f"--dim expects NAME=SIZE, got {item!r}")
        dims[name] = int(value)
    return dims


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``diff`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diff", help="check that a converted model behaves like its source (runs both)",
        description="Structural diff, differential execution and trigger synthesis between "
        "a source model and its conversion, or one model across backends.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", metavar="SOURCE", type=Path)
    parser.add_argument("target", metavar="TARGET", type=Path, nargs="?")
    parser.add_argument("--backends", metavar="DEV,DEV",
                        help="compare MODEL across devices (cpu, cuda, cuda:1, tensorrt, ...)")
    parser.add_argument("--source-device", default="cpu", metavar="DEV")
    parser.add_argument("--target-device", default="cpu", metavar="DEV")
    parser.add_argument("--inputs", type=Path, metavar="DIR",
                        help="folder of .npy/.npz/image samples added to the random inputs")
    parser.add_argument("--samples", type=int, default=16, help="random inputs (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                        help="size of a symbolic input dimension (repeatable)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "int8"))
    parser.add_argument("--rtol", type=float, help="override the relative error bound")
    parser.add_argument("--min-top1", type=float, help="override top-1 agreement bound")
    parser.add_argument("--min-cosine", type=float, help="override the cosine bound")
    parser.add_argument("--search-budget", type=int, default=48, metavar="N",
                        help="model-pair runs for the divergence search (0: off)")
    parser.add_argument("--search", choices=("auto", "es", "gradient"), default="auto",
                        help="divergence search: gradient (torch source, float inputs), es, "
                        "or auto (default)")
    parser.add_argument("--no-triggers", action="store_true", help="skip trigger synthesis")
    parser.add_argument("--evidence-dir", type=Path, default=Path("modelward-diff-evidence"),
                        metavar="DIR", help="where triggering inputs are saved")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="write the report here (default stdout)")
    parser.add_argument("--unsafe-allow-pickle", action="store_true",
                        help="allow loading pickled torch checkpoints (runs their code)")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the diff and print or write the report; returns the exit code.

    Raises:
        BackendUnavailableError: the `diff` extra (numpy, onnxruntime) is not installed.
    """
    try:
        from modelward.diff import DiffOptions, diff_backends, diff_models, render_text, to_json
        from modelward.diff.html import render_html
    except ImportError as err:
        raise BackendUnavailableError(
            f"modelward diff needs {err.name or 'its dependencies'}",
            hint="pip install 'modelward[diff]' (and 'modelward[torch]' for PyTorch models)",
        ) from err
    opts = DiffOptions(
        samples=args.samples, seed=args.seed, inputs=args.inputs, precision=args.precision,
        rtol=args.rtol, min_top1=args.min_top1, min_cosine=args.min_cosine,
        source_device=args.source_device, target_device=args.target_device,
        dims=_dims(args.dim), evidence_dir=args.evidence_dir,
        search_budget=args.search_budget, search_method=args.search,
        synthesise=not args.no_triggers,
        allow_pickle=args.unsafe_allow_pickle)
    if args.backends:
        if args.target is not None:
            raise InputError("--backends takes one MODEL, not SOURCE and TARGET")
        report = diff_backends(args.source, [d.strip() for d in args.backends.split(",")
                                             if d.strip()], opts)
    else:
        if args.target is None:
            raise InputError("give SOURCE and TARGET, or MODEL with --backends")
        report = diff_models(args.source, args.target, opts)
    text = {"text": render_text, "json": to_json, "html": render_html}[args.format](report)
    if args.output is not None:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as err:
            raise InputError(f"cannot write {args.output}: {err.strerror}") from err
    else:
        sys.stdout.write(text)
    return int(report.exit_code)
