"""The shared client with a retry policy (what task scripts use): calls are tried again while
the server is away (connection refused, 502/503/504) if sending them twice is safe, for a
bounded time, with one line when an outage starts and one when it ends; other answers are
never tried again. Against a real HTTP server on loopback that answers as told."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runyard.client import Client, RemoteError, ServerAway
from runyard.retries import RetryPolicy
from runyard.worker.connection import WorkerClient

FAST = {"first_delay": 0.01, "max_delay": 0.05}


class Scripted(BaseHTTPRequestHandler):
    """Answers each call with the next status of ``statuses`` (then 200 with what it got)."""

    protocol_version = "HTTP/1.1"
    statuses: list[int]
    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else self._chunked()
        self.bodies.append(body)
        status = self.statuses.pop(0) if self.statuses else 200
        data: Any = {"got": len(body)}
        if status >= 400:
            data = {"error": {"code": "x", "message": f"answered {status}", "details": {}}}
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST

    def _chunked(self) -> bytes:
        if self.headers.get("Transfer-Encoding") != "chunked":
            return b""
        data = b""
        while size := int(self.rfile.readline().strip(), 16):
            data += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return data

    def log_message(self, *args: Any) -> None:
        pass


class Lab:
    """A scripted server on a port of its own, started when asked."""

    def __init__(self) -> None:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            self.port = free.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.statuses: list[int] = []
        self.bodies: list[bytes] = []
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        handler = type("Lab", (Scripted,), {"statuses": self.statuses, "bodies": self.bodies})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    yield lab
    lab.stop()


def policy(said: list[str], **values: Any) -> RetryPolicy:
    return RetryPolicy(**(FAST | {"seconds": 30.0, "notify": said.append} | values))


@pytest.mark.parametrize("kind", [Client, WorkerClient])
def test_a_get_is_tried_again_through_503s_and_says_so_once_per_outage(
    lab: Lab, kind: type[Client]
) -> None:
    lab.start()
    lab.statuses.extend([503, 502, 504, 503])
    said: list[str] = []
    with kind(lab.url, "t", retry=policy(said)) as client:
        assert client.get("/api/workflows") == {"got": 0}
    assert len(lab.bodies) == 5
    assert len(said) == 2, said
    assert "GET /api/workflows: the server answered 503" in said[0]
    assert "trying again for up to 30 s" in said[0]
    assert "answered again after" in said[1]


def test_a_post_that_may_have_been_done_is_not_sent_twice_unless_marked_idempotent(
    lab: Lab,
) -> None:
    lab.start()
    lab.statuses.extend([503, 503])
    with Client(lab.url, "t", retry=policy([])) as client:
        with pytest.raises(RemoteError) as refused:
            client.post("/api/jobs/1/activity", {"message": "hello"})
        assert refused.value.status_code == 503
        assert len(lab.bodies) == 1
        assert client.post("/api/jobs/1/progress", {"fraction": 0.5}, idempotent=True)
    assert len(lab.bodies) == 3


@pytest.mark.parametrize("status", [400, 404, 409, 422, 500, 507])
def test_other_answers_are_never_tried_again(lab: Lab, status: int) -> None:
    lab.start()
    lab.statuses.append(status)
    with Client(lab.url, "t", retry=policy([])) as client, pytest.raises(RemoteError):
        client.get("/api/workflows")
    assert len(lab.bodies) == 1


@pytest.mark.parametrize("kind", [Client, WorkerClient])
def test_a_call_to_a_server_not_listening_yet_is_sent_once_it_listens(
    lab: Lab, kind: type[Client]
) -> None:
    """Connection refused: nothing was sent, so even a plain POST is safe to send again."""
    outage = threading.Event()

    def notify(message: str) -> None:
        outage.set()

    starter = threading.Thread(target=lambda: outage.wait(30) and lab.start())
    starter.start()
    with kind(lab.url, "t", retry=policy([], notify=notify)) as client:
        assert client.post("/api/jobs/1/activity", {"message": "x"}) == {"got": 15}
    starter.join()
    assert len(lab.bodies) == 1


def test_a_call_is_given_up_after_the_retry_time_and_says_why(lab: Lab) -> None:
    lab.start()
    lab.statuses.extend([503] * 10_000)
    gave_up: list[str] = []
    retry = policy([], seconds=0.3, on_give_up=gave_up.append)
    with Client(lab.url, "t", retry=retry) as client, pytest.raises(ServerAway) as away:
        client.get("/api/workflows")
    assert "RUNYARD_RETRY_SECONDS=0.3" in away.value.message
    assert "the server answered 503" in away.value.message
    assert gave_up == [away.value.message]
    assert len(lab.bodies) > 1


def test_without_a_policy_or_with_zero_seconds_nothing_is_tried_again(lab: Lab) -> None:
    lab.start()
    lab.statuses.extend([503, 503])
    with Client(lab.url, "t") as plain, pytest.raises(RemoteError):
        plain.get("/api/workflows")
    with Client(lab.url, "t", retry=policy([], seconds=0)) as zero, pytest.raises(RemoteError):
        zero.get("/api/workflows")
    assert len(lab.bodies) == 2


def test_a_streamed_upload_is_sent_whole_again(lab: Lab, tmp_path: Path) -> None:
    lab.start()
    lab.statuses.append(503)
    source = tmp_path / "data.bin"
    source.write_bytes(b"x" * 3_000_000)
    with Client(lab.url, "t", retry=policy([])) as client:
        assert client.upload(source) == {"got": 3_000_000}
    assert [len(b) for b in lab.bodies] == [3_000_000, 3_000_000]


def test_a_download_is_fetched_again_from_the_start(lab: Lab, tmp_path: Path) -> None:
    lab.start()
    lab.statuses.extend([502, 503])
    target = tmp_path / "got.json"
    with Client(lab.url, "t", retry=policy([])) as client:
        client.fetch("/api/files/abc", target)
    assert json.loads(target.read_text()) == {"got": 0}
    assert not list(tmp_path.glob("*.partial"))
