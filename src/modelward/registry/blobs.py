"""Content-addressed blob storage: a local folder, or an S3-compatible bucket.

A blob's key is the SHA-256 of its bytes, so identical files are stored once and a blob
can never be replaced by different content. Writes are all-or-nothing: bytes stream into
a temporary file while being hashed; only when the digest and size match what the client
declared does the blob appear under its key (``os.replace`` locally, a single PUT or a
completed multipart upload on S3, both atomic). A cut-off upload leaves only a temporary
file, which the store removes on start (and `cleanup_stale` later); on S3 an interrupted
multipart upload is invisible and `cleanup_stale` aborts it. `iter_blobs` and `delete`
exist for the garbage collector (``registry.maintenance``), which alone removes blobs.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import urlparse

from modelward.errors import BackendUnavailableError, RegistryError

__all__ = ["BlobStore", "BlobWriter", "LocalBlobStore", "S3BlobStore", "open_blob_store"]

CHUNK: Final = 1 << 20
_DIGEST_RE: Final = re.compile(r"[0-9a-f]{64}")


class DigestMismatchError(RegistryError):
    """Uploaded bytes do not have the digest or size the client declared."""


def check_digest(digest: str) -> str:
    """Return `digest` if it is 64 lower-case hex characters.

    Raises:
        RegistryError: anything else (it would become a file or object key).
    """
    if not _DIGEST_RE.fullmatch(digest):
        raise RegistryError(f"invalid sha256 digest {digest[:80]!r}")
    return digest


class BlobWriter:
    """Bytes on their way into the store; call `commit` or `abort`."""

    def __init__(self, store: BlobStore, tmp_dir: Path) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def commit(self, sha256: str | None = None, size: int | None = None) -> str:
        """Check and publish the blob; returns its digest.

        Raises:
            DigestMismatchError: the bytes differ from what was declared.
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = self._hash.hexdigest()
        try:
            if size is not None and size != self.size:
                raise DigestMismatchError(f"received {self.size} bytes, expected {size}")
            if sha256 is not None and sha256 != digest:
                raise DigestMismatchError(f"content has sha256 {digest}, expected {sha256}")
            self._store._adopt(self.path, digest)
        finally:
            self.path.unlink(missing_ok=True)
        return digest

    def abort(self) -> None:
        """Throw the bytes away."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore(abc.ABC):
    """Where file contents live, keyed by SHA-256."""

    tmp_dir: Path

    def begin(self) -> BlobWriter:
        """Start writing a blob."""
        return BlobWriter(self, self.tmp_dir)

    def put_bytes(self, data: bytes) -> str:
        """Store small content in one go; returns its digest."""
        writer = self.begin()
        writer.write(data)
        return writer.commit()

    @abc.abstractmethod
    def _adopt(self, tmp: Path, digest: str) -> None:
        """Make the verified temporary file the blob `digest` (atomically)."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def read_chunks(self, digest: str) -> Iterator[bytes]:
        """Stream a blob's bytes."""

    def read_bytes(self, digest: str) -> bytes:
        return b"".join(self.read_chunks(digest))

    @abc.abstractmethod
    def materialize(self, digest: str, dest: Path) -> None:
        """Write the blob to `dest` (a new file; hard link where possible)."""

    @abc.abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """Every stored blob as ``(digest, last modified as a POSIX timestamp)``."""

    @abc.abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob (only the garbage collector calls this)."""

    def cleanup_stale(self, older_than: float) -> int:
        """Remove temporary upload files last written before `older_than` (a timestamp).

        Returns:
            How many were removed.
        """
        removed = 0
        for stale in self.tmp_dir.glob("upload-*.part"):
            try:
                if stale.stat().st_mtime < older_than:
                    stale.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class LocalBlobStore(BlobStore):
    """Blobs as files under ``ROOT/sha256/ab/cdef...``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        (root / "sha256").mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp_dir.glob("upload-*.part"):  # left by a crash
            stale.unlink(missing_ok=True)

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest[2:]

    def _adopt(self, tmp: Path, digest: str) -> None:
        target = self._path(digest)
        if target.exists():
            return  # deduplicated: same digest, same bytes
        target.parent.mkdir(exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        with self._path(digest).open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    def materialize(self, digest: str, dest: Path) -> None:
        try:
            os.link(self._path(digest), dest)
        except OSError:
            shutil.copyfile(self._path(digest), dest)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        for shard in sorted((self.root / "sha256").iterdir()):
            if not shard.is_dir() or len(shard.name) != 2:
                continue
            for blob in shard.iterdir():
                digest = shard.name + blob.name
                if _DIGEST_RE.fullmatch(digest):
                    try:
                        yield digest, blob.stat().st_mtime
                    except FileNotFoundError:
                        continue

    def delete(self, digest: str) -> None:
        self._path(digest).unlink(missing_ok=True)


class S3BlobStore(BlobStore):
    """Blobs as objects ``PREFIX/sha256/<digest>`` in an S3-compatible bucket.

    The endpoint (for MinIO, Ceph, ...) comes from ``MODELWARD_S3_ENDPOINT`` or
    ``AWS_ENDPOINT_URL``; credentials from the usual AWS environment or files.
    """

    def __init__(self, url: str, tmp_dir: Path) -> None:
        try:
            import boto3  # type: ignore[import-untyped]
        except ImportError as err:
            raise BackendUnavailableError("S3 blob storage needs boto3",
                                          hint="pip install boto3") from err
        parsed = urlparse(url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        endpoint = os.environ.get("MODELWARD_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        self._client: Any = boto3.client("s3", endpoint_url=endpoint)
        self.tmp_dir = tmp_dir
        tmp_dir.mkdir(parents=True, exist_ok=True)
        for stale in tmp_dir.glob("upload-*.part"):  # left by a crash
            stale.unlink(missing_ok=True)

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self.prefix}/sha256/{digest}" if self.prefix else f"sha256/{digest}"

    def _adopt(self, tmp: Path, digest: str) -> None:
        if not self.exists(digest):
            # upload_file switches to multipart for large files; the object appears only
            # once the whole upload completes.
            self._client.upload_file(str(tmp), self.bucket, self._key(digest))

    def exists(self, digest: str) -> bool:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise RegistryError(f"S3 error: {err}") from err
        return True

    def read_chunks(self, digest: str) -> Iterator[bytes]:
        body: BinaryIO = self._client.get_object(Bucket=self.bucket,
                                                 Key=self._key(digest))["Body"]
        try:
            while chunk := body.read(CHUNK):
                yield chunk
        finally:
            body.close()

    def materialize(self, digest: str, dest: Path) -> None:
        self._client.download_file(self.bucket, self._key(digest), str(dest))

    def _listing_prefix(self) -> str:
        return f"{self.prefix}/sha256/" if self.prefix else "sha256/"

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        prefix = self._listing_prefix()
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                digest = str(item["Key"])[len(prefix):]
                if _DIGEST_RE.fullmatch(digest):
                    yield digest, float(item["LastModified"].timestamp())

    def delete(self, digest: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(digest))

    def cleanup_stale(self, older_than: float) -> int:
        """Also abort multipart uploads (a killed server's) started before `older_than`."""
        removed = super().cleanup_stale(older_than)
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._listing_prefix())
        for page in pages:
            for item in page.get("Uploads", []):
                if float(item["Initiated"].timestamp()) < older_than:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"])
                    removed += 1
        return removed


def open_blob_store(url: str, data_dir: Path) -> BlobStore:
    """``s3://bucket/prefix`` or a local folder path (``file://`` optional)."""
    if url.startswith("s3://"):
        return S3BlobStore(url, data_dir / "tmp")
    return LocalBlobStore(Path(url.removeprefix("file://")))
