"""A worker's working folders: a Done job's folder serves the next job only when its job left
nothing but the job's own files, and that job sees none of them (runyard.worker.folders)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from runyard.worker.folders import WorkingFolders


def suffix(folder: Path) -> str:
    return folder.name.rpartition("-")[2]


def ran(folder: Path, log: str = "a line\n") -> None:
    """What a Done job leaves: its log and its result."""
    (folder / "job.log").write_text(log)
    (folder / "result.json").write_text('{"outputs": {"value": 1}}')


def test_a_done_jobs_folder_serves_the_next_job_under_its_name_with_none_of_its_files(
    tmp_path: Path,
) -> None:
    folders = WorkingFolders(tmp_path / "jobs", max_spares=4)
    first = folders.new(7, {"serial": 7, "inputs": {"value": "a long value " * 20}})
    assert first.name.startswith("job-7-") and first.parent == tmp_path / "jobs"
    ran(first)
    folders.recycle(first)
    assert not first.exists(), "a Done job's folder is gone at once"

    second = folders.new(8, {"serial": 8})
    assert second.name.startswith("job-8-") and suffix(second) == suffix(first), "reused"
    assert sorted(p.name for p in second.iterdir()) == ["job.json", "job.log"]
    assert json.loads((second / "job.json").read_text()) == {"serial": 8}, "shorter, whole"
    assert (second / "job.log").read_bytes() == b""
    assert [p.name for p in (tmp_path / "jobs").iterdir() if p.name.startswith("job-")] == [
        second.name
    ]


def extra_file(folder: Path) -> None:
    (folder / "out.csv").write_text("x")


def subfolder(folder: Path) -> None:
    (folder / "part").mkdir()


def linked_log(folder: Path) -> None:
    (folder / "job.log").unlink()
    (folder / "job.log").symlink_to(folder.parent.parent / "elsewhere.log")


def second_name(folder: Path) -> None:
    os.link(folder / "job.json", folder.parent.parent / "copy.json")


def staged_result(folder: Path) -> None:
    (folder / "result.tmp").write_text("{")


@pytest.mark.parametrize(
    "leave",
    [extra_file, subfolder, linked_log, second_name, staged_result],
    ids=lambda f: f.__name__,
)
def test_a_folder_with_anything_else_in_it_is_deleted_and_the_next_job_gets_a_new_one(
    tmp_path: Path, leave: Callable[[Path], None]
) -> None:
    (tmp_path / "elsewhere.log").write_text("not the job's\n")
    folders = WorkingFolders(tmp_path / "jobs", max_spares=4)
    first = folders.new(1, {"serial": 1})
    ran(first)
    leave(first)
    folders.recycle(first)
    folders.empty_trash()
    assert not first.exists()
    second = folders.new(2, {"serial": 2})
    assert suffix(second) != suffix(first)
    assert sorted(p.name for p in second.iterdir()) == ["job.json"]
    assert (tmp_path / "elsewhere.log").read_text() == "not the job's\n"
    if (tmp_path / "copy.json").exists():
        assert json.loads((tmp_path / "copy.json").read_text()) == {"serial": 1}


def test_spares_beyond_the_limit_are_deleted_and_none_is_left_when_the_worker_stops(
    tmp_path: Path,
) -> None:
    folders = WorkingFolders(tmp_path / "jobs", max_spares=1)
    done = [folders.new(serial, {"serial": serial}) for serial in (1, 2)]
    for folder in done:
        ran(folder)
        folders.recycle(folder)
    folders.empty_trash()
    assert not any(folder.exists() for folder in done)
    kept = folders.new(3, {"serial": 3})
    assert suffix(kept) == suffix(done[0]), "the one spare"
    running = folders.new(4, {"serial": 4})
    assert suffix(running) not in {suffix(f) for f in done}
    folders.recycle(kept)
    folders.close()
    assert list((tmp_path / "jobs").iterdir()) == [running], "only a job not ended has one"
