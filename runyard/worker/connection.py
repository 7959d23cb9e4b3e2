"""The worker's own calls to the server: ``WorkerClient``.

A worker makes several calls per job (reports, heartbeats, claims), all of them JSON in and
JSON out. Through httpx each cost about 0.4 ms of CPU, as much as the rest of the worker's
work for a short job. ``WorkerClient`` is ``runyard.client.Client`` with the same answers and
errors (``RemoteError`` with the server's code and message, ``Unreachable`` when the server
cannot be reached), but sends these calls through the standard library's
``http.client`` on kept-alive connections (a pool: the worker's threads call at once), which
costs a fraction of that. Calls it does not cover (files, query parameters, a server behind
``https://`` or a proxy) go through ``Client`` as before.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from runyard.client import Client, answer
from runyard.retries import RetryPolicy

URL_SAFE = "/:@!$&'()*+,;=-._~%"  # kept as they are in a path (percent escapes too)


class WorkerClient(Client):
    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(server, token, timeout=timeout, retry=retry)
        url = urlsplit(self.server)
        self._direct = url.scheme == "http" and not _proxied(url.hostname or "")
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        self._prefix = url.path
        self._timeout = timeout
        self._headers = {"Accept": "*/*"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

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
        """As ``Client._once``; JSON calls to a plain ``http://`` server go straight."""
        if not self._direct or content is not None or params is not None:
            return super()._once(method, path, json, content, params, timeout, headers)
        sent_headers = self._headers | (headers or {})
        body = None
        if json is not None:
            body = _encode(json)
            sent_headers = sent_headers | {"Content-Type": "application/json"}
        connection = self._connection()
        try:
            connection.sock.settimeout(self._timeout if timeout is None else timeout)
            url = quote(self._prefix + path, safe=URL_SAFE)
            connection.request(method, url, body=body, headers=sent_headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:  # cut off, timed out, not HTTP
            connection.close()
            raise self.unreachable(exc) from None
        if response.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        return answer(response.status, response.getheader("content-type", ""), data)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        super().close()

    def _connection(self) -> Any:
        """An idle connection that the server has not closed meanwhile, or a new one (its
        socket open: a request on it is sent at once)."""
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection = self._idle.pop()
            if _open(connection.sock):
                return connection
            connection.close()
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.connect()
        except OSError as exc:
            raise self.unreachable(exc, sent=False) from None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


def _open(sock: socket.socket | None) -> bool:
    """Whether an idle connection is still open: nothing to read on it (neither its end nor
    bytes no request asked for)."""
    if sock is None:
        return False
    try:
        sock.settimeout(0)  # no wait (each request sets its own timeout)
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _encode(value: Any) -> bytes:
    """The body httpx would send for ``json=value``."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _proxied(host: str) -> bool:
    """Whether httpx would send calls to ``host`` through a proxy (``HTTP_PROXY``, ...)."""
    proxies = urllib.request.getproxies()
    if not (proxies.get("http") or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
