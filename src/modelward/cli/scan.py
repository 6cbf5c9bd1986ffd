"""``modelward scan PATH...``: scan files, folders and archives; report; exit 0/1/2.

Flags map onto `scan_path` and the `Policy`: the policy file (``--config``, else
``modelward.toml`` / ``pyproject.toml`` in the *current* directory, never in the scanned
folder) comes first, then ``--allow-global``, ``--ignore`` and ``--fail-on`` add to or
override it. The exit code is `ScanReport.exit_code` under that policy.

``--quiet``: no progress bar and no warnings; text output is the summary line alone; JSON
and SARIF documents are unchanged. With ``--output FILE`` the summary line is also printed
on stderr (quiet or not), so a redirected report still tells the terminal how it went.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from modelward.cli._common import (
    add_verbose,
    key_password,
    terminal_width,
    wants_color,
    write_output,
)
from modelward.cli._progress import ScanProgress
from modelward.errors import InputError
from modelward.findings import Severity
from modelward.policy import Policy, load_policy
from modelward.reporting import FORMATS, RenderOptions, get_renderer
from modelward.reporting.rulesdoc import RULE_ID_PATTERN, collect_rules
from modelward.reporting.text import summary_line
from modelward.scan import scan_path

if TYPE_CHECKING:
    from modelward.signing.envelope import StatementSigner

__all__ = ["add_parser", "run"]

LEVELS: Final = "|".join(s.label for s in Severity)
_DOTTED: Final = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_GLOBAL_NAME: Final = re.compile(rf"{_DOTTED}[.:]{_DOTTED}")

EPILOG: Final = f"""\
levels: {LEVELS}
exit codes: 0 nothing at or above --fail-on; 1 something is; 2 the scan could not run or
  some file could not be fully analysed.
policy: --config FILE, else modelward.toml or [tool.modelward] in pyproject.toml in the
  current directory (never read from the scanned folder).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``scan`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scan", help="scan model files, folders and archives without loading them",
        description="Scan model files, folders and archives without loading them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="file, folder or archive")
    parser.add_argument("-f", "--format", choices=FORMATS, default="text",
                        help="output format (default: text)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the report to FILE (atomically) instead of stdout")
    parser.add_argument("--fail-on", metavar="LEVEL",
                        help="lowest severity that makes the exit code 1 (default: the "
                        "policy's, else high)")
    parser.add_argument("--config", metavar="FILE", help="policy file (TOML)")
    parser.add_argument("--allow-global", action="append", default=[], metavar="NAME",
                        help="allow a pickle import module.qualname (repeatable)")
    parser.add_argument("--ignore", action="append", default=[], metavar="RULE",
                        help="drop findings of a rule id, e.g. MW-CORE-004 (repeatable)")
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="worker processes (default: CPU count)")
    parser.add_argument("--hash", action="store_true", help="record each file's SHA-256")
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument("--root", metavar="DIR",
                        help="report file paths relative to DIR (e.g. the repository root)")
    attest = parser.add_argument_group(
        "scan attestation", "sign the result as an in-toto statement over the files' digests "
        "(verified by 'modelward verify --require-clean')")
    attest.add_argument("--attest", action="store_true",
                        help="write a signed scan attestation beside the model (needs --key)")
    attest.add_argument("--key", metavar="PRIVATE.pem", help="signing key for --attest")
    attest.add_argument("--password-env", metavar="VAR",
                        help="environment variable holding the key's password")
    attest.add_argument("--signature", metavar="FILE",
                        help="the model's signature path, if not the default model.sig")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="text: only the summary line; no progress bar, no warnings")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def build_policy(args: argparse.Namespace, cwd: Path | None = None) -> Policy:
    """The policy file's policy with the command line's additions and overrides.

    Raises:
        InputError: bad level, rule id or global name; unreadable policy file.
    """
    fail_on: Severity | None = None
    if args.fail_on is not None:
        try:
            fail_on = Severity.parse(args.fail_on)
        except ValueError as err:
            raise InputError(f"--fail-on: {err}") from None
    ignored = [r.upper() for r in _split(args.ignore)]
    for rule_id in ignored:
        if not RULE_ID_PATTERN.fullmatch(rule_id):
            raise InputError(f"--ignore: {rule_id!r} is not a rule id",
                             hint="rule ids look like MW-CORE-004; 'modelward rules' lists them")
    allowed = _split(args.allow_global)
    for name in allowed:
        if not _GLOBAL_NAME.fullmatch(name):
            raise InputError(f"--allow-global: {name!r} is not a module.qualname",
                             hint="e.g. --allow-global mylib.layers.MyBlock")
    policy = load_policy(Path(args.config) if args.config else None, cwd=cwd)
    changes: dict[str, Any] = {}
    if allowed:
        changes["allowed_globals"] = policy.allowed_globals | {n.replace(":", ".") for n in allowed}
    if ignored:
        changes["ignored_rules"] = policy.ignored_rules | set(ignored)
    if fail_on is not None:
        changes["fail_on"] = fail_on
    if changes:
        changes["source"] = f"{policy.source or 'defaults'} + command line"
        policy = policy.with_overrides(**changes)
    return policy


def _warn_unknown_rules(policy: Policy) -> None:
    known = {d.rule.id for d in collect_rules()}
    for rule_id in sorted(policy.ignored_rules - known):
        print(f"modelward: warning: ignored rule {rule_id} does not exist", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Scan, render, write; return the exit code.

    Raises:
        InputError: bad options, missing paths, unreadable policy, unwritable output.
    """
    verbose = bool(getattr(args, "verbose", False))
    if args.quiet and verbose:
        raise InputError("--quiet and --verbose contradict each other")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, not {args.jobs}")
    if args.attest and args.root is not None:
        raise InputError("--root cannot be combined with --attest",
                         hint="attestations name files relative to the model itself")
    signer = _attestation_key(args) if args.attest else None
    policy = build_policy(args)
    if policy.ignored_rules and not args.quiet:
        _warn_unknown_rules(policy)
    renderer = get_renderer(args.format)
    show_bar = not (args.quiet or args.no_progress) and sys.stderr.isatty()
    with ScanProgress(sys.stderr, enabled=show_bar) as progress:
        report = scan_path(args.paths, policy=policy, jobs=args.jobs, progress=progress,
                           hash_files=args.hash or args.attest, root=args.root)
    to_terminal = args.output in (None, "-")
    options = RenderOptions(
        verbose=verbose,
        quiet=args.quiet,
        color=to_terminal and wants_color(sys.stdout),
        width=terminal_width(sys.stdout) if to_terminal else 100,
    )
    write_output(renderer.render(report, options), args.output)
    if not to_terminal:
        if not args.quiet:
            print(f"modelward: report written to {args.output}", file=sys.stderr)
        print(summary_line(report), file=sys.stderr)
    if signer is not None:
        from modelward.signing.attestation import attest_scan

        out = attest_scan(report, Path(args.paths[0]), signer,
                          signature=Path(args.signature) if args.signature else None)
        if not args.quiet:
            print(f"modelward: scan attestation written to {out}", file=sys.stderr)
    return int(report.exit_code())


def _attestation_key(args: argparse.Namespace) -> StatementSigner:
    """Load the --attest key before scanning, so a bad key fails fast.

    Raises:
        InputError: no key, several targets, or an unreadable key.
    """
    if not args.key:
        raise InputError("--attest needs --key PRIVATE.pem")
    if len(args.paths) != 1:
        raise InputError("--attest attests one model: give exactly one file or folder")
    from modelward.signing.keys import load_signing_key

    password = key_password(args.password_env)
    return load_signing_key(Path(args.key), password=password)
