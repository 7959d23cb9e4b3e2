"""The file store through the HTTP API (in-process server, SQLite and PostgreSQL): uploads
are streamed, checked by size and SHA-256, and become visible whole or not at all."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from runyard.client import Client, RemoteError
from runyard.operations import Runyard
from runyard.operations.files import ABANDONED_SECONDS
from tests.integration.conftest import Server, error, start_a_job

REFERENCE_KEYS = {"type", "source", "file_id", "filename", "size", "sha256"}


def upload(
    server: Server,
    data: bytes,
    filename: str = "scan.raw",
    *,
    size: int | None = None,
    sha256: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST /api/files with ``data``; the announced size and SHA-256 are right unless given."""
    params: dict[str, Any] = {
        "filename": filename,
        "size": len(data) if size is None else size,
        "sha256": hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
    }
    return server.client.post("/api/files", params=params, content=data, headers=headers)


def stored_rows(ry: Runyard) -> int:
    with ry.store.read() as conn:
        count: int = conn.execute(sa.text("SELECT count(*) FROM files")).scalar_one()
        return count


def files_on_disk(ry: Runyard) -> list[str]:
    """Everything under DATA_DIR/files, as paths relative to it (an empty staging folder is
    what a refused upload leaves)."""
    root = ry.settings.data_dir / "files"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def assert_nothing_stored(ry: Runyard) -> None:
    assert stored_rows(ry) == 0
    assert files_on_disk(ry) in ([], ["staging"])


