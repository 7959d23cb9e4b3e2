"""Acceptance: User Data on a real ``runyard up`` (SQLite and PostgreSQL). An admin maps
folders with the CLI; a task script written against xfworkerutil/network walks a mapped folder
tree (nested folders, upper and lower case names) and reads a file, and a script written with
``runyard.task.userdata`` reads files and writes a report, all through the local worker."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.conftest import Installation
from tests.conftest import TASK_TYPES, WORKFLOWS


def make_tree(root: Path) -> None:
    for relative, text in {
        "top.txt": "top",
        "s1/A.AIM": "first aim",
        "s1/b.aim": "second aim",
        "s1/Sub/deep/C.ISQ": "isq",
        "s1/Sub/deep/notes.txt": "notes",
        "S2/d.Aim": "third aim",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "empty").mkdir()


def test_scripts_list_read_and_write_mapped_user_data(up: Installation, tmp_path: Path) -> None:
    scans, results = tmp_path / "scans", tmp_path / "results"
    make_tree(scans)
    results.mkdir()
    assert "mapped /Scans/ -> " in up.cli("userdata", "map", "/Scans/", str(scans)).stdout
    up.cli("userdata", "map", "/Results/", str(results))
    listed = up.cli("userdata", "list").stdout
    assert "/Scans/" in listed and "/Results/" in listed

    up.cli(
        "import",
        str(TASK_TYPES / "FolderSource"),
        str(TASK_TYPES / "XfListUserData"),
        str(TASK_TYPES / "UserDataReport"),
        str(WORKFLOWS / "UserData"),
    )
    up.cli("workflow", "start", "UserData")
    folder = '{"folder": {"type": "Folder", "source": "userdata", "virtualpath": "/Scans/"}}'
    up.cli("run", "new", "UserData", "Source", "--outputs", folder, "--name", "scans")
    [run] = up.status("UserData", "--wait")["runs"]
    jobs = run["jobs"]
    assert {task: job["state"] for task, job in jobs.items()} == {
        "Source": "Done",
        "List": "Done",
        "Report": "Done",
    }, {task: job["error"] for task, job in jobs.items()}

    listing = jobs["List"]["outputs"]
    assert listing["count"] == 6
    assert listing["names"] == [
        "/Scans/top.txt",
        "/Scans/S2/d.Aim",
        "/Scans/s1/A.AIM",
        "/Scans/s1/b.aim",
        "/Scans/s1/Sub/deep/C.ISQ",
        "/Scans/s1/Sub/deep/notes.txt",
    ]
    assert listing["folders"] == 6  # /Scans/, S2, empty, s1, s1/Sub, s1/Sub/deep
    assert listing["first_aim"] == "third aim"  # /Scans/S2/d.Aim comes first

    report = jobs["Report"]["outputs"]
    serial = jobs["Report"]["serial"]
    assert report == {"report": f"/Results/{serial}/report.tsv", "bytes": 3}
    lines = (results / str(serial) / "report.tsv").read_text().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["top.txt", "3"]]

    up.cli("userdata", "unmap", "/Results/")
    assert "/Results/" not in up.cli("userdata", "list").stdout
    again = up.cli("userdata", "map", "/Scans/2026/", str(results), check=False)
    assert again.returncode == 1 and "cannot nest" in again.stderr
