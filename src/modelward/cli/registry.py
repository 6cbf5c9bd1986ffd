"""``modelward registry``: run a registry (``serve``), administer it, and browse it.

``serve`` needs no set-up: a data folder (default ``./modelward-registry``) gets an SQLite
database, a blob store and a signing key. ``--database-url postgresql://...`` and
``--blob-url s3://bucket/prefix`` switch to a team setup. On the first start with no
token, an admin token is created and printed once. ``token`` creates, lists and revokes
tokens and ``gc`` collects garbage, on the server's machine (they open its storage
directly); ``ls``, ``show``, ``rescan`` and ``grant``/``revoke-grant``/``grants`` (read
access to private models) talk to a running registry.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from modelward.cli._common import add_verbose
from modelward.cli.push import registry_options, token_of
from modelward.results import ExitCode

__all__ = ["add_parser", "run"]


def _storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR",
                        default=os.environ.get("MODELWARD_REGISTRY_DATA", "modelward-registry"),
                        help="data folder (default: $MODELWARD_REGISTRY_DATA or "
                        "./modelward-registry)")
    parser.add_argument("--database-url", metavar="URL",
                        default=os.environ.get("MODELWARD_REGISTRY_DATABASE"),
                        help="postgresql://... (default: SQLite in the data folder)")
    parser.add_argument("--blob-url", metavar="URL",
                        default=os.environ.get("MODELWARD_REGISTRY_BLOBS"),
                        help="s3://bucket/prefix (default: DATA_DIR/blobs)")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``registry`` and its subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "registry", help="run or query a model registry (only scanned, signed models)",
        description="A model registry where only models scanned clean and signed are "
        "published.")
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    serve = sub.add_parser("serve", help="run the registry server")
    _storage_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8750, help="port (default 8750)")
    serve.add_argument("--key", metavar="PRIVATE.pem", help="signing key (default: generated)")
    serve.add_argument("--config", metavar="FILE", help="scan policy (TOML)")
    serve.add_argument("--workers", type=int, default=1, help="concurrent scans (default 1)")
    serve.add_argument("--max-file-size", type=int, metavar="BYTES", help="per-file limit")
    serve.add_argument("--require-token", action="store_true",
                       help="no anonymous browsing or pulling of public models")
    token = sub.add_parser(
        "token", help="create, list or revoke API tokens (on the server machine)",
        description="'token [create] PRINCIPAL --role ROLE' prints a new token; "
        "'token ls' lists tokens (ids, never secrets); 'token revoke ID' revokes one "
        "(id, unique id prefix of 8+ characters, or the token itself).",
        usage="%(prog)s [create] PRINCIPAL [--role ROLE] | ls | revoke ID")
    _storage_options(token)
    token.add_argument("words", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    token.add_argument("--role", choices=("reader", "publisher", "admin"), default="reader")
    token.add_argument("--expires-days", type=float, metavar="DAYS",
                       help="expiry (default: none)")
    ls = sub.add_parser("ls", help="list or search models")
    ls.add_argument("query", nargs="?", default="")
    registry_options(ls)
    ls.add_argument("--json", action="store_true", help="JSON output")
    show = sub.add_parser("show", help="show a model or a version (NAME or NAME:VERSION)")
    show.add_argument("reference", metavar="NAME[:VERSION]")
    registry_options(show)
    rescan = sub.add_parser("rescan", help="re-scan every published model in the background "
                            "(admin); follows its progress")
    registry_options(rescan)
    rescan.add_argument("--no-wait", action="store_true",
                        help="start it and print its id without following it")
    grant = sub.add_parser("grant", help="give a principal read access to a private model "
                           "(owner or admin)")
    revoke_grant = sub.add_parser("revoke-grant", help="remove a principal's read grant "
                                  "(owner or admin)")
    grants = sub.add_parser("grants", help="list the read grants of a model (owner or admin)")
    grants.add_argument("name", metavar="NAME")
    for p in (grant, revoke_grant):
        p.add_argument("name", metavar="NAME")
        p.add_argument("principal", metavar="PRINCIPAL",
                       help="the principal name its tokens were created for")
    for p in (grant, revoke_grant, grants):
        registry_options(p)
    gc = sub.add_parser("gc", help="remove expired uploads and unreferenced blobs "
                        "(on the server machine)")
    _storage_options(gc)
    gc.add_argument("--grace-hours", type=float, default=1.0, metavar="H",
                    help="keep anything written less than H hours ago (default 1)")
    gc.add_argument("--dry-run", action="store_true", help="only report what would go")
    for p in (serve, token, ls, show, rescan, gc, grant, revoke_grant, grants):
        add_verbose(p)
    parser.set_defaults(run=run)
    return parser


def _config(args: argparse.Namespace) -> Any:
    from modelward.registry.config import RegistryConfig
    from modelward.registry.service import Limits

    limits = Limits()
    if getattr(args, "max_file_size", None):
        limits = Limits(max_file_size=args.max_file_size)
    return RegistryConfig(
        Path(args.data_dir), database_url=args.database_url, blob_url=args.blob_url,
        key=Path(args.key) if getattr(args, "key", None) else None,
        policy=Path(args.config) if getattr(args, "config", None) else None, limits=limits,
        workers=getattr(args, "workers", 1),
        allow_anonymous_read=not getattr(args, "require_token", False))


def _serve(args: argparse.Namespace) -> int:
    from modelward.registry.app import serve
    from modelward.registry.config import build_registry

    registry = build_registry(_config(args))
    if not registry.has_tokens():
        token = registry.create_token("admin", "admin", by="serve")
        print(f"first start: admin token (shown once): {token}", file=sys.stderr)
    serve(registry, args.host, args.port)
    return int(ExitCode.OK)


def _token(args: argparse.Namespace) -> int:
    from modelward.registry.config import build_registry
    from modelward.registry.maintenance import list_tokens, revoke_token
    from modelward.registry.service import Principal

    words = list(args.words)
    action = words.pop(0) if words[0] in ("create", "ls", "revoke") and \
        (len(words) > 1 or words[0] == "ls") else "create"
    if (action == "ls" and words) or (action != "ls" and len(words) != 1):
        print("usage: modelward registry token [create] PRINCIPAL | ls | revoke ID",
              file=sys.stderr)
        return int(ExitCode.ERROR)
    operator = Principal("cli", "admin")  # whoever can open the data folder is admin
    registry = build_registry(_config(args))
    try:
        if action == "create":
            expires = dt.timedelta(days=args.expires_days) if args.expires_days else None
            print(registry.create_token(words[0], args.role, expires_in=expires))
        elif action == "revoke":
            done = revoke_token(registry, operator, words[0])
            print(f"revoked {done['id']} ({done['principal']}, {done['role']})")
        else:
            for t in list_tokens(registry, operator):
                print(f"{t['id']}\t{t['principal']}\t{t['role']}\t{t['status']}\t"
                      f"created {t['created_at']}\texpires {t['expires_at'] or 'never'}")
    finally:
        registry.close()
    return int(ExitCode.OK)


def _gc(args: argparse.Namespace) -> int:
    from modelward.registry.config import build_registry
    from modelward.registry.maintenance import collect_garbage
    from modelward.registry.service import Principal

    registry = build_registry(_config(args))
    try:
        report = collect_garbage(registry, Principal("cli", "admin"),
                                 grace_s=args.grace_hours * 3600, dry_run=args.dry_run)
    finally:
        registry.close()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb}: {report['orphan_blobs']} orphan blobs, {report['expired_uploads']} "
          f"expired uploads, {report['stale_temporary']} stale temporary files")
    return int(ExitCode.OK)


def _rescan(client: Any, no_wait: bool) -> int:
    if no_wait:
        record = client.start_rescan()
        print(f"rescan {record['id']} started: {record['total']} versions")
        return int(ExitCode.OK)

    def progress(status: dict[str, Any]) -> None:
        if sys.stderr.isatty() or status["state"] != "running":
            end = "\n" if status["state"] != "running" else "\r"
            print(f"rescan {status['id'][:12]}: {status['done']}/{status['total']} versions, "
                  f"{status['changed']} changed, {status['failed']} failed", end=end,
                  file=sys.stderr)

    results = client.rescan(on_progress=progress)
    changed = 0
    for r in results:
        mark = "" if r["before"] == r["after"] else "  (changed)"
        changed += mark != ""
        print(f"{r['name']}:{r['version']}: {r['before']} -> {r['after']}{mark}")
    print(f"rescanned {len(results)} versions, {changed} changed")
    return int(ExitCode.OK)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the registry action."""
    from modelward.registry.client import RegistryClient

    action = args.registry_command
    if action == "serve":
        return _serve(args)
    if action == "token":
        return _token(args)
    if action == "gc":
        return _gc(args)
    client = RegistryClient(args.registry, token_of(args))
    if action == "ls":
        models = client.models(args.query)
        if args.json:
            print(json.dumps(models, indent=2))
        for m in [] if args.json else models:
            print(f"{m['name']}\t{m['latest'] or '-'}\t{m['versions']} versions\t"
                  f"{m['visibility']}\t{m['description']}")
        return int(ExitCode.OK)
    if action == "grant":
        done = client.grant(args.name, args.principal)
        print(f"{args.principal} can read {args.name}"
              + (" (already granted)" if done["already"] else ""))
        return int(ExitCode.OK)
    if action == "revoke-grant":
        client.revoke_grant(args.name, args.principal)
        print(f"{args.principal} can no longer read {args.name}")
        return int(ExitCode.OK)
    if action == "grants":
        for g in client.grants(args.name):
            print(f"{g['principal']}\tgranted by {g['granted_by']}\t{g['granted_at']}")
        return int(ExitCode.OK)
    if action == "show":
        name, sep, version = args.reference.rpartition(":")
        data = client.version(name, version) if sep else client.model(args.reference)
        print(json.dumps(data, indent=2))
        return int(ExitCode.OK)
    return _rescan(client, args.no_wait)
