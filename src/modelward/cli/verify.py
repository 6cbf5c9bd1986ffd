"""``modelward verify``: check a model against its signature, attestation and lineage.

Exit codes: 0 verified; 1 verification failed (the signature, the files, the attestation
or a lineage link does not hold: each problem is named on stderr); 2 usage or I/O error
(including links leaving the folder, special files, files changing while hashed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelward.cli._common import add_verbose
from modelward.errors import InputError, VerificationError
from modelward.policy import load_policy
from modelward.results import ExitCode
from modelward.signing.attestation import verify_scan_attestation
from modelward.signing.keys import Verifier, load_verifier
from modelward.signing.lineage import LineageKeys, walk_lineage
from modelward.signing.manifest import MAX_FILES
from modelward.signing.verify import ManifestCache, ManifestMismatchError, verify_model

__all__ = ["add_parser", "run"]

EPILOG = """\
examples:
  modelward verify ./bert --key public.pem
  modelward verify ./bert --certificate-chain root-ca.pem
  modelward verify ./bert --key public.pem --require-clean --config modelward.toml
  modelward verify ./bert-onnx --key public.pem --lineage --search ./models
  modelward verify ./bert-onnx --key ours.pem --lineage --lineage-key bert=upstream.pem
  modelward verify ./bert-onnx --key ours.pem --lineage --lineage-keyring ./trusted-keys
  modelward verify ./bert --identity me@example.org --oidc-issuer https://accounts.example
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``verify`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verify", help="verify a model against its signature",
        description="Verify a model's signature and name every file changed, removed or added.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL_DIR_OR_FILE")
    parser.add_argument("--key", metavar="PUBLIC.pem", help="public key of the signer")
    parser.add_argument("--certificate-chain", action="append", default=[], metavar="ROOTS.pem",
                        help="trusted root certificates (repeatable)")
    parser.add_argument("--identity", help="keyless: expected signer identity (e-mail, URI)")
    parser.add_argument("--oidc-issuer", help="keyless: expected OIDC issuer URL")
    parser.add_argument("--staging", action="store_true", help="keyless: Sigstore staging")
    parser.add_argument("--signature", metavar="PATH",
                        help="signature file (default: DIR/model.sig or FILE.sig)")
    parser.add_argument("--ignore", action="append", default=[], metavar="PATH",
                        help="relative path also left out at verification (repeatable)")
    parser.add_argument("--workers", type=int, metavar="N", help="hashing threads (default: CPUs)")
    parser.add_argument("--max-files", type=int, default=MAX_FILES, metavar="N",
                        help=f"refuse folders with more files (default {MAX_FILES})")
    parser.add_argument("--require-clean", action="store_true",
                        help="also require a signed scan attestation: clean, same bytes, "
                        "accepted policy")
    parser.add_argument("--config", metavar="FILE",
                        help="policy file whose digest is accepted (default: ./modelward.toml "
                        "or pyproject.toml, else the default policy)")
    parser.add_argument("--accept-policy", action="append", default=[], metavar="DIGEST",
                        help="another accepted policy digest, sha256:... (repeatable)")
    parser.add_argument("--lineage", action="store_true",
                        help="walk and verify the chain of --derived-from records")
    parser.add_argument("--search", action="append", default=[], metavar="DIR",
                        help="folder to look for lineage sources in (repeatable)")
    parser.add_argument("--lineage-key", action="append", default=[], metavar="NAME=PUBLIC.pem",
                        help="the lineage source named NAME (recorded name or folder/file "
                        "name) must verify with this key (repeatable)")
    parser.add_argument("--lineage-keyring", metavar="DIR",
                        help="public keys (*.pem, *.pub) any of which may have signed a "
                        "lineage source not named by --lineage-key")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def _verifier(args: argparse.Namespace) -> Verifier:
    if args.identity or args.oidc_issuer:
        if not (args.identity and args.oidc_issuer) or args.key or args.certificate_chain:
            raise InputError("keyless verification needs --identity and --oidc-issuer, alone")
        from modelward.signing.keyless import KeylessVerifier

        return KeylessVerifier(args.identity, args.oidc_issuer, args.staging)
    return load_verifier(Path(args.key) if args.key else None,
                         [Path(p) for p in args.certificate_chain])


def _lineage_keys(args: argparse.Namespace) -> LineageKeys:
    pinned: dict[str, Verifier] = {}
    for pair in args.lineage_key:
        name, sep, key = pair.partition("=")
        if not sep or not name or not key:
            raise InputError(f"--lineage-key {pair!r} is not NAME=PUBLIC.pem")
        pinned[name] = load_verifier(Path(key))
    keyring: list[Verifier] = []
    if args.lineage_keyring:
        folder = Path(args.lineage_keyring)
        if not folder.is_dir():
            raise InputError(f"--lineage-keyring {folder}: not a folder")
        paths = sorted(p for p in folder.iterdir() if p.suffix in (".pem", ".pub"))
        if not paths:
            raise InputError(f"--lineage-keyring {folder}: no *.pem or *.pub key in it")
        keyring = [load_verifier(p) for p in paths]
    return LineageKeys(pinned, tuple(keyring))


def _fail(message: str, lines: Sequence[str] = ()) -> int:
    print(f"modelward: verification FAILED: {message}", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    return int(ExitCode.FINDINGS)


def run(args: argparse.Namespace) -> int:
    """Verify the signature, then the attestation and lineage when asked."""
    model = Path(args.model)
    if not model.exists():
        raise InputError(f"{model}: no such file or directory")
    verifier = _verifier(args)
    signature = Path(args.signature) if args.signature else None
    cache: ManifestCache = {}  # each model hashed once, however many checks need it
    if (args.lineage_key or args.lineage_keyring) and not args.lineage:
        raise InputError("--lineage-key and --lineage-keyring need --lineage")
    if args.lineage:
        links = walk_lineage(model, verifier, signature=signature,
                             search=[Path(p) for p in args.search],
                             keys=_lineage_keys(args), cache=cache)
        for i, link in enumerate(links):
            source = f" <- {link.source}" if link.source else ""
            conv = f" via {link.converter}" if link.converter else ""
            detail = f": {link.detail}" if link.detail else ""
            print(f"[{i}] {link.model}{source}{conv}: {link.status.value}{detail}")
        broken = [link for link in links if not link.ok]
        if broken:
            return _fail(f"{len(broken)} lineage link(s) do not hold")
    try:
        verified = verify_model(model, verifier, signature=signature, ignore_paths=args.ignore,
                                workers=args.workers, max_files=args.max_files, cache=cache)
    except ManifestMismatchError as err:
        lines = [f"{kind}: {name}" for kind, names in (("changed", err.diff.changed),
                 ("removed", err.diff.removed), ("added", err.diff.added)) for name in names]
        return _fail(f"{model} does not match its signature", lines)
    except VerificationError as err:
        return _fail(err.diagnostics())
    files = len(verified.manifest.files())
    print(f"verified {model}: {files} files, root sha256:{verified.manifest.root_digest}, "
          f"signed by {verified.signer}")
    if args.require_clean:
        accepted = {load_policy(Path(args.config) if args.config else None).digest(),
                    *args.accept_policy}
        try:
            attestation = verify_scan_attestation(
                model, verifier, signature=verified.signature, accepted_policies=accepted,
                signed_manifest=verified.manifest, workers=args.workers)
        except VerificationError as err:
            return _fail(err.diagnostics())
        print(f"scan attestation: clean under policy {attestation.policy_digest} "
              f"(modelward {attestation.version}, {attestation.scanned_at})")
    return int(ExitCode.OK)
