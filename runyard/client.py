"""The one small HTTP client that the CLI, the worker and the task-script library share."""

from __future__ import annotations

import functools
import hashlib
import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from runyard.errors import RunyardError
from runyard.retries import RetryPolicy, safe_to_repeat, transient

T = TypeVar("T")

CHUNK_BYTES = 1024 * 1024


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class RemoteError(RunyardError):
    """An error the server answered with (its code, status and message)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, **details)
        self.status_code = status
        self.remote_code = code

    @property
    def is_stale_lease(self) -> bool:
        return self.status_code == 409


class Unreachable(RunyardError):
    """The server could not be reached (or, after retries, kept answering 502/503/504).
    ``sent``: whether the call may have reached the server (False: the connection was
    refused, nothing was sent)."""

    code = "unreachable"
    status = 503

    def __init__(self, message: str, *, sent: bool = True, **details: Any) -> None:
        super().__init__(message, **details)
        self.sent = sent


class ServerAway(Unreachable):
    """A call given up after trying again for the retry policy's whole time."""

    code = "server_away"


# Transport errors raised before anything of the request was sent.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi's CAs, SSL_CERT_FILE), made once per process:
    making them costs tens of milliseconds, for every client."""
    return httpx.create_ssl_context()


class Client:
    """With ``retry``, calls that fail for a while (the server restarting, its database
    away) are tried again as ``runyard.retries`` says; without, every failure raises."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.retry = retry
        self._http = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
            # A plain http:// server needs no TLS context: none is made (a task script's
            # first call to the server was ~30 ms slower for it).
            verify=_tls_context() if self.server.startswith("https:") else False,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | Iterator[bytes] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Call the API; the decoded JSON answer, or bytes for a zip; errors raise. With a
        retry policy, tried again while the server is away if the call is safe to repeat:
        ``idempotent`` (default: by its method; a streamed ``content`` is never sent twice,
        see ``send_file``)."""
        if content is not None and not isinstance(content, bytes):
            idempotent = False
        return self.retrying(
            method,
            path,
            lambda: self._once(method, path, json, content, params, timeout, headers),
            idempotent=idempotent,
        )

    def _once(
        self,
        method: str,
        path: str,
        json: Any,
        content: bytes | Iterator[bytes] | None,
        params: dict[str, Any] | None,
        timeout: float | None,
        headers: dict[str, str] | None,
    ) -> Any:
        """One try of a call."""
        extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
        try:
            response = self._http.request(
                method, path, json=json, content=content, params=params, headers=headers, **extra
            )
        except httpx.TransportError as exc:
            raise self.unreachable(exc, sent=not isinstance(exc, NOT_SENT)) from None
        return answer(
            response.status_code, response.headers.get("content-type", ""), response.content
        )

    def retrying(
        self, method: str, path: str, call: Callable[[], T], *, idempotent: bool | None = None
    ) -> T:
        """``call()``, tried again as the retry policy says (see ``runyard.retries``)."""
        policy = self.retry
        if policy is None or policy.seconds <= 0:
            return call()
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                result = call()
            except (Unreachable, RemoteError) as exc:
                if not _worth_repeating(exc, method, idempotent):
                    raise
                elapsed = time.monotonic() - started
                delay = policy.delay(attempt)
                if not policy.may_wait(elapsed, delay):
                    raise self._given_up(policy, method, path, exc, elapsed) from None
                if attempt == 0:
                    policy.notify(
                        f"{method} {path}: {_failure(exc)}; trying again for up to "
                        f"{policy.seconds:g} s"
                    )
                time.sleep(delay)
                attempt += 1
                continue
            if attempt:
                elapsed = time.monotonic() - started
                policy.notify(f"{method} {path}: the server answered again after {elapsed:.1f} s")
            return result

    def _given_up(
        self, policy: RetryPolicy, method: str, path: str, exc: RunyardError, elapsed: float
    ) -> ServerAway:
        message = (
            f"{method} {path}: gave up after trying for {elapsed:.0f} s (RUNYARD_RETRY_SECONDS="
            f"{policy.seconds:g}): {_failure(exc)}"
        )
        policy.on_give_up(message)
        return ServerAway(message)

    def unreachable(self, exc: Exception, *, sent: bool = True) -> Unreachable:
        reason = str(exc) or type(exc).__name__
        return Unreachable(f"cannot reach the Runyard server at {self.server}: {reason}", sent=sent)

    def upload(self, source: Path, filename: str | None = None) -> dict[str, Any]:
        """Stream a file to the server's file store; its reference (a ``ForeignFile`` value).
        The server checks size and SHA-256, so a broken transfer is never stored."""
        answer: dict[str, Any] = self.send_file(
            "POST", "/api/files", source, params={"filename": filename or source.name}
        )
        return answer

    def download(self, file_id: str, target: Path) -> Path:
        """Stream a file of the file store to ``target`` (checked as ``fetch`` does)."""
        return self.fetch(f"/api/files/{quote(file_id, safe='')}", target)

    def send_file(
        self, method: str, path: str, source: Path, *, params: dict[str, Any] | None = None
    ) -> Any:
        """Stream the file ``source`` as the body of a call, with its ``size`` and ``sha256``
        as parameters for the server to check; the decoded answer."""
        size, sha256 = file_digest(source)

        def chunks() -> Iterator[bytes]:
            with open(source, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield chunk

        all_params = (params or {}) | {"size": size, "sha256": sha256}
        # Each try streams the file anew; a repeated upload stores the file once more (an
        # unused copy, which purge removes): safe to repeat.
        return self.retrying(
            method,
            path,
            lambda: self._once(method, path, None, chunks(), all_params, None, None),
            idempotent=True,
        )

    def fetch(self, path: str, target: Path, *, params: dict[str, Any] | None = None) -> Path:
        """Stream what a GET call answers to ``target``, checking its size and the SHA-256
        of the ``X-Runyard-SHA256`` header; it appears under its name only once whole.
        Tried again from the start while the server is away (with a retry policy)."""
        return self.retrying("GET", path, lambda: self._fetch_once(path, target, params))

    def _fetch_once(self, path: str, target: Path, params: dict[str, Any] | None) -> Path:
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        size = 0
        try:
            with self._http.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _remote_error(response)
                expected = response.headers.get("x-runyard-sha256")
                length = response.headers.get("content-length")
                with open(partial, "wb") as f:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        f.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise Unreachable(
                f"download of {path} from {self.server} broke: {exc}",
                sent=not isinstance(exc, NOT_SENT),
            ) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if (length is not None and int(length) != size) or (
            expected and digest.hexdigest() != expected
        ):
            partial.unlink(missing_ok=True)
            raise RunyardError(
                f"download of {path} is corrupt or incomplete (size or SHA-256 mismatch); try again"
            )
        partial.replace(target)
        return target

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worth_repeating(exc: RunyardError, method: str, idempotent: bool | None) -> bool:
    """Whether a failed call is tried again: the server away (unreachable, or 502/503/504)
    and the call safe to repeat, or never sent."""
    if isinstance(exc, RemoteError):
        return transient(exc.status_code) and safe_to_repeat(method, idempotent)
    assert isinstance(exc, Unreachable)
    return not exc.sent or safe_to_repeat(method, idempotent)


def _failure(exc: RunyardError) -> str:
    if isinstance(exc, RemoteError):
        return f"the server answered {exc.status_code} ({exc.message})"
    return exc.message


def answer(status: int, content_type: str, content: bytes) -> Any:
    """A call's result from its answer: the decoded JSON, or the bytes of anything else; an
    error status raises the server's error."""
    if status >= 400:
        raise remote_error(status, content)
    if content_type.startswith("application/json"):
        return json.loads(content)
    return content


def _remote_error(response: httpx.Response) -> RemoteError:
    return remote_error(response.status_code, response.read())


def remote_error(status: int, content: bytes) -> RemoteError:
    """The server's error (its code, message and details) from an error answer's body."""
    try:
        error = json.loads(content)["error"]
        return RemoteError(status, error["code"], error["message"], error.get("details", {}))
    except (ValueError, KeyError, TypeError):
        text = content.decode("utf-8", "replace")[:500]
        return RemoteError(status, "http_error", f"HTTP {status}: {text}", {})
