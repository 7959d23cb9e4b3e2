"""Acceptance: searching a User Data tree and spawning one run per file group, on a real
``runyard up`` (SQLite and PostgreSQL), by the seed's conformance script registered unmodified
under another name, and by the built-in ``Lucid.Util.SearchFolderFilesBySuffix``.

Each mode gets its own workflow "select folder -> search": the right runs with the right names
and jobs; searching the same folder again adds no task; a follower task added to a spawned
task gets one job per spawned run (existing ones and later ones)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import (
    Installation,
    Worker,
    start_server,
    start_worker,
    stop,
    wait_for,
)
from tests.conftest import FIXTURES, TASK_TYPES

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "search_folder_files_by_suffix.py"

# The tree of User Data mapped at /Scans/: groups complete and incomplete, nested folders,
# upper and lower case names, files that match nothing.
TREE = [
    "top.txt",
    "S2/SCAN.AIM",
    "S2/SEG.AIM",
    "s1/A_SCAN.AIM",
    "s1/a_seg.aim",
    "s1/B_SCAN.AIM",
    "s1/notes.txt",
    "s1/deep/C_scan.Aim",
    "s1/deep/C_SEG.AIM",
    "s3/SCAN.AIM",
]

# mode -> (suffixes, spawned task names, runs: name -> the virtual paths of its files).
EXPECTED: dict[str, tuple[str, list[str], list[tuple[str, list[str]]]]] = {
    "standalone": (
        ".aim",
        ["Spawned ForeignFile"],
        [
            (name, [path])
            for name, path in [
                ("SCAN.AIM", "/Scans/S2/SCAN.AIM"),
                ("SEG.AIM", "/Scans/S2/SEG.AIM"),
                ("A_SCAN.AIM", "/Scans/s1/A_SCAN.AIM"),
                ("B_SCAN.AIM", "/Scans/s1/B_SCAN.AIM"),
                ("a_seg.aim", "/Scans/s1/a_seg.aim"),
                ("C_SEG.AIM", "/Scans/s1/deep/C_SEG.AIM"),
                ("C_scan.Aim", "/Scans/s1/deep/C_scan.Aim"),
                ("SCAN.AIM", "/Scans/s3/SCAN.AIM"),
            ]
        ],
    ),
    "filename": (
        "_scan.aim|_SEG.aim",
        ["_SCAN.AIM", "_SEG.AIM"],
        [
            ("A", ["/Scans/s1/A_SCAN.AIM", "/Scans/s1/a_seg.aim"]),
            ("C", ["/Scans/s1/deep/C_scan.Aim", "/Scans/s1/deep/C_SEG.AIM"]),
        ],
    ),
    "dirname": (
        "SCAN.AIM|SEG.AIM",
        ["SCAN.AIM", "SEG.AIM"],
        [
            ("/Scans/S2/", ["/Scans/S2/SCAN.AIM", "/Scans/S2/SEG.AIM"]),
            ("/Scans/s1/", ["/Scans/s1/A_SCAN.AIM", "/Scans/s1/a_seg.aim"]),
            ("/Scans/s1/deep/", ["/Scans/s1/deep/C_scan.Aim", "/Scans/s1/deep/C_SEG.AIM"]),
        ],
    ),
}
REGEX = (
    r"([a-z])_SCAN\.AIM|\1_SEG.AIM",
    [r"([a-z])_SCAN\.AIM", r"\1_SEG.AIM"],
    EXPECTED["filename"][2],
)
FOLDER = {"type": "Folder", "source": "userdata", "virtualpath": "/Scans/"}


def conformance_script() -> Path | None:
    """The conformance script: in $RUNYARD_CONFORMANCE_DIR, else shared/conformance/ beside the
    checkout or in /work (the team's machines keep the shared references there; the script
    is a reference kept outside the repository)."""
    places = [
        os.environ.get("RUNYARD_CONFORMANCE_DIR", ""),
        str(REPO.parent / "shared" / "conformance"),
        "/work/shared/conformance",
    ]
    for place in places:
        if place and (Path(place) / SCRIPT).is_file():
            return Path(place) / SCRIPT
    return None


def make_tree(root: Path) -> None:
    for relative in TREE:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"contents of {relative}\n")


def search_workflow(folder: Path, name: str, task_type: str, suffixes: str, mode: str) -> Path:
    """A workflow package "Folder (XF.Data.SelectFolder) -> Search (task_type)"."""
    package = folder / name
    package.mkdir(parents=True)
    metadata = {
        "package_format": "XFP-WF1.0",
        "name": name,
        "version": "1.0.0.0",
        "display_name": name,
        "summary": f"Search /Scans/ for {suffixes} ({mode})",
        "dependencies": [],
    }
    fixed = {"suffixes": suffixes, "mode": mode, "typename": "ForeignFile"}
    tasks = [
        {"name": "Folder", "task_type": {"name": "XF.Data.SelectFolder"}, "inputs": []},
        {
            "name": "Search",
            "task_type": {"name": task_type},
            "inputs": [
                {"key": "folder", "source": {"mode": "output", "task": 0, "key": "folder"}},
                *(
                    {"key": key, "source": {"mode": "fixed", "fixed_value": value}}
                    for key, value in fixed.items()
                ),
            ],
        },
    ]
    (package / "metadata.json").write_text(json.dumps(metadata))
    (package / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    return package


def search(up: Installation, workflow: str, run_name: str) -> dict[str, Any]:
    """Start a run at Folder on /Scans/ and wait for everything it spawns; the status."""
    up.cli("run", "new", workflow, "Folder", "--outputs", json.dumps({"folder": FOLDER}),
           "--name", run_name)  # fmt: skip
    status = up.status(workflow, "--wait")
    [searched] = [r for r in status["runs"] if r["name"] == run_name]
    job = searched["jobs"]["Search"]
    assert job["state"] == "Done", up.cli("job", "log", str(job["serial"])).stdout
    return status


def file_value(path: str) -> dict[str, str]:
    name = path.rsplit("/", 1)[1]
    return {"type": "ForeignFile", "source": "userdata", "virtualpath": path, "filename": name}


def check_runs(
    status: dict[str, Any], tasks: list[str], expected: list[tuple[str, list[str]]]
) -> list[dict[str, Any]]:
    """The spawned runs are the expected ones, each with one Done job per spawned task holding
    its file; the spawned runs."""
    spawned = [r for r in status["runs"] if "Folder" not in r["jobs"]]
    assert [(r["name"], r["entity"]["name"]) for r in spawned] == [(n, n) for n, _ in expected]
    for run, (_, paths) in zip(spawned, expected, strict=True):
        files = []
        for task in tasks:
            job = run["jobs"][task]
            assert job["state"] == "Done", (run["name"], task, job)
            files.append(job["outputs"]["foreign_file"])
        assert [f["virtualpath"] for f in files] == paths
        assert all(f == file_value(p) for f, p in zip(files, paths, strict=True))
    return spawned


def search_everything(
    up: Installation, tmp_path: Path, task_type: str, cases: dict[str, Any]
) -> None:
    scans = tmp_path / "scans"
    make_tree(scans)
    up.cli("userdata", "map", "/Scans/", str(scans))
    for mode, (suffixes, _, _) in cases.items():
        workflow = f"Search-{mode}"
        up.cli("import", str(search_workflow(tmp_path / "wf", workflow, task_type, suffixes, mode)))
        up.cli("workflow", "start", workflow)

    for mode, (_, tasks, expected) in cases.items():
        workflow = f"Search-{mode}"
        status = search(up, workflow, "first")
        assert status["tasks"] == ["Folder", "Search", *tasks]
        check_runs(status, tasks, expected)

    # A follower connected to a spawned task: a job in every spawned run, now and later.
    workflow, (_, tasks, expected) = "Search-filename", cases["filename"]
    source = {"mode": "output", "task": tasks[0], "key": "foreign_file"}
    added = up.cli("task", "add", workflow, "Upper", "--type", "Test.FileRoundTrip",
                   "--inputs", json.dumps([{"key": "file", "source": source}])).stdout  # fmt: skip
    assert f"{len(expected)} jobs created" in added

    for mode, (_, tasks, expected) in cases.items():
        workflow = f"Search-{mode}"
        status = search(up, workflow, "again")
        assert status["tasks"][: 2 + len(tasks)] == ["Folder", "Search", *tasks]  # none added
        check_runs(status, tasks, expected + expected)

    status = up.status("Search-filename")
    uppers = [r["jobs"]["Upper"] for r in status["runs"] if "Folder" not in r["jobs"]]
    assert [job["state"] for job in uppers] == ["Done"] * 2 * len(cases["filename"][2])
    assert uppers[0]["outputs"]["lines"] == 1


def test_the_conformance_script_runs_unmodified(up: Installation, tmp_path: Path) -> None:
    script = conformance_script()
    if script is None:
        pytest.skip(f"{SCRIPT} not found: set RUNYARD_CONFORMANCE_DIR to its folder")
    package = tmp_path / "conformance"
    shutil.copytree(FIXTURES / "conformance" / "SearchFolderFilesBySuffix", package)
    shutil.copyfile(script, package / "main.py")
    up.cli("import", str(package), str(TASK_TYPES / "FileRoundTrip"))
    search_everything(up, tmp_path, "Conformance.SearchFolderFilesBySuffix", EXPECTED)


def test_the_built_in_search_task(up: Installation, tmp_path: Path) -> None:
    up.cli("import", str(TASK_TYPES / "FileRoundTrip"))
    cases = EXPECTED | {"suffix_regex": REGEX}
    search_everything(up, tmp_path, "Lucid.Util.SearchFolderFilesBySuffix", cases)
    [regex_run] = [r for r in up.status("Search-suffix_regex")["runs"] if r["name"] == "first"]
    assert regex_run["jobs"]["Search"]["outputs"] == {"runs": 2}


# -- a crash in the middle of spawning ------------------------------------------------------

# File groups of the crash test, enough to be caught mid-spawn: the conformance script sends
# its three calls per run (spawn, join, set Done) in batches of 10,000 (5,000 groups: two
# batches, the crash comes after the first); the built-in search spawns in three batches.
GROUPS = {"conformance": 5000, "built-in": 2000}
LEASE_SECONDS = 3


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (its fork server, the job scripts), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def crash(worker: Worker) -> None:
    """The worker's machine dies: the worker, its fork server and the job's script, at once."""
    for pid in [worker.process.pid, *descendants(worker.process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.kill()


# One backend each (the suite's time): the conformance script's many small calls on
# PostgreSQL, the built-in search's batches on SQLite.
@pytest.mark.parametrize(
    ("search_type", "database_url"),
    [("conformance", "postgresql"), ("built-in", "sqlite")],
    indirect=["database_url"],
)
def test_a_search_whose_worker_dies_mid_spawn_gives_each_file_one_run(
    search_type: str, tmp_path: Path, database_url: str
) -> None:
    if search_type == "conformance":
        script = conformance_script()
        if script is None:
            pytest.skip(f"{SCRIPT} not found: set RUNYARD_CONFORMANCE_DIR to its folder")
        task_type = "Conformance.SearchFolderFilesBySuffix"
        package = tmp_path / "conformance"
        shutil.copytree(FIXTURES / "conformance" / "SearchFolderFilesBySuffix", package)
        shutil.copyfile(script, package / "main.py")
    else:
        task_type, package = "Lucid.Util.SearchFolderFilesBySuffix", None
    extra = () if database_url.startswith("sqlite") else ("--database-url", database_url)
    server = start_server(
        tmp_path / "server", *extra, env={"RUNYARD_LEASE_SECONDS": str(LEASE_SECONDS)}
    )
    workers: list[Worker] = []
    try:
        scans = tmp_path / "scans"
        scans.mkdir()
        names = [f"S{i:04}" for i in range(GROUPS[search_type])]
        for name in names:
            (scans / f"{name}_SCAN.AIM").write_text("scan")
            (scans / f"{name}_SEG.AIM").write_text("segmentation")
        server.cli("userdata", "map", "/Scans/", str(scans))
        workflow = search_workflow(tmp_path, "Crash", task_type, "_SCAN.AIM|_SEG.AIM", "filename")
        server.cli("import", *([str(package)] if package else []), str(workflow))
        server.cli("workflow", "start", "Crash")
        workers.append(start_worker(server, "first", tmp_path / "first"))
        server.cli("run", "new", "Crash", "Folder", "--outputs", json.dumps({"folder": FOLDER}))

        def whole_runs() -> int:
            status = server.api("GET", "/api/workflows/Crash/status")
            return sum(
                r["jobs"].get("_SCAN.AIM", {}).get("state") == "Done"
                and r["jobs"].get("_SEG.AIM", {}).get("state") == "Done"
                for r in status["runs"]
            )

        def spawned_runs() -> int:  # the runs table's count: cheap to ask often
            total: int = server.api("GET", "/api/workflows/Crash/runs?limit=1")["total"]
            return total - 1

        # Mid-spawn: runs exist (the conformance script makes them whole a batch at a time;
        # the built-in search spawns them Obsolete first and makes them Done at the end).
        wait_for(lambda: spawned_runs() >= 5, "the search spawning its first runs", interval=0.02)
        crash(workers[0])
        assert whole_runs() < len(names), "the crash came too late: spawning was over"

        workers.append(start_worker(server, "second", tmp_path / "second"))
        status = server.status("Crash", "--wait")
        [searched] = [r for r in status["runs"] if "Folder" in r["jobs"]]
        job = server.job(searched["jobs"]["Search"]["serial"])
        assert (job["state"], job["attempt"], job["worker"]) == ("Done", 2, "second")
        spawned = [r for r in status["runs"] if "Folder" not in r["jobs"]]
        assert sorted(r["name"] for r in spawned) == names  # each file group once
        for run in spawned:
            files = {t: run["jobs"][t]["outputs"]["foreign_file"]["filename"] for t in
                     ("_SCAN.AIM", "_SEG.AIM")}  # fmt: skip
            assert files == {"_SCAN.AIM": f"{run['name']}_SCAN.AIM",
                             "_SEG.AIM": f"{run['name']}_SEG.AIM"}  # fmt: skip
            assert {run["jobs"][t]["state"] for t in ("_SCAN.AIM", "_SEG.AIM")} == {"Done"}
    finally:
        for worker in workers:
            crash(worker)
        stop(server)
