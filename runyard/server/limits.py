"""Limits on requests, checked before a handler reads anything: a request without any
credential is refused before its body is read, so is a large JSON body (or one of unknown
length) whose bearer token is not valid, and a body larger than its route allows is refused
(413) as soon as it passes the limit, without holding more than that in memory.

The routes that stream files (uploads, User Data writes, package imports) have their own,
larger limits in their handlers; every other body is JSON and at most ``MAX_JSON_BODY``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runyard.errors import Unauthorized
from runyard.server.deps import bearer

# The largest JSON body: a spawn batch of 10,000 jobs with their outputs fits.
MAX_JSON_BODY = 32 * 1024 * 1024

# (method, path) of the routes whose bodies are streamed files.
STREAMED = {("POST", "/api/files"), ("PUT", "/api/userdata/file"), ("POST", "/api/packages")}

# Routes that take a credential in their body (log ins) rather than in a header.
OPEN = {"/ui/login", "/api/login"}

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# A JSON body larger than this (or of unknown length) is read only once the request's bearer
# token is known to be valid: a wrong token is refused without reading it.
CHECK_TOKEN_FROM = 1024 * 1024


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str], object] | None = None,
        max_json_body: int = MAX_JSON_BODY,
    ) -> None:
        self.app = app
        self.authenticate = authenticate  # raises Unauthorized for a token that is not valid
        self.max_json_body = max_json_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if path.startswith("/api/") and path not in OPEN and not _has_credential(headers):
            await _refuse(
                send,
                401,
                "unauthorized",
                "no token given: send 'Authorization: Bearer TOKEN' (runyard reads it from "
                "--token, RUNYARD_TOKEN, runyard login or the data directory's admin-token)",
            )
            return
        if (method, path) in STREAMED:
            await self.app(scope, receive, send)
            return
        limit = self.max_json_body
        declared = headers.get("content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, "too_large", _too_large(method, path, limit))
            return
        token = bearer(headers.get("authorization", b"").decode("latin-1"))
        if declared.isdigit():
            large = int(declared) > CHECK_TOKEN_FROM
        else:  # no length: a chunked body of any size, else none
            large = b"chunked" in headers.get("transfer-encoding", b"").lower()
        if large and token and self.authenticate is not None and path.startswith("/api/"):
            try:
                await run_in_threadpool(self.authenticate, token)
            except Unauthorized as exc:
                await _refuse(send, exc.status, exc.code, exc.message)
                return
        body = await _read_body(receive, limit)
        if body is None:
            await _refuse(send, 413, "too_large", _too_large(method, path, limit))
            return
        await self.app(scope, _replay(body, receive), send)


def _has_credential(headers: dict[str, bytes]) -> bool:
    return bool(headers.get("authorization", b"").strip()) or b"runyard_session=" in headers.get(
        "cookie", b""
    )


def _too_large(method: str, path: str, limit: int) -> str:
    return f"{method} {path}: the request body is larger than {limit // (1024 * 1024)} MiB"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks)
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` once, then what the client sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
