"""Acceptance: the built-in ``Lucid.Util.RelativeUserDataImage`` on a real ``runyard up``
(SQLite and PostgreSQL) and its worker, over a User Data tree of small Scanco files (ISQ with
a version suffix, AIM v020 and v030 with versions ;1 and ;2, a lower-case copy in another
folder) and an OMNI file: each template finds its image, with the size read from its header;
the image found feeds ``Runyard.Image.Statistics``; and every refusal fails its job with a
message that names the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from runyard.examples.phantoms import CALIBRATIONS, phantom_pixels
from runyard.images import Image
from runyard.images.scanco_writer import write_aim, write_isq
from tests.acceptance.conftest import Installation

SIZE = (10, 8, 6)
SCAN = "/Scans/2026/P01/C0001.ISQ;1"
# The files below the roots' folders, and their sizes.
FILES = {
    "scans/2026/P01/C0001.ISQ;1": SIZE,
    "scans/2026/P01/C0001_SEG.AIM;1": (4, 4, 4),  # an older segmentation
    "scans/2026/P01/C0001_SEG.AIM;2": SIZE,
    "scans/2026/Segmentations/P01/c0001_seg.aim": SIZE,
    "scans/2026/P01/C0001_MASK.omni": SIZE,
    "results/P01/C0001_TH.AIM": SIZE,
}
# Task name -> (template, the virtual path found); every one follows the task "Scan".
FOUND = {
    "Seg": ("{folder}{stem}_SEG.AIM", "/Scans/2026/P01/C0001_SEG.AIM;2"),
    "Seg1": ("{stem}_seg.aim{version}", "/Scans/2026/P01/C0001_SEG.AIM;1"),
    "Segmentations": (
        "{folder}../segmentations/{parent}/{stem}_SEG.AIM",
        "/Scans/2026/Segmentations/P01/c0001_seg.aim",
    ),
    "Mask": ("{stem}_MASK.omni", "/Scans/2026/P01/C0001_MASK.omni"),
    "Results": ("/Results/{parent}/{stem}_TH.AIM", "/Results/P01/C0001_TH.AIM"),
}
# Task name -> (template, what the failed job's message says).
REFUSED = {
    "Unknown": (
        "{folder}{sample}_SEG.AIM",
        "unknown placeholder {sample}; use {folder}, {name}, {stem}",
    ),
    "Escape": (
        "{folder}../../../Results/P01/C0001_TH.AIM",
        "leaves the mapped User Data root of /Scans/2026/P01/C0001.ISQ;1",
    ),
    "Missing": ("{folder}{stem}_GOBJ.AIM", "not found: /Scans/2026/P01/C0001_GOBJ.AIM"),
    "Text": ("{stem}_NOTES.TXT", "/Scans/2026/P01/C0001_NOTES.TXT is not an OMNI, AIM or ISQ"),
}


def make_files(root: Path) -> int:
    """The tree of FILES (and a text file); the bone voxels of the scan."""
    raw, bone = phantom_pixels(1, SIZE)
    scan = Image.from_array(raw, spacing=(0.02,) * 3, calibrations=CALIBRATIONS)
    mask = Image.from_array(
        np.asfortranarray(np.where(bone, 127, 0).astype(np.int8)), spacing=(0.02,) * 3
    )
    for relative, size in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.endswith(".ISQ;1"):
            write_isq(path, scan)
        elif relative.endswith(".omni"):
            mask.save(path)
        elif size != SIZE:
            small = np.zeros(size, dtype=np.int8, order="F")
            write_aim(path, Image.from_array(small, spacing=(0.02,) * 3), version=20)
        else:
            write_aim(path, mask, version=30 if ";" in relative else 20)
    (root / "scans/2026/P01/C0001_NOTES.TXT").write_text("not an image\n")
    return int(bone.sum())


def relative_task(name: str, template: str, source: dict[str, Any]) -> dict[str, Any]:
    none = {"mode": "none"}
    inputs = {"input_image": none, "input_file": none} | source
    inputs["template"] = {"mode": "fixed", "fixed_value": template}
    return {
        "name": name,
        "task_type": {"name": "Lucid.Util.RelativeUserDataImage"},
        "inputs": [{"key": key, "source": value} for key, value in inputs.items()],
    }


def workflow_package(folder: Path) -> Path:
    """The workflow "Relative": the sources Scan (an image) and File (a file), the relative
    tasks of FOUND and REFUSED after Scan, FromFile after File, and Statistics of the scan
    with the segmentation Seg found."""
    scan = {"input_image": {"mode": "output", "task": 0, "key": "image"}}
    tasks = [
        {"name": "Scan", "task_type": {"name": "XF.Data.SelectImage"}, "inputs": []},
        {"name": "File", "task_type": {"name": "XF.Data.SelectForeignFile"}, "inputs": []},
        *(relative_task(name, t, scan) for name, (t, _) in (FOUND | REFUSED).items()),
        relative_task(
            "FromFile",
            "{folder}../Segmentations/{parent}/{stem}_SEG.AIM",
            {"input_file": {"mode": "output", "task": 1, "key": "foreign_file"}},
        ),
    ]
    seg = [t["name"] for t in tasks].index("Seg")
    tasks.append({
        "name": "Statistics",
        "task_type": {"name": "Runyard.Image.Statistics"},
        "inputs": [
            {"key": "image", "source": {"mode": "output", "task": 0, "key": "image"}},
            {"key": "segmentation", "source": {"mode": "output", "task": seg, "key": "image"}},
        ],
    })  # fmt: skip
    package = folder / "Relative"
    package.mkdir(parents=True)
    metadata = {"package_format": "XFP-WF1.0", "name": "Relative", "version": "1.0.0.0",
                "display_name": "Relative", "summary": "Images relative to a scan",
                "dependencies": []}  # fmt: skip
    (package / "metadata.json").write_text(json.dumps(metadata))
    (package / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    return package


def image_value(path: str, size: tuple[int, ...]) -> dict[str, Any]:
    name = path.rsplit("/", 1)[1]
    return {"type": "Image", "source": "userdata", "virtualpath": path, "filename": name,
            "size": list(size)}  # fmt: skip


def size_of(path: str) -> tuple[int, ...]:
    root, relative = path.removeprefix("/").split("/", 1)
    return FILES[f"{root.lower()}/{relative}"]


def test_templates_find_images_relative_to_the_input_and_refusals_fail_the_job(
    up: Installation, tmp_path: Path
) -> None:
    bone = make_files(tmp_path)
    up.cli("userdata", "map", "/Scans/", str(tmp_path / "scans"))
    up.cli("userdata", "map", "/Results/", str(tmp_path / "results"))
    up.cli("import", str(workflow_package(tmp_path / "wf")))
    up.cli("workflow", "start", "Relative")
    scan = image_value(SCAN, SIZE)
    file = {k: v for k, v in scan.items() if k != "size"} | {"type": "ForeignFile"}
    up.cli("run", "new", "Relative", "Scan", "--outputs", json.dumps({"image": scan}),
           "--name", "P01")  # fmt: skip
    up.cli("run", "new", "Relative", "File", "--outputs", json.dumps({"foreign_file": file}),
           "--name", "P01 file")  # fmt: skip
    runs = {r["name"]: r["jobs"] for r in up.status("Relative", "--wait")["runs"]}

    jobs = runs["P01"]
    for task, (_, path) in FOUND.items():
        job = jobs[task]
        assert job["state"] == "Done", up.cli("job", "log", str(job["serial"])).stdout
        assert job["outputs"] == {"image": image_value(path, size_of(path))}, task
    for task, (_, message) in REFUSED.items():
        job = up.job(jobs[task]["serial"])
        assert job["state"] == "Failed", (task, job)
        assert message in job["error"], (task, job["error"])

    statistics = jobs["Statistics"]
    assert statistics["state"] == "Done", up.cli("job", "log", str(statistics["serial"])).stdout
    assert statistics["outputs"]["bone_voxels"] == bone
    assert statistics["outputs"]["voxels"] == int(np.prod(SIZE))

    from_file = runs["P01 file"]["FromFile"]
    assert from_file["state"] == "Done", up.cli("job", "log", str(from_file["serial"])).stdout
    found = "/Scans/2026/Segmentations/P01/c0001_seg.aim"
    assert from_file["outputs"] == {"image": image_value(found, SIZE)}