def some_bytes(n: int) -> bytes:
    """``n`` bytes that are not all alike (so a shifted or truncated copy differs)."""
    return (hashlib.sha256(b"seed").digest() * (n // 32 + 1))[:n]


# -- upload and download ------------------------------------------------------------------


def test_an_uploaded_file_downloads_with_the_same_bytes_and_checksum(server: Server) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, not a whole number of them
    r = upload(server, data, "scan 01.raw")
    assert r.status_code == 200, r.text
    reference = r.json()
    assert set(reference) == REFERENCE_KEYS
    assert reference["type"] == "ForeignFile" and reference["source"] == "filestore"
    assert reference["filename"] == "scan 01.raw"
    assert reference["size"] == len(data)
    assert reference["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(reference["file_id"]) == 32

    down = server.client.get(f"/api/files/{reference['file_id']}")
    assert down.status_code == 200
    assert down.content == data
    assert down.headers["x-runyard-sha256"] == reference["sha256"]
    assert down.headers["content-length"] == str(len(data))
    assert "scan%2001.raw" in down.headers["content-disposition"]
    assert stored_rows(server.ry) == 1


def test_the_same_bytes_uploaded_twice_are_two_files(server: Server) -> None:
    data = some_bytes(1000)
    first, second = upload(server, data, "a.txt").json(), upload(server, data, "b.txt").json()
    assert first["file_id"] != second["file_id"] and first["sha256"] == second["sha256"]
    assert server.client.get(f"/api/files/{first['file_id']}").content == data


def test_an_empty_file_is_a_file(server: Server) -> None:
    r = upload(server, b"", "empty.txt")
    assert r.status_code == 200, r.text
    assert r.json()["size"] == 0
    assert server.client.get(f"/api/files/{r.json()['file_id']}").content == b""


def test_size_and_checksum_may_be_left_out(server: Server) -> None:
    data = some_bytes(5000)
    r = server.client.post("/api/files", params={"filename": "x.bin"}, content=data)
    assert r.status_code == 200, r.text
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_announced_checksum_may_be_upper_case(server: Server) -> None:
    data = some_bytes(100)
    r = upload(server, data, sha256=hashlib.sha256(data).hexdigest().upper())
    assert r.status_code == 200, r.text


# -- refused uploads store nothing --------------------------------------------------------


@pytest.mark.parametrize(
    ("announced", "problem"),
    [
        ({"size": 999}, "has the wrong size: received 1000 bytes, 999 were announced"),
        ({"size": 1001}, "has the wrong size: received 1000 bytes, 1001 were announced"),
        ({"sha256": hashlib.sha256(b"other").hexdigest()}, "is corrupt: its SHA-256 is"),
    ],
)
def test_an_upload_that_does_not_match_its_announcement_is_refused_and_nothing_stored(
    server: Server, announced: dict[str, Any], problem: str
) -> None:
    r = upload(server, some_bytes(1000), "scan.raw", **announced)
    assert r.status_code == 422
    body = error(r)
    assert body["code"] == "invalid_input"
    assert problem in body["message"] and "'scan.raw'" in body["message"]
    assert "nothing was stored" in body["message"]
    assert_nothing_stored(server.ry)


MALFORMED_ANNOUNCEMENTS: list[tuple[dict[str, Any], str]] = [
    ({"sha256": "xyz"}, "sha256 must be the file's SHA-256 as 64 hexadecimal digits"),
    ({"sha256": "g" * 64}, "sha256 must be the file's SHA-256 as 64 hexadecimal digits"),
    ({"size": -1}, "size must be a number of bytes"),
    ({"size": "big"}, "size: "),
    ({"filename": None}, "filename: Field required"),
]
BAD_FILE_NAMES = [
    "../x",
    "a/b",
    "/etc/passwd",
    "a\\b",
    "",
    ".",
    "..",
    "a\0b",
    "a\nb",
    "tab\there",
    "x" * 256,
    "é" * 128,  # 256 bytes in UTF-8
]
VALID_FILE_NAMES = ["x" * 255, "é" * 127, "résumé (final).pdf", ".hidden", "a..b", "数据.csv"]


def test_a_malformed_announcement_is_refused(server: Server) -> None:
    for params, problem in MALFORMED_ANNOUNCEMENTS:
        announced: dict[str, Any] = {"filename": "x.bin", **params}
        query = {k: v for k, v in announced.items() if v is not None}
        r = server.client.post("/api/files", params=query, content=b"data")
        assert r.status_code == 422 and error(r)["code"] == "invalid_input", params
        assert problem in error(r)["message"], params
    assert_nothing_stored(server.ry)


def test_a_bad_file_name_is_refused(server: Server) -> None:
    for filename in BAD_FILE_NAMES:
        r = upload(server, b"data", filename)
        assert r.status_code == 422 and error(r)["code"] == "invalid_input", filename
        assert "is not a valid file name" in error(r)["message"], filename
    assert_nothing_stored(server.ry)


def test_unusual_but_valid_file_names_are_kept(server: Server) -> None:
    for filename in VALID_FILE_NAMES:
        r = upload(server, b"data", filename)
        assert r.status_code == 200, (filename, r.text)
        assert r.json()["filename"] == filename


def test_an_upload_interrupted_mid_stream_leaves_nothing(server: Server) -> None:
    def body() -> Iterator[bytes]:
        yield b"x" * 65536
        yield b"y" * 65536
        raise ConnectionResetError("the sender went away")

    try:
        r = server.client.post("/api/files", params={"filename": "half.raw"}, content=body())
        assert r.status_code >= 400
    except ConnectionResetError:
        pass  # the test transport may hand the sender's error back instead of an answer
    assert_nothing_stored(server.ry)
    # The store still works afterwards.
    assert upload(server, b"whole", "whole.raw").status_code == 200


def test_uploads_abandoned_by_a_crashed_server_are_cleaned_up(server: Server) -> None:
    staging = server.ry.settings.data_dir / "files" / "staging"
    staging.mkdir(parents=True)
    abandoned, live = staging / "upload-abandoned", staging / "upload-live"
    abandoned.write_bytes(b"half a scan")
    live.write_bytes(b"still arriving")
    day_ago = server.ry.files.now().timestamp() - ABANDONED_SECONDS - 60
    os.utime(abandoned, (day_ago, day_ago))
    assert upload(server, b"new", "new.raw").status_code == 200
    assert sorted(p.name for p in staging.iterdir()) == ["upload-live"]


# -- reading files ------------------------------------------------------------------------


def test_an_unknown_file_id_is_not_found(server: Server) -> None:
    r = server.client.get("/api/files/" + "0" * 32)
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    assert "no file 00000000000000000000000000000000" in error(r)["message"]


def test_a_malformed_file_id_is_refused(server: Server) -> None:
    for file_id in ["zz", "0" * 31, "0" * 33, "A" * 32, "0" * 31 + "g"]:
        r = server.client.get(f"/api/files/{file_id}")
        assert r.status_code == 422 and error(r)["code"] == "invalid_input", file_id
        assert "is not a file id (32 hexadecimal digits)" in error(r)["message"]


def test_a_file_whose_data_is_gone_is_not_found(server: Server) -> None:
    reference = upload(server, b"data").json()
    server.ry.files.path_of(reference["file_id"]).unlink()
    r = server.client.get(f"/api/files/{reference['file_id']}")
    assert r.status_code == 404 and error(r)["code"] == "not_found"


# -- who may store and read ---------------------------------------------------------------


def test_a_job_token_may_upload_and_the_file_records_its_job(server: Server) -> None:
    job = start_a_job(server)
    r = upload(server, b"result", "result.csv", headers=server.as_token(job.job_token))
    assert r.status_code == 200, r.text
    stored, path = server.ry.files.get(r.json()["file_id"])
    assert stored.job_serial == job.serial and path.read_bytes() == b"result"
    # ... and read it back, like any token.
    down = server.client.get(f"/api/files/{stored.id}", headers=server.as_token(job.job_token))
    assert down.status_code == 200 and down.content == b"result"


def test_an_admin_upload_records_no_job(server: Server) -> None:
    stored, _ = server.ry.files.get(upload(server, b"input").json()["file_id"])
    assert stored.job_serial is None


def test_a_worker_token_may_not_upload(server: Server) -> None:
    job = start_a_job(server)
    r = upload(server, b"data", headers=server.as_token(job.worker_token))
    assert r.status_code == 403 and error(r)["code"] == "forbidden"
    assert_nothing_stored(server.ry)


def test_without_a_valid_token_files_are_neither_stored_nor_read(server: Server) -> None:
    file_id = upload(server, b"secret").json()["file_id"]
    for header in ["", "Bearer nope", "Basic abc", "Bearer ry_job_1_abc"]:
        r = upload(server, b"data", headers={"Authorization": header})
        assert r.status_code == 401 and error(r)["code"] == "unauthorized", header
        r = server.client.get(f"/api/files/{file_id}", headers={"Authorization": header})
        assert r.status_code == 401 and error(r)["code"] == "unauthorized", header
    assert stored_rows(server.ry) == 1


# -- the shared client --------------------------------------------------------------------


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    """``runyard.client.Client`` as the admin, talking to the in-process server."""
    client = Client("http://testserver", "")
    client._http.close()
    # starlette's TestClient is an httpx-compatible client of another package (httpx2).
    client._http = server.client  # type: ignore[assignment]
    yield client


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A folder of the test's own, beside the server's data."""
    folder = tmp_path / "local"
    folder.mkdir()
    return folder


def test_the_client_streams_a_file_up_and_down(client: Client, local: Path) -> None:
    source = local / "scan.raw"
    source.write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    reference = client.upload(source)
    assert set(reference) == REFERENCE_KEYS and reference["filename"] == "scan.raw"
    target = client.download(reference["file_id"], local / "copy.raw")
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in local.iterdir()) == ["copy.raw", "scan.raw"]


def test_the_client_may_store_a_file_under_another_name(client: Client, local: Path) -> None:
    source = local / "tmp123"
    source.write_bytes(b"a,b\n1,2\n")
    assert client.upload(source, "table.csv")["filename"] == "table.csv"


def test_a_failed_download_leaves_no_file(client: Client, local: Path) -> None:
    with pytest.raises(RemoteError) as caught:
        client.download("0" * 32, local / "x.raw")
    assert caught.value.status_code == 404
    assert list(local.iterdir()) == []


def test_a_file_id_cannot_lead_the_client_to_another_endpoint(client: Client, local: Path) -> None:
    with pytest.raises(RemoteError) as caught:
        client.download("../workflows", local / "x")
    assert caught.value.status_code == 404
    assert list(local.iterdir()) == []


def test_a_download_that_does_not_match_its_checksum_leaves_no_file(
    client: Client, server: Server, local: Path
) -> None:
    reference = upload(server, b"original").json()
    server.ry.files.path_of(reference["file_id"]).write_bytes(b"tampered")  # same size
    with pytest.raises(Exception, match="corrupt"):
        client.download(reference["file_id"], local / "x.raw")
    assert list(local.iterdir()) == []
