"""The registry client behind ``modelward push``, ``pull`` and ``registry ls/show/rescan``.

Standard library HTTP only (``urllib``), so pushing and pulling need no extra packages.
`pull` never trusts the server's word: files land in a hidden folder beside the target,
each is checked against its digest, then the registry signature and the signed scan
attestation are verified (against a key the user pins, or the registry's published key)
before the folder is renamed into place. Anything else removes the folder and raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Final

from modelward.errors import InputError, RegistryError, VerificationError
from modelward.registry.names import check_file_paths, check_model_name, check_version

__all__ = ["RegistryClient", "collect_files"]

CHUNK: Final = 1 << 20
MAX_JSON_RESPONSE: Final = 64 << 20


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def collect_files(model: Path) -> list[dict[str, Any]]:
    """The regular files under `model` as ``{path, sha256, size}`` (links refused).

    Raises:
        InputError: not a folder, a symbolic link or special file inside.
    """
    if not model.is_dir():
        raise InputError(f"{model}: not a folder")
    out = []
    for root, dirs, files in os.walk(model):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if (Path(root) / d).is_symlink()]):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                raise InputError(f"{path}: symbolic links and special files are not pushed")
            rel = path.relative_to(model).as_posix()
            out.append({"path": rel, "sha256": _sha256_file(path), "size": path.stat().st_size})
    return out


class RegistryClient:
    """Talks to one registry with one (optional) token."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 120) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(f"registry URL {url!r} must be http(s)://host[:port]")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _open(self, method: str, path: str, data: bytes | BinaryIO | None = None,
              headers: Mapping[str, str] | None = None, query: str = "") -> Any:
        # The scheme was checked to be http(s) in __init__.
        request = urllib.request.Request(  # noqa: S310
            self.url + urllib.parse.quote(path) + query, data=data, method=method,
            headers=dict(headers or {}))
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as err:
            try:
                body = json.loads(err.read(1 << 16))
                message, hint = body.get("error", ""), body.get("hint")
            except (ValueError, AttributeError):
                message, hint = err.reason, None
            raise RegistryError(f"{method} {path}: HTTP {err.code}: {message}",
                                hint=hint) from None
        except (urllib.error.URLError, OSError) as err:
            raise RegistryError(f"cannot reach registry {self.url}: {err}") from err

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._open(method, path, data, headers) as response:
            return json.loads(response.read(MAX_JSON_RESPONSE))

    def models(self, query: str = "") -> list[dict[str, Any]]:
        suffix = "?" + urllib.parse.urlencode({"q": query}) if query else ""
        with self._open("GET", "/api/v1/models", query=suffix) as response:
            return list(json.loads(response.read(MAX_JSON_RESPONSE))["models"])

    def model(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v1/models/{check_model_name(name)}"))

    def version(self, name: str, version: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v1/models/{check_model_name(name)}/versions/"
                                      f"{check_version(version)}"))

    def grant(self, name: str, principal: str) -> dict[str, Any]:
        """Give `principal` read access to the private model `name` (owner or admin)."""
        return dict(self._json("POST", "/api/v1/grants",
                               {"model": check_model_name(name), "principal": principal}))

    def revoke_grant(self, name: str, principal: str) -> dict[str, Any]:
        """Remove `principal`'s read grant on `name` (owner or admin)."""
        return dict(self._json("POST", "/api/v1/grants/revoke",
                               {"model": check_model_name(name), "principal": principal}))

    def grants(self, name: str) -> list[dict[str, Any]]:
        """The principals granted read access to `name` (owner or admin)."""
        query = "?" + urllib.parse.urlencode({"model": check_model_name(name)})
        with self._open("GET", "/api/v1/grants", query=query) as response:
            return list(json.loads(response.read(MAX_JSON_RESPONSE))["grants"])

    def start_rescan(self) -> dict[str, Any]:
        """Start a background rescan (admin); returns its record (``id``, ``total``...)."""
        return dict(self._json("POST", "/api/v1/admin/rescan", {}))

    def rescan_status(self, rescan_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/api/v1/admin/rescans/{rescan_id}"))

    def rescan(self, *, timeout: float = 3600, interval: float = 0.3,
               on_progress: Callable[[dict[str, Any]], None] | None = None
               ) -> list[dict[str, Any]]:
        """Start a rescan and follow it to the end; returns each version's before/after."""
        record = self.start_rescan()
        deadline = time.monotonic() + timeout
        while True:
            status = self.rescan_status(str(record["id"]))
            if on_progress is not None:
                on_progress(status)
            if status["state"] != "running":
                return list(status["results"])
            if time.monotonic() > deadline:
                raise RegistryError(f"rescan {record['id']} still running after {timeout}s")
            time.sleep(interval)

    def push(self, model: Path, name: str, version: str, *, visibility: str = "public",
             description: str = "", derived_from: str | None = None,
             on_file: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Upload a model folder; returns the commit answer (state ``pending``).

        Contents the registry already has are not sent again, so re-running a push that
        was cut off only sends what is missing.
        """
        files = collect_files(model)
        body: dict[str, Any] = {"name": check_model_name(name), "version": check_version(version),
                                "visibility": visibility, "description": description,
                                "files": files}
        if derived_from:
            body["derived_from"] = derived_from
        opened = self._json("POST", "/api/v1/uploads", body)
        upload = str(opened["upload"])
        for rel in opened["missing"]:
            size = next(f["size"] for f in files if f["path"] == rel)
            with (model / rel).open("rb") as handle:
                self._open("PUT", f"/api/v1/uploads/{upload}/files/{rel}", handle,
                           {"Content-Length": str(size),
                            "Content-Type": "application/octet-stream"}).close()
            if on_file is not None:
                on_file(rel)
        return dict(self._json("POST", f"/api/v1/uploads/{upload}/commit"))

    def wait(self, name: str, version: str, *, timeout: float = 600,
             interval: float = 0.2) -> dict[str, Any]:
        """Poll until the version's scan has finished; returns the version."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.version(name, version)
            if info["state"] not in ("pending", "scanning"):
                return info
            if time.monotonic() > deadline:
                raise RegistryError(f"{name}:{version} still {info['state']} after {timeout}s")
            time.sleep(interval)

    def _download(self, path: str, dest: Path, sha256: str | None = None,
                  size: int | None = None) -> None:
        digest = hashlib.sha256()
        written = 0
        with self._open("GET", path) as response, dest.open("xb") as out:
            while chunk := response.read(CHUNK):
                written += len(chunk)
                if size is not None and written > size:
                    raise VerificationError(f"{dest.name}: more bytes than announced")
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise VerificationError(f"{dest.name}: content does not match its digest")

    def pull(self, name: str, version: str, output: Path, *, key: Path | None = None,
             accepted_policies: tuple[str, ...] = ()) -> dict[str, Any]:
        """Download, verify signature and clean scan attestation, then move into place.

        Args:
            name: model name.
            version: version.
            output: folder to create (must not exist).
            key: the registry's public key to trust; default: the key it publishes.
            accepted_policies: policy digests to accept; default: the one it reports.

        Raises:
            VerificationError: a file, the signature or the attestation does not check out.
            RegistryError: the version is not published or not visible.
        """
        from modelward.signing.attestation import verify_scan_attestation
        from modelward.signing.keys import load_verifier
        from modelward.signing.verify import verify_model

        if output.exists():
            raise InputError(f"{output} exists; pull into a new folder")
        info = self.version(name, version)
        if info["state"] != "published":
            raise RegistryError(f"{name}:{version} is {info['state']}, not published")
        files = info["files"]
        paths = check_file_paths(f["path"] for f in files)
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
        try:
            base = f"/api/v1/models/{name}/versions/{version}"
            for rel, item in zip(paths, files, strict=True):
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self._download(f"{base}/files/{rel}", target, str(item["sha256"]),
                               int(item["size"]))
            self._download(f"{base}/signature", staging / "model.sig")
            self._download(f"{base}/attestation", staging / "model.scan.sig")
            if key is None:
                key = staging.parent / f".{output.name}.registry-key.pem"
                with self._open("GET", "/api/v1/key") as response:
                    key.write_bytes(response.read(1 << 16))
                try:
                    verifier = load_verifier(key)
                finally:
                    key.unlink(missing_ok=True)
            else:
                verifier = load_verifier(key)
            verified = verify_model(staging, verifier)
            policies = accepted_policies or (str(info["policy_digest"]),)
            attestation = verify_scan_attestation(staging, verifier, accepted_policies=policies,
                                                  require_clean=True,
                                                  signed_manifest=verified.manifest)
            os.rename(staging, output)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return {"name": name, "version": version, "files": len(files),
                "root_digest": verified.manifest.root_digest, "signer": verified.signer,
                "policy": attestation.policy_digest, "scanned_at": attestation.scanned_at}
