"""The HTTP API (``/api/v1``), a Starlette application over `Registry`.

Requests are authenticated with ``Authorization: Bearer TOKEN`` (the web pages use the
same token from an HttpOnly cookie). Every refusal is a JSON ``{"error", "hint"}`` with
a 4xx status; an unexpected exception is logged and answered with a bare 500, never a
traceback. Bodies are bounded: JSON by ``Limits.max_json``, file uploads by the size the
client declared when it opened the upload (and by ``Content-Length`` up front).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from modelward.errors import ModelwardError, RegistryError
from modelward.registry.errors import BadRequestError, NotFoundError, TooLargeError, http_status
from modelward.registry.names import check_file_path, check_model_name, check_version
from modelward.registry.openapi import OPENAPI
from modelward.registry.service import Principal, Registry

__all__ = ["api_routes", "error_response", "principal_of"]

log = logging.getLogger("modelward.registry")
COOKIE: Final = "mw_token"
_ARTIFACTS: Final = {"signature": "signature_blob", "attestation": "attestation_blob",
                     "bom": "bom_blob", "lineage": "lineage_blob"}

Handler = Callable[[Request], Awaitable[Response]]


def error_response(err: BaseException) -> JSONResponse:
    """The JSON answer for an exception (4xx for refusals, bare 500 for bugs)."""
    if isinstance(err, RegistryError):
        return JSONResponse({"error": err.message, "hint": err.hint},
                            status_code=http_status(err))
    if isinstance(err, ModelwardError):
        return JSONResponse({"error": err.message, "hint": err.hint}, status_code=400)
    if isinstance(err, HTTPException):
        return JSONResponse({"error": err.detail, "hint": None}, status_code=err.status_code)
    log.error("internal error", exc_info=err)
    return JSONResponse({"error": "internal error", "hint": None}, status_code=500)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadRequestError("Authorization must be 'Bearer TOKEN'")
        return value.strip()
    return request.cookies.get(COOKIE) or None


async def principal_of(request: Request) -> Principal:
    registry: Registry = request.app.state.registry
    return await run_in_threadpool(registry.authenticate, _token(request))


def guarded(handler: Handler) -> Handler:
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as err:
            return error_response(err)
    wrapper.__name__ = handler.__name__
    return wrapper


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, at most ``max_json`` bytes.

    Raises:
        TooLargeError, BadRequestError.
    """
    limit = request.app.state.registry.limits.max_json
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLargeError(f"request body over {limit} bytes")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise BadRequestError(f"request body is not valid JSON: {str(err)[:200]}") from err
    if not isinstance(value, dict):
        raise BadRequestError("request body must be a JSON object")
    return value


def split_model_path(tail: str) -> tuple[str, str | None, str | None, str | None]:
    """``NAME[/versions/VERSION[/KIND[/PATH]]]`` -> (name, version, kind, path).

    Raises:
        NotFoundError: a shape the API does not have.
    """
    name, sep, rest = tail.partition("/versions/")
    check_model_name(name)
    if not sep:
        return name, None, None, None
    version, _, rest = rest.partition("/")
    check_version(version)
    if not rest:
        return name, version, None, None
    kind, _, path = rest.partition("/")
    if kind == "files" and path:
        return name, version, kind, check_file_path(path)
    if kind in _ARTIFACTS or kind == "review":
        if path:
            raise NotFoundError("no such resource")
        return name, version, kind, None
    raise NotFoundError("no such resource")


@guarded
async def root(request: Request) -> Response:
    return JSONResponse({"service": "modelward registry", "api": "v1",
                         "openapi": "/api/v1/openapi.json"})


@guarded
async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


