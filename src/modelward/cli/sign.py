"""``modelward sign``: write a model-signing compatible signature next to a model.

Options map one to one onto `modelward.signing.sign_model`; ``--scan`` adds a signed scan
attestation (`attest_scan`) and ``--derived-from`` a lineage record (`record_lineage`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelward.cli._common import add_verbose, key_password
from modelward.errors import InputError
from modelward.policy import load_policy
from modelward.results import ExitCode
from modelward.scan import scan_path
from modelward.signing.attestation import attest_scan
from modelward.signing.envelope import StatementSigner
from modelward.signing.keys import load_signing_key
from modelward.signing.lineage import record_lineage
from modelward.signing.manifest import DEFAULT_SHARD_SIZE, MAX_FILES
from modelward.signing.sign import sign_model

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  modelward sign ./bert --key private.pem                 # writes ./bert/model.sig
  modelward sign ./bert --key leaf.key --certificate leaf.pem --certificate-chain ca.pem
  modelward sign ./bert --key private.pem --scan          # + signed scan attestation
  modelward sign ./bert-onnx --key private.pem --derived-from ./bert \\
      --converter "optimum 1.23" --converter-setting opset=17
  modelward sign ./bert --sigstore                        # keyless (needs network)

Signatures verify with `model_signing verify key` and vice versa (EC keys, --method files).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``sign`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sign", help="sign a model folder or file (OpenSSF model-signing format)",
        description="Hash a model and write a signature (Sigstore bundle) next to it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL_DIR_OR_FILE")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", metavar="PRIVATE.pem", help="EC (P-256/384/521) or Ed25519 key")
    who.add_argument("--sigstore", action="store_true",
                     help="keyless signing with Sigstore (needs network and an identity)")
    parser.add_argument("--password-env", metavar="VAR",
                        help="environment variable holding the private key's password")
    parser.add_argument("--certificate", metavar="CERT.pem",
                        help="signing certificate for --key (certificate signing)")
    parser.add_argument("--certificate-chain", action="append", default=[], metavar="PEM",
                        help="intermediate certificates, leaf to root (repeatable)")
    parser.add_argument("--identity-token", metavar="TOKEN",
                        help="--sigstore: OIDC identity token (else ambient or browser)")
    parser.add_argument("--staging", action="store_true", help="--sigstore: staging instance")
    parser.add_argument("--signature", metavar="PATH",
                        help="where to write (default: DIR/model.sig or FILE.sig)")
    parser.add_argument("--method", choices=("files", "shards"), default="files",
                        help="files: one digest per file, verifiable by model-signing's CLI "
                        "(default); shards: parallel inside large files")
    parser.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, metavar="BYTES",
                        help=f"shard size for --method shards (default {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--ignore", action="append", default=[], metavar="PATH",
                        help="relative path (file or folder) left out (repeatable)")
    parser.add_argument("--no-ignore-git-paths", action="store_true",
                        help="also sign .git, .gitattributes, .github, .gitignore")
    parser.add_argument("--allow-symlinks", action="store_true",
                        help="follow symbolic links that stay inside the model")
    parser.add_argument("--workers", type=int, metavar="N", help="hashing threads (default: CPUs)")
    parser.add_argument("--max-files", type=int, default=MAX_FILES, metavar="N",
                        help=f"refuse folders with more files (default {MAX_FILES})")
    scan = parser.add_argument_group("scan attestation")
    scan.add_argument("--scan", action="store_true",
                      help="scan the model and sign the result as an attestation")
    scan.add_argument("--config", metavar="FILE", help="policy file for --scan (TOML)")
    lineage = parser.add_argument_group("lineage")
    lineage.add_argument("--derived-from", metavar="SOURCE",
                         help="record that MODEL was produced from SOURCE")
    lineage.add_argument("--converter", metavar="NAME", help="converter used, e.g. 'optimum 1.23'")
    lineage.add_argument("--converter-setting", action="append", default=[], metavar="KEY=VALUE",
                         help="converter setting as given to it (repeatable)")
    lineage.add_argument("--diff-report", metavar="FILE",
                         help="modelward diff report comparing SOURCE and MODEL")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def _signer(args: argparse.Namespace) -> StatementSigner:
    if args.sigstore:
        from modelward.signing.keyless import KeylessSigner

        return KeylessSigner(args.identity_token, args.staging)
    password = key_password(args.password_env)
    return load_signing_key(
        Path(args.key), password=password,
        certificate=Path(args.certificate) if args.certificate else None,
        chain=[Path(p) for p in args.certificate_chain],
    )


def _settings(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--converter-setting {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Sign, then optionally attest a scan and record lineage."""
    model = Path(args.model)
    if not model.exists():
        raise InputError(f"{model}: no such file or directory")
    if args.derived_from and not Path(args.derived_from).exists():
        raise InputError(f"--derived-from {args.derived_from}: no such file or directory")
    signer = _signer(args)
    settings = _settings(args.converter_setting)
    result = sign_model(
        model, signer, signature=Path(args.signature) if args.signature else None,
        method=args.method, shard_size=args.shard_size, ignore_paths=args.ignore,
        ignore_git_paths=not args.no_ignore_git_paths, allow_symlinks=args.allow_symlinks,
        workers=args.workers, max_files=args.max_files,
    )
    files = len(result.manifest.files())
    print(f"signed {model}: {files} files, root sha256:{result.manifest.root_digest}")
    print(f"signature: {result.signature}")
    code = ExitCode.OK
    if args.derived_from:
        record = record_lineage(
            model, Path(args.derived_from), signer, result.manifest,
            signature=result.signature, converter=args.converter, settings=settings,
            diff_report=Path(args.diff_report) if args.diff_report else None,
            workers=args.workers,
        )
        print(f"lineage: derived from {args.derived_from}: {record}")
    if args.scan:
        policy = load_policy(Path(args.config) if args.config else None)
        report = scan_path(model, policy=policy, hash_files=True)
        attestation = attest_scan(report, model, signer, signature=result.signature,
                                  manifest=result.manifest, workers=args.workers)
        code = report.exit_code()
        verdict = "clean" if code is ExitCode.OK else (
            f"NOT clean (worst: {report.verdict.label})" if report.verdict is not None
            else "incomplete")
        print(f"scan: {verdict} under policy {policy.digest()}; attestation: {attestation}")
    return int(code)
