"""``modelward pull``: download a published model, verifying before anything is kept.

Files land in a hidden folder beside OUTPUT; the registry signature and the signed
clean scan attestation are checked (against ``--key`` when given, else the key the
registry publishes) before the folder is renamed to OUTPUT. On any mismatch nothing
is left behind and the exit code is 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelward.cli._common import add_verbose
from modelward.cli.push import registry_options, token_of
from modelward.results import ExitCode

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``pull`` and its flags."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pull", help="download and verify a published model from a registry",
        description="Download NAME:VERSION, verify its signature and scan attestation, "
        "and only then write it to OUTPUT.")
    parser.add_argument("reference", metavar="NAME:VERSION")
    parser.add_argument("--output", "-o", metavar="DIR",
                        help="folder to create (default: ./NAME-VERSION)")
    registry_options(parser)
    parser.add_argument("--key", metavar="PUBLIC.pem",
                        help="registry public key to trust (recommended; default: the key "
                        "the registry publishes, which only protects against corruption)")
    parser.add_argument("--accept-policy", action="append", default=[], metavar="DIGEST",
                        help="policy digest to accept (repeatable; default: the registry's)")
    add_verbose(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Pull and verify."""
    from modelward.registry.client import RegistryClient
    from modelward.registry.names import check_reference

    name, version = check_reference(args.reference)
    output = Path(args.output) if args.output else Path(f"{name.replace('/', '-')}-{version}")
    client = RegistryClient(args.registry, token_of(args))
    result = client.pull(name, version, output, key=Path(args.key) if args.key else None,
                         accepted_policies=tuple(args.accept_policy))
    print(f"pulled {name}:{version} into {output}: {result['files']} files, "
          f"root sha256:{result['root_digest']}, signed by {result['signer']}, "
          f"scan clean under policy {result['policy']}")
    return int(ExitCode.OK)
