"""Building a `Registry` from configuration: zero set-up by default, a team setup by URL.

With only a data folder, everything lives in it: ``registry.db`` (SQLite), ``blobs/``
(content-addressed files), ``registry-key.pem`` (the signing key, created on first start,
mode 0600) and ``work/`` (scratch space for scan jobs). ``database_url`` switches to
PostgreSQL (``postgresql://user@host/db``) and ``blob_url`` to S3 (``s3://bucket/prefix``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelward.policy import Policy, load_policy
from modelward.registry.blobs import open_blob_store
from modelward.registry.database import open_database
from modelward.registry.service import Limits, Registry
from modelward.signing.keys import load_signing_key

__all__ = ["RegistryConfig", "build_registry", "ensure_key"]


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Where the registry keeps things and how it judges models.

    Attributes:
        data_dir: the data folder (created if missing).
        database_url: ``sqlite:///...`` or ``postgresql://...``; default: SQLite in data_dir.
        blob_url: a folder or ``s3://bucket/prefix``; default: ``data_dir/blobs``.
        key: signing key (PEM); default: ``data_dir/registry-key.pem``, made on first use.
        policy: policy file (TOML); default: the built-in policy.
        limits: upload limits.
        workers: concurrent scan jobs.
        allow_anonymous_read: whether public models can be browsed and pulled without token.
    """

    data_dir: Path
    database_url: str | None = None
    blob_url: str | None = None
    key: Path | None = None
    policy: Path | None = None
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    allow_anonymous_read: bool = True


def ensure_key(path: Path) -> Path:
    """Create an EC P-256 signing key at `path` unless one exists."""
    if not path.exists():
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path


def build_registry(config: RegistryConfig) -> Registry:
    """Open storage, load key and policy; the registry is ready to serve."""
    data = config.data_dir
    data.mkdir(parents=True, exist_ok=True)
    db = open_database(config.database_url or f"sqlite:///{data / 'registry.db'}")
    blobs = open_blob_store(config.blob_url or str(data / "blobs"), data)
    key = load_signing_key(config.key or ensure_key(data / "registry-key.pem"))
    policy: Policy = load_policy(config.policy) if config.policy else Policy()
    return Registry(db, blobs, key, policy, data / "work", limits=config.limits,
                    workers=config.workers, allow_anonymous_read=config.allow_anonymous_read)
