"""A full disk (in-process server, SQLite and PostgreSQL): an upload, a User Data write or a
database write that runs out of space is answered 507 ``insufficient_storage`` and leaves no
partial file and no record behind; once there is room again, the same call works.

The disk is really full: a tiny tmpfs mounted over the file store, the User Data folder or
the SQLite database's folder. Mounting needs root (or a system that allows it), so these
tests skip, saying why, where ``mount`` fails. PostgreSQL's own disk_full is recognised by its
SQLSTATE (a unit test below: filling the suite's shared server's disk is not an option).
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.server.app import create_app, out_of_space
from runyard.settings import Settings
from tests.integration.conftest import Server, error
from tests.integration.test_files import assert_nothing_stored, some_bytes, stored_rows

TINY = 256 * 1024


def mount_tiny(folder: Path, size: int = TINY) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a full disk is made by mounting a tiny tmpfs, which needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "runyard-full", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs for a full disk: {done.stderr.strip()}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def used(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def full_file_store(ry: Runyard) -> Iterator[Path]:
    """The file store (DATA_DIR/files) on a 256 KiB disk."""
    root = ry.settings.data_dir / "files"
    mount_tiny(root)
    yield root
    unmount(root)


def upload(server: Server, data: bytes) -> Any:
    params = {"filename": "scan.raw", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return server.client.post("/api/files", params=params, content=data)


def test_an_upload_onto_a_full_disk_is_507_and_leaves_no_partial_file_and_no_record(
    server: Server, full_file_store: Path
) -> None:
    r = upload(server, some_bytes(1024 * 1024))
    assert r.status_code == 507, r.text
    problem = error(r)
    assert problem["code"] == "insufficient_storage"
    assert "No space left on device" in problem["message"]
    assert "nothing was stored" in problem["message"]
    assert_nothing_stored(server.ry)
    assert used(full_file_store) in ([], ["staging"])
    small = some_bytes(10_000)
    r = upload(server, small)
    assert r.status_code == 200, r.text
    assert stored_rows(server.ry) == 1


def test_an_upload_that_fills_the_disk_in_small_pieces_leaves_no_staging_file(
    ry: Runyard, full_file_store: Path
) -> None:
    """Pieces smaller than the write buffer: the error comes from a flush, and closing the
    file fails the same way (the buffered bytes still do not fit); the file goes anyway."""
    upload = ry.files.begin_upload("scan.raw")
    with pytest.raises(OSError) as raised:
        for _ in range(1024):
            upload.write(b"x" * 1000)
    assert raised.value.errno == errno.ENOSPC
    upload.discard()
    assert used(full_file_store) == ["staging"]
    assert stored_rows(ry) == 0


def test_a_user_data_write_onto_a_full_disk_is_507_and_leaves_the_file_as_it_was(
    server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "scans"
    mount_tiny(folder)
    try:
        (folder / "table.csv").write_bytes(b"old")
        r = server.client.put(
            "/api/userdata/mappings", json={"root": "/Scans/", "folder": str(folder)}
        )
        assert r.status_code == 200, r.text
        r = server.client.post("/api/userdata/tokens", json={"scopes": [["write", "/Scans/"]]})
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        data = some_bytes(1024 * 1024)
        r = server.client.put(
            "/api/userdata/file",
            params={"path": "/Scans/table.csv", "size": len(data)},
            content=data,
            headers=headers,
        )
        assert r.status_code == 507, r.text
        assert error(r)["code"] == "insufficient_storage"
        assert used(folder) == ["table.csv"]
        assert (folder / "table.csv").read_bytes() == b"old"
        r = server.client.put(
            "/api/userdata/file",
            params={"path": "/Scans/table.csv"},
            content=b"new",
            headers=headers,
        )
        assert r.status_code == 200, r.text
        assert (folder / "table.csv").read_bytes() == b"new"
    finally:
        unmount(folder)


@pytest.fixture
def sqlite_on_a_tiny_disk(tmp_path: Path) -> Iterator[tuple[TestClient, Runyard, Path]]:
    """A server whose SQLite database lives on a 4 MiB disk, as the admin."""
    folder = tmp_path / "db"
    mount_tiny(folder, 4 * 1024 * 1024)
    settings = Settings(
        data_dir=tmp_path / "data", database_url=f"sqlite:///{folder / 'runyard.db'}"
    )
    ry = Runyard(settings).open()
    token = ry.auth.ensure_admin_token()
    try:
        with TestClient(create_app(ry), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, ry, folder
    finally:
        ry.close()
        unmount(folder)


def fill(folder: Path) -> Path:
    """Fill the disk of ``folder`` up with one file; that file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_database_write_onto_a_full_disk_is_507_and_records_nothing(
    sqlite_on_a_tiny_disk: tuple[TestClient, Runyard, Path],
) -> None:
    client, ry, folder = sqlite_on_a_tiny_disk
    filler = fill(folder)
    answers = []
    for i in range(2000):  # until the database cannot grow (a page has room for some rows)
        r = client.post("/api/tokens/worker", json={"name": f"worker-{i:04d}-" + "x" * 150})
        answers.append(r.status_code)
        if r.status_code != 200:
            break
    assert answers[-1] == 507, r.text
    assert set(answers[:-1]) <= {200}
    assert error(r)["code"] == "insufficient_storage"
    refused = f"worker-{len(answers) - 1:04d}-"
    filler.unlink()
    with ry.store.read() as conn:
        names = conn.execute(sa.text("SELECT name FROM tokens")).scalars().all()
    assert not [n for n in names if n.startswith(refused)]
    r = client.post("/api/tokens/worker", json={"name": "after"})
    assert r.status_code == 200, r.text


def test_postgresqls_disk_full_and_sqlites_full_database_count_as_out_of_space() -> None:
    disk_full = sa.exc.OperationalError("INSERT ...", {}, psycopg.errors.DiskFull("no space"))
    assert out_of_space(disk_full)
    gone = sa.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection lost"))
    assert not out_of_space(gone)
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert not out_of_space(OSError(errno.EACCES, "Permission denied"))
