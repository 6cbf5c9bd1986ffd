"""Server-rendered web pages: search, model and version pages, login, quarantine review,
rescans (start one, follow its progress).

Jinja2 with autoescaping renders every client-supplied string (names, descriptions,
finding evidence) as text. Logging in stores the API token in an HttpOnly, SameSite=Strict
cookie; state-changing forms also require a same-origin ``Origin`` header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from modelward.errors import ModelwardError, RegistryError
from modelward.registry.api import COOKIE, principal_of, split_model_path
from modelward.registry.errors import AuthError, ForbiddenError, NotFoundError, http_status
from modelward.registry.service import NOBODY, Principal, Registry

__all__ = ["web_routes"]

_ENV: Final = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                          autoescape=select_autoescape(["html"]), auto_reload=False)
MAX_FORM: Final = 16 << 10


def _page(name: str, code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_ENV.get_template(name).render(**context), status_code=code)


async def _who(request: Request) -> Principal:
    try:
        return await principal_of(request)
    except AuthError:
        return NOBODY  # a stale cookie: browse as anonymous


def _error(err: Exception, who: Principal) -> HTMLResponse:
    if isinstance(err, RegistryError):
        return _page("error.html", http_status(err), who=who, status=http_status(err),
                     message=err.message)
    if isinstance(err, ModelwardError):
        return _page("error.html", 400, who=who, status=400, message=err.message)
    raise err


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is not None and origin == f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise ForbiddenError("form too large")
    from urllib.parse import parse_qs
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


async def index(request: Request) -> Response:
    who = await _who(request)
    registry: Registry = request.app.state.registry
    query = request.query_params.get("q", "")
    models = await run_in_threadpool(registry.list_models, who, query)
    return _page("index.html", who=who, models=models, query=query)


async def model_page(request: Request) -> Response:
    who = await _who(request)
    registry: Registry = request.app.state.registry
    try:
        name, version, kind, _ = split_model_path(request.path_params["tail"])
        if kind is not None:
            raise NotFoundError("no such page")
        if version is None:
            model = await run_in_threadpool(registry.model, who, name)
            return _page("model.html", who=who, model=model)
        info = await run_in_threadpool(registry.version, who, name, version)
    except Exception as err:
        return _error(err, who)
    bom = None
    if info.bom_blob is not None:
        bom = (await run_in_threadpool(registry.blobs.read_bytes, info.bom_blob)).decode()
    from modelward.registry.rescans import version_history

    history = await run_in_threadpool(version_history, registry, info.id)
    base = f"{request.url.scheme}://{request.url.netloc}"
    return _page("version.html", who=who, v=info, bom=bom, base_url=base, history=history,
                 api_url=f"/api/v1/models/{name}/versions/{version}")


async def login(request: Request) -> Response:
    who = await _who(request)
    if request.method == "GET":
        return _page("login.html", who=who)
    if not _same_origin(request):
        return _page("error.html", 403, who=who, status=403, message="cross-site form refused")
    registry: Registry = request.app.state.registry
    token = (await _form(request)).get("token", "").strip()
    try:
        principal = await run_in_threadpool(registry.authenticate, token or None)
        if principal.role is None:
            raise AuthError("no token given")
    except AuthError as err:
        return _page("login.html", 401, who=who, error=err.message)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    if _same_origin(request):
        response.delete_cookie(COOKIE, path="/")
    return response


async def quarantine(request: Request) -> Response:
    who = await _who(request)
    registry: Registry = request.app.state.registry
    try:
        items = await run_in_threadpool(registry.quarantined, who)
    except Exception as err:
        return _error(err, who)
    return _page("quarantine.html", who=who, items=items,
                 severities=("critical", "high", "medium", "low", "info"))


async def rescans_page(request: Request) -> Response:
    """Rescans: start one (POST, same origin) and follow their progress."""
    from modelward.registry.rescans import get_rescan, list_rescans

    who = await _who(request)
    registry: Registry = request.app.state.registry
    try:
        if request.method == "POST":
            if not _same_origin(request):
                raise ForbiddenError("cross-site form refused")
            await _form(request)
            record = await run_in_threadpool(registry.start_rescan, who)
            return RedirectResponse(f"/admin/rescans?id={record['id']}", status_code=303)
        items = await run_in_threadpool(list_rescans, registry, who)
        chosen = request.query_params.get("id") or (items[0]["id"] if items else None)
        detail = await run_in_threadpool(get_rescan, registry, who, chosen) if chosen else None
    except Exception as err:
        return _error(err, who)
    return _page("rescans.html", who=who, items=items, detail=detail,
                 policy=registry.policy.digest())


async def review(request: Request) -> Response:
    who = await _who(request)
    registry: Registry = request.app.state.registry
    try:
        if not _same_origin(request):
            raise ForbiddenError("cross-site form refused")
        name, version, kind, _ = split_model_path(request.path_params["tail"])
        if version is None or kind is not None:
            raise NotFoundError("no such version")
        form = await _form(request)
        await run_in_threadpool(registry.set_state, who, name, version,
                                form.get("decision", ""), form.get("reason", ""))
    except Exception as err:
        return _error(err, who)
    return RedirectResponse(f"/models/{name}/versions/{version}", status_code=303)


def web_routes() -> list[Route]:
    """The HTML pages."""
    return [
        Route("/", index),
        Route("/models/{tail:path}", model_page),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/admin/quarantine", quarantine),
        Route("/admin/rescans", rescans_page, methods=["GET", "POST"]),
        Route("/review/{tail:path}", review, methods=["POST"]),
    ]
