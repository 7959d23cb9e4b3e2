"""The worker's own HTTP client (runyard.worker.connection.WorkerClient) answers as the shared
Client does: decoded JSON, the server's errors as RemoteError, Unreachable when the server
cannot be reached; on kept-alive connections, and a new one when the server closed one."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runyard.client import RemoteError, Unreachable
from runyard.worker.connection import WorkerClient


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]  # per request: path, headers, body, connection

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(
            {
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "connection": self.client_address,  # (host, port): one per connection
            }
        )
        if self.path == "/api/refused":
            error = {"code": "stale_lease", "message": "the lease is gone", "details": {}}
            self._answer(409, {"error": error})
        elif self.path == "/api/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"claimed": ', b"[1, 2]}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/api/close":
            self.close_connection = True
            self._answer(200, {"closed": True}, close=True)
        else:
            self._answer(200, {"echo": json.loads(body) if body else None})

    do_GET = do_POST

    def _answer(self, status: int, data: Any, close: bool = False) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Recording", (Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_json_calls_are_sent_and_answered_as_httpx_does_on_one_kept_alive_connection(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    with WorkerClient(url, "ry_worker_x") as client:
        body = {"worker": "w", "results": [{"log": "é\n"}], "claim": 2}
        assert client.post("/api/workers/report", body) == {"echo": body}
        assert client.get("/api/workers") == {"echo": None}
    first, second = seen
    assert first["body"] == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert first["headers"]["Authorization"] == "Bearer ry_worker_x"
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["Host"] == url.removeprefix("http://")
    assert first["connection"] == second["connection"], "kept alive"


def test_an_error_answer_is_the_servers_remote_error(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = server
    with WorkerClient(url, "t") as client, pytest.raises(RemoteError) as refused:
        client.post("/api/refused", {})
    assert (refused.value.status_code, refused.value.remote_code) == (409, "stale_lease")
    assert refused.value.message == "the lease is gone"


def test_a_chunked_answer_and_a_closed_connection_are_read_and_the_next_call_reconnects(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    with WorkerClient(url, "t") as client:
        assert client.post("/api/chunked", {}) == {"claimed": [1, 2]}
        assert client.post("/api/close", {}) == {"closed": True}
        assert client.post("/api/after", {"n": 1}) == {"echo": {"n": 1}}
    assert seen[0]["connection"] == seen[1]["connection"] != seen[2]["connection"]


def test_a_server_that_is_not_there_is_unreachable() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with WorkerClient(f"http://127.0.0.1:{port}", "t") as client, pytest.raises(Unreachable):
        client.post("/api/workers/report", {})
