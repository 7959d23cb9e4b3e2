"""The file store over real HTTP (``runyard server`` as a subprocess, SQLite): a sender that
goes away mid-upload leaves nothing, and a large file passes in constant memory."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import RUNYARD, Installation, stop

T = TypeVar("T")
MIB = 1024 * 1024


@dataclass
class Server:
    installation: Installation
    url: str
    token: str

    @property
    def files(self) -> Path:
        return self.installation.data_dir / "files"

    @property
    def pid(self) -> int:
        return self.installation.process.pid

    def stored_rows(self) -> int:
        engine = sa.create_engine(f"sqlite:///{self.installation.data_dir / 'runyard.db'}")
        try:
            with engine.connect() as conn:
                count: int = conn.execute(sa.text("SELECT count(*) FROM files")).scalar_one()
                return count
        finally:
            engine.dispose()

    def on_disk(self) -> list[str]:
        return sorted(str(p.relative_to(self.files)) for p in self.files.rglob("*"))


def poll(condition: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``runyard server`` alone on SQLite, on a free port."""
    data_dir = tmp_path / "lab"
    data_dir.mkdir()
    log_path = data_dir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*RUNYARD, "server", "--data-dir", str(data_dir), "--port", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    installation = Installation(data_dir=data_dir, process=process)
    try:
        poll(
            lambda: (data_dir / "server.json").exists() or process.poll() is not None,
            "runyard server starting",
            timeout=60,
        )
        if process.poll() is not None:
            raise AssertionError("runyard server did not start:\n" + log_path.read_text())
        url = json.loads((data_dir / "server.json").read_text())["url"]
        token = (data_dir / "admin-token").read_text().strip()
        # server.json can appear a moment before the server accepts connections.
        poll(lambda: answers(url), "runyard server answering", timeout=30)
        yield Server(installation=installation, url=url, token=token)
    finally:
        stop(installation)


def answers(url: str) -> bool:
    try:
        httpx.get(url + "/openapi.json", timeout=5)
    except httpx.TransportError:
        return False
    return True


def test_an_upload_cut_off_mid_stream_leaves_nothing(server: Server) -> None:
    address = urlsplit(server.url)
    size = 64 * MIB
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(
            f"POST /api/files?filename=half.raw&size={size} HTTP/1.1\r\n"
            f"Host: {address.netloc}\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        )
        sock.sendall(b"\0" * (4 * MIB))
        # The server is receiving it: a staging file exists, nothing is visible.
        poll(
            lambda: any((server.files / "staging").glob("upload-*")),
            "the upload being received",
        )
        assert all(p.startswith("staging") for p in server.on_disk())
    # The sender went away: the staging file goes too, and nothing was recorded.
    poll(lambda: server.on_disk() == ["staging"], f"cleaning up; on disk: {server.on_disk()}")
    assert server.stored_rows() == 0
    # The server keeps serving.
    answer = httpx.post(
        server.url + "/api/files",
        params={"filename": "whole.raw"},
        content=b"whole",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    assert answer.status_code == 200, answer.text
    assert server.stored_rows() == 1


def peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_a_large_file_goes_up_and_down_in_constant_memory(server: Server) -> None:
    if not Path(f"/proc/{server.pid}/status").exists():
        pytest.skip("needs /proc to read the server's memory use")
    size, chunk = 200 * MIB, b"\0" * MIB
    sha256 = hashlib.sha256()
    for _ in range(size // MIB):
        sha256.update(chunk)
    headers = {"Authorization": f"Bearer {server.token}"}
    # Warm up (first request, imports), then measure from there.
    httpx.get(server.url + "/api/workflows", headers=headers).raise_for_status()
    before = peak_rss(server.pid)

    def body() -> Iterator[bytes]:
        for _ in range(size // MIB):
            yield chunk

    started = time.monotonic()
    answer = httpx.post(
        server.url + "/api/files",
        params={"filename": "big.raw", "size": size, "sha256": sha256.hexdigest()},
        content=body(),
        headers=headers,
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    received = 0
    digest = hashlib.sha256()
    with httpx.stream(
        "GET", f"{server.url}/api/files/{answer.json()['file_id']}", headers=headers, timeout=120
    ) as down:
        for part in down.iter_bytes():
            received += len(part)
            digest.update(part)
    assert received == size and digest.hexdigest() == sha256.hexdigest()
    growth = peak_rss(server.pid) - before
    assert growth < 40 * MIB, f"the server's peak memory grew by {growth // MIB} MiB"
    assert time.monotonic() - started < 60
