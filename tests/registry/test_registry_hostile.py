"""Bad input gets a clear 4xx, never a 500: names, paths, bodies, sizes, tokens, races."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import threading
from pathlib import Path

import pytest
from registry_support import Live, clean_model

from modelward.errors import RegistryError
from modelward.registry.client import RegistryClient
from modelward.registry.names import (
    InvalidNameError,
    check_file_path,
    check_file_paths,
    check_model_name,
)

HOSTILE_PATHS = ["../etc/passwd", "/abs", "a/../../b", "a//b", ".hidden", "a\\b", "C:x",
                 "a/./b", "", "-rf", "é.bin", "a\x00b", "model.sig", "x/" * 40 + "y",
                 "a\nb", "a b"]
HOSTILE_NAMES = ["../x", "Team/Model", "a/b/c", "x..y", "a/versions", "", "-x", "x" * 200,
                 "<script>", "a b", "a%2f..", ".", "."]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_paths_refused(path: str) -> None:
    with pytest.raises(InvalidNameError):
        check_file_path(path)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        check_model_name(name)


def test_colliding_paths_refused() -> None:
    for paths in (["a", "A"], ["a", "a/b"], ["x", "x"]):
        with pytest.raises(InvalidNameError):
            check_file_paths(paths)
    assert check_file_paths(["a/b", "a/c", "weights.safetensors"])


def _raw(live: Live, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _upload_body(name: str = "m", version: str = "1", path: str = "w.bin",
                 data: bytes = b"hello") -> dict[str, object]:
    return {"name": name, "version": version,
            "files": [{"path": path, "sha256": hashlib.sha256(data).hexdigest(),
                       "size": len(data)}]}


def test_malformed_requests_are_4xx(live: Live, tokens: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {tokens['publisher']}"}
    cases: list[tuple[str, str, bytes | None, dict[str, str]]] = [
        ("POST", "/api/v1/uploads", b"{not json", auth),
        ("POST", "/api/v1/uploads", b"[1,2]", auth),
        ("POST", "/api/v1/uploads", b"[" * 100_000, auth),
        ("POST", "/api/v1/uploads", json.dumps({"name": "m"}).encode(), auth),
        ("POST", "/api/v1/uploads", json.dumps({**_upload_body(), "files": "x"}).encode(), auth),
        ("POST", "/api/v1/uploads", json.dumps(_upload_body(path="../../x")).encode(), auth),
        ("POST", "/api/v1/uploads", json.dumps(_upload_body(name="../x")).encode(), auth),
        ("POST", "/api/v1/uploads", json.dumps({**_upload_body(), "files": [
            {"path": "a", "sha256": "zz", "size": 1}]}).encode(), auth),
        ("POST", "/api/v1/uploads", json.dumps({**_upload_body(), "files": [
            {"path": "a", "sha256": "0" * 64, "size": -1}]}).encode(), auth),
        ("POST", "/api/v1/uploads", json.dumps({**_upload_body(), "files": [
            {"path": "a", "sha256": "0" * 64, "size": 10 << 20}]}).encode(), auth),
        ("POST", "/api/v1/uploads", b"x" * (100 << 10), auth),
        ("GET", "/api/v1/models/../../etc/passwd", None, {}),
        ("GET", "/api/v1/models/m/versions/1/files/../../x", None, {}),
        ("GET", "/api/v1/models/m/versions/1/nothing", None, {}),
        ("GET", "/api/v1/models/UPPER", None, {}),
        ("PUT", "/api/v1/uploads/nope/files/a", b"x", auth),
        ("PUT", "/api/v1/uploads/..%2f..%2fx/files/a", b"x", auth),
        ("POST", "/api/v1/uploads/nope/commit", None, auth),
        ("POST", "/api/v1/uploads", json.dumps(_upload_body()).encode(),
         {"Authorization": "Basic abc"}),
        ("GET", "/api/v1/nothing-here", None, {}),
        ("DELETE", "/api/v1/models", None, auth),
    ]
    for method, path, body, headers in cases:
        status, payload = _raw(live, method, path, body, headers)
        assert 400 <= status < 500, (method, path, status, payload[:200])
        if payload:
            assert "error" in json.loads(payload), payload[:200]


def test_tokens(live: Live, tokens: dict[str, str]) -> None:
    body = json.dumps(_upload_body()).encode()
    expired = live.registry.create_token("old", "publisher",
                                         expires_in=dt.timedelta(seconds=-1))
    for token, want in (("wrong", 401), (expired, 401), ("x" * 10_000, 401),
                        (tokens["reader"], 403), (tokens["publisher"], 201)):
        status, payload = _raw(live, "POST", "/api/v1/uploads", body,
                               {"Authorization": f"Bearer {token}"})
        assert status == want, (status, payload)
    status, payload = _raw(live, "GET", "/api/v1/models",
                           headers={"Authorization": f"Bearer {expired}"})
    assert status == 401 and b"expired" in payload


def test_upload_size_and_digest_enforced(live: Live, tokens: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {tokens['publisher']}"}
    _status, payload = _raw(live, "POST", "/api/v1/uploads",
                           json.dumps(_upload_body()).encode(), auth)
    upload = json.loads(payload)["upload"]
    url = f"/api/v1/uploads/{upload}/files/w.bin"
    assert _raw(live, "PUT", url, b"hello, more than declared", auth)[0] == 413
    assert _raw(live, "PUT", url, b"hellO", auth)[0] == 400  # other digest
    assert _raw(live, "PUT", url, b"hell", auth)[0] == 400  # cut short
    assert _raw(live, "PUT", f"/api/v1/uploads/{upload}/files/other", b"x", auth)[0] == 404
    assert _raw(live, "POST", f"/api/v1/uploads/{upload}/commit", None, auth)[0] == 400
    assert not list(live.registry.blobs.tmp_dir.iterdir())  # no leftovers
    assert _raw(live, "PUT", url, b"hello", auth)[0] == 200
    assert _raw(live, "POST", f"/api/v1/uploads/{upload}/commit", None, auth)[0] == 201


def test_cut_off_upload_leaves_no_version(live: Live, tokens: dict[str, str]) -> None:
    data = b"z" * 200_000
    auth = {"Authorization": f"Bearer {tokens['publisher']}"}
    _, payload = _raw(live, "POST", "/api/v1/uploads",
                      json.dumps(_upload_body(data=data)).encode(), auth)
    upload = json.loads(payload)["upload"]
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.putrequest("PUT", f"/api/v1/uploads/{upload}/files/w.bin")
    conn.putheader("Authorization", auth["Authorization"])
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders()
    conn.send(data[:50_000])
    conn.sock.close()  # the client dies half-way
    conn.close()
    import time
    time.sleep(0.5)
    status, _ = _raw(live, "POST", f"/api/v1/uploads/{upload}/commit", None, auth)
    assert status == 400
    assert _raw(live, "GET", "/api/v1/models/m/versions/1")[0] == 404
    assert not live.registry.blobs.exists(hashlib.sha256(data).hexdigest())


def test_concurrent_pushes_one_winner(live: Live, tokens: dict[str, str],
                                      tmp_path: Path) -> None:
    models = [clean_model(tmp_path / f"m{i}", seed=i) for i in range(6)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def push(model: Path) -> None:
        try:
            RegistryClient(live.url, tokens["publisher"]).push(model, "race", "1")
            result = "won"
        except RegistryError as err:
            result = "409" if "HTTP 409" in str(err) else f"other: {err}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=push, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["409"] * 5 + ["won"], outcomes
    info = RegistryClient(live.url, tokens["publisher"]).wait("race", "1")
    assert info["state"] == "published"
    winner = {f["path"]: f["sha256"] for f in info["files"]}
    assert any(winner == {f["path"]: f["sha256"] for f in
                          __import__("modelward.registry.client", fromlist=["x"])
                          .collect_files(m)} for m in models)


def test_html_escapes_hostile_text(live: Live, tokens: dict[str, str], tmp_path: Path) -> None:
    pub = RegistryClient(live.url, tokens["publisher"])
    pub.push(clean_model(tmp_path / "m"), "m", "1", description="<script>alert(1)</script>")
    status, page = _raw(live, "GET", "/")
    assert status == 200
    assert b"<script>alert(1)" not in page and b"&lt;script&gt;" in page
    assert _raw(live, "GET", "/models/..%2f..%2fetc")[0] in (400, 404)
    status, _ = _raw(live, "POST", "/login", b"token=" + tokens["admin"].encode(),
                     {"Content-Type": "application/x-www-form-urlencoded",
                      "Origin": "http://evil.example"})
    assert status == 403
