"""The web UI: static pages (plain HTML, CSS and JavaScript modules, no build step) served by
the Runyard server, and the session routes (log in, who am I, log out).

The pages call the JSON API with the session cookie; every request that may change
something carries the session's CSRF token in the ``X-Runyard-CSRF`` header
(``runyard/server/deps.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runyard.errors import Forbidden, InvalidInput, Unauthorized
from runyard.operations import Principal
from runyard.operations.sessions import LIFETIME
from runyard.server.deps import CSRF_HEADER, SESSION_COOKIE, Ry

STATIC = Path(__file__).parent / "static"

# What the pages may load and run: only their own files (no inline script, no other site).
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class Login(BaseModel):
    """A user's name and password, or a personal token (the admin token is one)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, max_length=1024)
    token: str | None = Field(default=None, max_length=200)


def index() -> FileResponse:
    """The web UI's page (every view is drawn by its scripts)."""
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


def to_ui() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


def login(body: Login, request: Request, ry: Ry) -> JSONResponse:
    """Log in with name and password (or a personal token): sets the session cookie;
    answers who is logged in and the CSRF token."""
    _same_origin(request)
    if body.token:
        token, session = ry.sessions.login(body.token)
    elif body.name and body.password:
        address = request.client.host if request.client else "unknown"
        token, session = ry.sessions.login_with_password(body.name, body.password, address)
    else:
        raise InvalidInput("log in with your user name and password, or a personal token")
    response = JSONResponse(_session_json(ry, token, session.principal))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def session(request: Request, ry: Ry) -> dict[str, Any]:
    """The session of the cookie: who is logged in, and the CSRF token to send back."""
    token = _cookie(request)
    found = ry.sessions.authenticate(token)
    return _session_json(ry, token, found.principal)


def logout(request: Request, ry: Ry) -> Response:
    """End the session of the cookie (needs the CSRF header) and clear the cookie."""
    token = _cookie(request)
    ry.sessions.authenticate(token)
    ry.sessions.check_csrf(token, request.headers.get(CSRF_HEADER, ""))
    ry.sessions.logout(token)
    response = JSONResponse({"logged_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _cookie(request: Request) -> str:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise Unauthorized("not logged in to the web UI: log in with your user name and password")
    return token


def _same_origin(request: Request) -> None:
    """Refuse a log in posted by another site's page (its browser names that origin)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(f"a log in from the page of another site ({origin}) is refused")


def _session_json(ry: Ry, token: str, principal: Principal) -> dict[str, Any]:
    return {
        "kind": principal.role,
        "name": principal.name,
        "admin": principal.is_admin,
        "groups": sorted(principal.groups),
        "csrf": ry.sessions.csrf_token(token),
    }


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every answer under ``/ui``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/ui"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "/", to_ui),
    ("GET", "/ui", to_ui),
    ("GET", "/ui/", index),
    ("POST", "/ui/login", login),
    ("GET", "/ui/session", session),
    ("POST", "/ui/logout", logout),
]


def install(app: FastAPI) -> None:
    """Serve the web UI from ``app``: its routes, its static files, its headers."""
    for method, path, handler in ROUTES:
        app.add_api_route(path, handler, methods=[method], include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(SecurityHeaders)
