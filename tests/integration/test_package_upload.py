"""Package uploads (``POST /api/packages``) are spooled to a temporary file past a few MiB,
not held in memory whole; one over the limit is refused as soon as it passes it (or at once,
when its declared length says so), with a message naming the limit, and nothing imported.
On SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.packages import folder_zip_bytes
from runyard.server import api
from tests.conftest import TASK_TYPES
from tests.integration.conftest import Server, error


def big_task_type(root: Path, megabytes: int) -> Path:
    """Test.Double with a data file of ``megabytes`` random (incompressible) MiB."""
    package = root / "Test.Double"
    shutil.copytree(TASK_TYPES / "Double", package)
    (package / "data").mkdir()
    (package / "data" / "blob.bin").write_bytes(os.urandom(megabytes << 20))
    return package


def test_a_package_larger_than_what_is_kept_in_memory_is_imported_whole(
    server: Server, tmp_path: Path
) -> None:
    package = big_task_type(tmp_path, (api.SPOOL_BYTES >> 20) + 2)
    zipped = folder_zip_bytes(package)
    assert len(zipped) > api.SPOOL_BYTES, "spooled to a file"
    answer = server.client.post("/api/packages", content=zipped, params={"filename": "big.xfp"})
    assert answer.status_code == 200, answer.text
    task_type = answer.json()["task_type"]
    back = server.client.get(f"/api/task-types/{task_type['name']}/{task_type['version']}/package")
    assert back.status_code == 200
    with zipfile.ZipFile(io.BytesIO(back.content)) as archive:
        names = {n.split("/", 1)[-1] for n in archive.namelist()}
        blob = next(n for n in archive.namelist() if n.endswith("data/blob.bin"))
        assert archive.read(blob) == (package / "data" / "blob.bin").read_bytes()
    assert "metadata.json" in names


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    limit = 2 << 20
    monkeypatch.setattr(api, "MAX_PACKAGE_BYTES", limit)
    yield limit


def test_a_package_over_the_limit_is_refused_naming_it_and_nothing_is_imported(
    server: Server, tmp_path: Path, small_limit: int
) -> None:
    zipped = folder_zip_bytes(big_task_type(tmp_path, 3))
    assert len(zipped) > small_limit

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once past the limit
        for start in range(0, len(zipped), 64 << 10):
            yield zipped[start : start + (64 << 10)]

    declared = server.client.post("/api/packages", content=zipped, params={"filename": "a.xfp"})
    streamed = server.client.post("/api/packages", content=chunks(), params={"filename": "b.xfp"})
    for answer, name in ((declared, "a.xfp"), (streamed, "b.xfp")):
        assert answer.status_code == 422, answer.text
        assert error(answer)["message"] == f"{name}: the package is larger than 2 MiB"
    assert server.client.get("/api/task-types").json() == []


def test_an_empty_upload_is_refused(server: Server) -> None:
    answer = server.client.post("/api/packages", content=b"")
    assert answer.status_code == 422
    assert "the request body is empty" in error(answer)["message"]
