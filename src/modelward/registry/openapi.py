"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the routes (``api.py``); a test checks it validates against the
OpenAPI schema and that every route is documented.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["OPENAPI"]


def _op(summary: str, *, auth: str | None = None, body: dict[str, Any] | None = None,
        raw_body: bool = False, ok: str = "200", content: str = "application/json",
        params: tuple[str, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary + (f" (role: {auth})" if auth else ""),
        "responses": {
            ok: {"description": "success", "content": {content: {}}},
            "4XX": {"description": "refused", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}},
        },
    }
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True,
                             "schema": {"type": "string"}} for p in params]
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    if raw_body:
        op["requestBody"] = {"required": True, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}
    if auth:
        op["security"] = [{"bearer": []}]
    return op


_FILE: Final = {"type": "object", "required": ["path", "sha256", "size"], "properties": {
    "path": {"type": "string", "description": "relative POSIX path"},
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "size": {"type": "integer", "minimum": 0}}}
_UPLOAD: Final = {"type": "object", "required": ["name", "version", "files"], "properties": {
    "name": {"type": "string", "description": "model name, 'ns/name' or 'name'"},
    "version": {"type": "string"},
    "visibility": {"enum": ["public", "private"]},
    "description": {"type": "string", "maxLength": 4000},
    "derived_from": {"type": "string", "description": "NAME:VERSION of a published source"},
    "files": {"type": "array", "items": _FILE}}}
_GRANT: Final = {"type": "object", "required": ["model", "principal"], "properties": {
    "model": {"type": "string", "description": "a private model's name"},
    "principal": {"type": "string", "description": "the principal name of a token"}}}
_NV: Final = ("name", "version")
_V: Final = "/api/v1/models/{name}/versions/{version}"

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {"title": "modelward registry", "version": "1",
             "description": "Push models; only scanned, signed models are published. "
             "Names may contain one '/', sent unescaped in paths."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": {"type": "object", "properties": {
            "error": {"type": "string"}, "hint": {"type": ["string", "null"]}}}},
    },
    "paths": {
        "/api/v1": {"get": _op("service description")},
        "/api/v1/openapi.json": {"get": _op("this document")},
        "/api/v1/key": {"get": _op("the registry's public signing key (PEM)",
                                   content="application/x-pem-file")},
        "/api/v1/models": {"get": {**_op("list and search models (?q=)"), "parameters": [
            {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}]}},
        "/api/v1/models/{name}": {"get": _op("a model and its versions", params=("name",))},
        _V: {"get": _op("a version: state, scan progress, verdict, findings, files",
                        params=_NV)},
        _V + "/files/{path}": {"get": _op(
            "download one file of a published version", content="application/octet-stream",
            params=(*_NV, "path"))},
        _V + "/signature": {"get": _op("the registry's signature (model.sig, Sigstore bundle)",
                                       params=_NV, content="application/octet-stream")},
        _V + "/attestation": {"get": _op("the signed scan attestation (model.scan.sig)",
                                         params=_NV, content="application/octet-stream")},
        _V + "/bom": {"get": _op("CycloneDX 1.6 ML-BOM", params=_NV,
                                 content="application/octet-stream")},
        _V + "/lineage": {"get": _op("signed lineage record (model.lineage.sig)",
                                     params=_NV, content="application/octet-stream")},
        _V + "/review": {"post": _op(
            "review a quarantined version", auth="admin", params=_NV,
            body={"type": "object", "required": ["decision"], "properties": {
                "decision": {"enum": ["rejected"]}, "reason": {"type": "string"}}})},
        "/api/v1/grants": {
            "get": {**_op("the principals granted read access to a private model "
                          "(?model=NAME)", auth="owner or admin"), "parameters": [
                {"name": "model", "in": "query", "required": True,
                 "schema": {"type": "string"}}]},
            "post": _op("grant a principal (every token created for that name) read access "
                        "to a private model: listing, search, pages, pulls; idempotent; "
                        "404 when the model is not visible to the caller", auth="owner or admin",
                        body=_GRANT, ok="201")},
        "/api/v1/grants/revoke": {"post": _op(
            "revoke a principal's read grant on a model (404 if there is none)",
            auth="owner or admin", body=_GRANT)},
        "/api/v1/uploads": {"post": _op(
            "open an upload; answers which files' contents are missing",
            auth="publisher", body=_UPLOAD, ok="201")},
        "/api/v1/uploads/{upload}/files/{path}": {"put": _op(
            "send one declared file (checked against its sha256 and size)",
            auth="publisher", raw_body=True, params=("upload", "path"))},
        "/api/v1/uploads/{upload}/commit": {"post": _op(
            "create the version (409 if it exists) and queue its scan", auth="publisher",
            ok="201", params=("upload",))},
        "/api/v1/admin/rescan": {"post": _op(
            "start a background rescan of every published and quarantined version "
            "(409 while one runs); follow it at Location", auth="admin", ok="202")},
        "/api/v1/admin/rescans": {"get": _op("recent rescans and their progress",
                                             auth="admin")},
        "/api/v1/admin/rescans/{rescan}": {"get": _op(
            "a rescan's progress (total, done, changed, failed) and per-version results",
            auth="admin", params=("rescan",))},
        "/api/v1/admin/gc": {"post": _op(
            "remove expired uploads and unreferenced blobs older than grace_s",
            auth="admin", body={"type": "object", "properties": {
                "grace_s": {"type": "number", "minimum": 0},
                "dry_run": {"type": "boolean"}}})},
        "/api/v1/admin/tokens/{token}/revoke": {"post": _op(
            "revoke a token by id, unique id prefix (8+ characters) or secret",
            auth="admin", params=("token",))},
        "/api/v1/admin/audit": {"get": _op("the audit log and whether its hash chain holds",
                                           auth="admin")},
        "/api/v1/admin/tokens": {"get": _op(
            "list tokens: id, principal, role, dates, status (never secrets)", auth="admin"),
                                 "post": _op(
            "create an API token", auth="admin", ok="201",
            body={"type": "object", "required": ["principal", "role"], "properties": {
                "principal": {"type": "string"},
                "role": {"enum": ["reader", "publisher", "admin"]},
                "expires_in_s": {"type": "integer", "minimum": 1}}})},
    },
}