@guarded
async def public_key(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    return Response(registry.public_key_pem(), media_type="application/x-pem-file")


@guarded
async def list_models(request: Request) -> Response:
    who = await principal_of(request)
    query = request.query_params.get("q", "")
    registry: Registry = request.app.state.registry
    return JSONResponse({"models": await run_in_threadpool(registry.list_models, who, query)})


def _stream(registry: Registry, digest: str) -> StreamingResponse:
    return StreamingResponse(registry.blobs.read_chunks(digest),
                             media_type="application/octet-stream")


@guarded
async def model_resource(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    name, version, kind, path = split_model_path(request.path_params["tail"])
    if request.method == "POST":
        if kind != "review" or version is None:
            raise NotFoundError("no such resource")
        body = await read_json(request)
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise BadRequestError("reason must be a string")
        await run_in_threadpool(registry.set_state, who, name, version,
                                str(body.get("decision")), reason)
        return JSONResponse({"name": name, "version": version, "state": "rejected"})
    if version is None:
        return JSONResponse(await run_in_threadpool(registry.model, who, name))
    if kind is None:
        from modelward.registry.rescans import version_history

        info = await run_in_threadpool(registry.version, who, name, version)
        data = info.to_json()
        data["history"] = await run_in_threadpool(version_history, registry, info.id)
        return JSONResponse(data)
    if kind == "review":
        raise NotFoundError("use POST for reviews")
    info = await run_in_threadpool(registry.downloadable, who, name, version)
    if kind == "files":
        digest = next((d for p, d, _ in info.files if p == path), None)
        if digest is None:
            raise NotFoundError(f"no file {path} in {name}:{version}")
        await run_in_threadpool(registry.audit, who.name, "version.download",
                                f"{name}:{version}", {"path": path})
        return _stream(registry, digest)
    blob = getattr(info, _ARTIFACTS[kind])
    if blob is None:
        raise NotFoundError(f"{name}:{version} has no {kind}")
    return _stream(registry, blob)


@guarded
async def start_upload(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    body = await read_json(request)
    return JSONResponse(await run_in_threadpool(registry.start_upload, who, body),
                        status_code=201)


@guarded
async def put_file(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    upload_id = request.path_params["upload"]
    path = check_file_path(request.path_params["path"])
    if not upload_id.isalnum() or len(upload_id) > 64:
        raise NotFoundError("no such upload")
    entry = await run_in_threadpool(registry.declared_file, who, upload_id, path)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > entry["size"]:
        raise TooLargeError(f"{path}: {declared} bytes; declared {entry['size']}")
    writer = registry.blobs.begin()
    try:
        async for chunk in request.stream():
            if writer.size + len(chunk) > entry["size"]:
                raise TooLargeError(f"{path}: more than the declared {entry['size']} bytes")
            writer.write(chunk)
        await run_in_threadpool(registry.finish_file, writer, entry)
    except ClientDisconnect:
        writer.abort()
        log.info("client went away during upload of %s", path)
        return Response(status_code=400)
    except BaseException:
        writer.abort()
        raise
    return JSONResponse({"path": path, "stored": True})


@guarded
async def commit(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    upload_id = request.path_params["upload"]
    if not upload_id.isalnum() or len(upload_id) > 64:
        raise NotFoundError("no such upload")
    return JSONResponse(await run_in_threadpool(registry.commit, who, upload_id),
                        status_code=201)


@guarded
async def rescan(request: Request) -> Response:
    """Start a background rescan; answers 202 at once with where to follow it."""
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    record = await run_in_threadpool(registry.start_rescan, who)
    return JSONResponse(record, status_code=202,
                        headers={"Location": f"/api/v1/admin/rescans/{record['id']}"})


@guarded
async def rescans(request: Request) -> Response:
    from modelward.registry.rescans import list_rescans

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    return JSONResponse({"rescans": await run_in_threadpool(list_rescans, registry, who)})


@guarded
async def rescan_status(request: Request) -> Response:
    from modelward.registry.rescans import get_rescan

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    return JSONResponse(await run_in_threadpool(get_rescan, registry, who,
                                                request.path_params["rescan"]))


@guarded
async def gc(request: Request) -> Response:
    from modelward.registry.maintenance import DEFAULT_GRACE_S, collect_garbage

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    body = await read_json(request)
    grace = body.get("grace_s", DEFAULT_GRACE_S)
    dry_run = body.get("dry_run", False)
    if not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace < 0 \
            or not isinstance(dry_run, bool):
        raise BadRequestError("grace_s must be a number >= 0 and dry_run a boolean")
    return JSONResponse(await run_in_threadpool(
        lambda: collect_garbage(registry, who, grace_s=float(grace), dry_run=dry_run)))


@guarded
async def tokens(request: Request) -> Response:
    from modelward.registry.maintenance import list_tokens

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    if request.method == "POST":
        return await create_token(request)
    return JSONResponse({"tokens": await run_in_threadpool(list_tokens, registry, who)})


@guarded
async def revoke_token(request: Request) -> Response:
    from modelward.registry.maintenance import revoke_token as revoke

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    return JSONResponse(await run_in_threadpool(revoke, registry, who,
                                                request.path_params["token"]))


@guarded
async def audit(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    if not who.has("admin"):
        from modelward.registry.errors import ForbiddenError
        raise ForbiddenError("the audit log needs an admin token")
    entries = await run_in_threadpool(registry.audit_log)
    intact = await run_in_threadpool(registry.verify_audit_chain)
    return JSONResponse({"entries": entries, "chain_intact": intact})


@guarded
async def create_token(request: Request) -> Response:
    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    if not who.has("admin"):
        from modelward.registry.errors import ForbiddenError
        raise ForbiddenError("creating tokens needs an admin token")
    body = await read_json(request)
    import datetime as dt
    seconds = body.get("expires_in_s")
    if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool)
                                or not 0 < seconds <= 10 * 365 * 86400):
        raise BadRequestError("expires_in_s must be a positive integer (seconds)")
    principal, role = body.get("principal"), body.get("role")
    if not isinstance(principal, str) or not isinstance(role, str):
        raise BadRequestError("principal and role are required strings")
    token = await run_in_threadpool(
        lambda: registry.create_token(
            principal, role, by=who.name,
            expires_in=dt.timedelta(seconds=seconds) if seconds else None))
    return JSONResponse({"token": token, "principal": principal, "role": role},
                        status_code=201)


@guarded
async def grants(request: Request) -> Response:
    """``GET ?model=NAME`` lists a model's read grants; ``POST {model, principal}`` adds one."""
    from modelward.registry.grants import grant, list_grants

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    if request.method == "GET":
        name = request.query_params.get("model", "")
        return JSONResponse({"model": name, "grants": await run_in_threadpool(
            list_grants, registry, who, name)})
    body = await read_json(request)
    return JSONResponse(await run_in_threadpool(grant, registry, who, body.get("model"),
                                                body.get("principal")), status_code=201)


@guarded
async def revoke_grant(request: Request) -> Response:
    """``POST {model, principal}``: remove a read grant."""
    from modelward.registry.grants import revoke_grant as revoke

    registry: Registry = request.app.state.registry
    who = await principal_of(request)
    body = await read_json(request)
    return JSONResponse(await run_in_threadpool(revoke, registry, who, body.get("model"),
                                                body.get("principal")))


def api_routes() -> list[Route]:
    """The ``/api/v1`` routes."""
    return [
        Route("/api/v1", root),
        Route("/api/v1/openapi.json", openapi),
        Route("/api/v1/key", public_key),
        Route("/api/v1/models", list_models),
        Route("/api/v1/models/{tail:path}", model_resource, methods=["GET", "POST"]),
        Route("/api/v1/grants", grants, methods=["GET", "POST"]),
        Route("/api/v1/grants/revoke", revoke_grant, methods=["POST"]),
        Route("/api/v1/uploads", start_upload, methods=["POST"]),
        Route("/api/v1/uploads/{upload}/files/{path:path}", put_file, methods=["PUT"]),
        Route("/api/v1/uploads/{upload}/commit", commit, methods=["POST"]),
        Route("/api/v1/admin/rescan", rescan, methods=["POST"]),
        Route("/api/v1/admin/rescans", rescans),
        Route("/api/v1/admin/rescans/{rescan}", rescan_status),
        Route("/api/v1/admin/gc", gc, methods=["POST"]),
        Route("/api/v1/admin/audit", audit),
        Route("/api/v1/admin/tokens", tokens, methods=["GET", "POST"]),
        Route("/api/v1/admin/tokens/{token}/revoke", revoke_token, methods=["POST"]),
    ]
