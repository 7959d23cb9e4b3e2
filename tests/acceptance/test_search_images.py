"""Acceptance: the search with typename ``Image`` on a real ``runyard up`` (SQLite and
PostgreSQL), by the seed's conformance script registered unmodified and by the built-in
``Lucid.Util.SearchFolderFilesBySuffix``: a User Data tree of small AIM (v020, v030), ISQ
(with a version suffix) and OMNI files gives ``XF.Data.SelectImage`` / ``XF.Data.AddImage``
jobs whose ``image`` outputs carry each image's size read from its header; and the built-in
``Runyard.Image.Statistics`` follows a scan and its ``_SEG.AIM`` straight from User Data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard.examples.phantoms import phantom_pixels
from runyard.images import Image
from runyard.images.scanco import calibrations
from runyard.images.scanco_writer import write_aim, write_isq
from tests.acceptance.conftest import Installation
from tests.acceptance.test_search import SCRIPT, conformance_script, search, search_workflow
from tests.conftest import FIXTURES

CALIBRATIONS = calibrations(mu_scaling=8192.0, density_slope=1603.5, density_intercept=-391.2,
                            density_unit="mg HA/ccm", mu_water=0.2409)  # fmt: skip
SIZES = {
    "a/S1.AIM": (10, 8, 6),
    "a/S1_SEG.AIM": (10, 8, 6),
    "a/S2.ISQ;1": (6, 5, 4),
    "b/S3.omni": (4, 4, 2),
    "b/S4.AIM": (3, 4, 5),
    "b/S4_SEG.AIM": (3, 4, 5),
}
# mode -> (suffixes, spawned tasks (name, task type), runs: name -> the virtual paths).
EXPECTED: dict[str, tuple[str, list[tuple[str, str]], list[tuple[str, list[str]]]]] = {
    "standalone": (
        ".aim|.ISQ;1|.omni",
        [("Spawned Image", "XF.Data.SelectImage")],
        [(p.rsplit("/", 1)[1], [f"/Scans/{p}"]) for p in SIZES],
    ),
    "filename": (
        ".AIM|_SEG.AIM",
        [(".AIM", "XF.Data.SelectImage"), ("_SEG.AIM", "XF.Data.AddImage")],
        [
            ("S1", ["/Scans/a/S1.AIM", "/Scans/a/S1_SEG.AIM"]),
            ("S4", ["/Scans/b/S4.AIM", "/Scans/b/S4_SEG.AIM"]),
        ],
    ),
}


def make_images(root: Path) -> dict[str, int]:
    """The tree of SIZES (and a text file that matches nothing); the bone voxels of each
    scan that has a segmentation, by run name."""
    bones = {}
    for relative, size in SIZES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = Path(relative).name.split(".")[0].removesuffix("_SEG")  # S1 for S1_SEG.AIM
        raw, bone = phantom_pixels(int(stem[1:]), size)  # a scan and its SEG: one phantom
        if relative.endswith("_SEG.AIM"):
            mask = np.asfortranarray(np.where(bone, 127, 0).astype(np.int8))
            write_aim(path, Image.from_array(mask, spacing=(0.02,) * 3))
            continue
        scan = Image.from_array(raw, spacing=(0.02,) * 3, calibrations=CALIBRATIONS)
        if relative.endswith(".omni"):
            scan.save(path)
        elif relative.endswith(".ISQ;1"):
            write_isq(path, scan)
        else:
            write_aim(path, scan, version=20 if relative.startswith("a/") else 30)
            bones[stem] = int(bone.sum())
    (root / "notes.txt").write_text("not an image\n")
    return bones


def image_search_workflow(
    folder: Path, name: str, task_type: str, suffixes: str, mode: str
) -> Path:
    """test_search's workflow "Folder -> Search", searching for images."""
    package = search_workflow(folder, name, task_type, suffixes, mode)
    tasks = json.loads((package / "tasks.json").read_text())
    [typename] = [i for i in tasks["tasks"][1]["inputs"] if i["key"] == "typename"]
    typename["source"]["fixed_value"] = "Image"
    (package / "tasks.json").write_text(json.dumps(tasks))
    return package


def check_image_runs(
    up: Installation, workflow: str, tasks: list[tuple[str, str]], expected: list[Any]
) -> list[dict[str, Any]]:
    """The spawned tasks are of the image task types; each spawned run holds its images, as
    User Data Image values with their sizes."""
    status = search(up, workflow, "first")
    assert status["tasks"] == ["Folder", "Search", *(name for name, _ in tasks)]
    defined = up.api("GET", f"/api/workflows/{workflow}")["tasks"]
    types = {t["name"]: t["task_type"]["name"] for t in defined}
    assert [types[name] for name, _ in tasks] == [tt for _, tt in tasks]
    spawned = [r for r in status["runs"] if "Folder" not in r["jobs"]]
    assert [r["name"] for r in spawned] == [name for name, _ in expected]
    for run, (_, paths) in zip(spawned, expected, strict=True):
        for (task, _), path in zip(tasks, paths, strict=True):
            job = run["jobs"][task]
            assert job["state"] == "Done", (run["name"], task, job)
            name = path.rsplit("/", 1)[1]
            assert job["outputs"]["image"] == {
                "type": "Image", "source": "userdata", "virtualpath": path, "filename": name,
                "size": list(SIZES[path.removeprefix("/Scans/")]),
            }  # fmt: skip
    return spawned


def search_images(up: Installation, tmp_path: Path, task_type: str) -> None:
    bones = make_images(tmp_path / "scans")
    up.cli("userdata", "map", "/Scans/", str(tmp_path / "scans"))
    for mode, (suffixes, tasks, expected) in EXPECTED.items():
        workflow = f"Images-{mode}"
        package = image_search_workflow(tmp_path / "wf", workflow, task_type, suffixes, mode)
        up.cli("import", str(package))
        up.cli("workflow", "start", workflow)
        check_image_runs(up, workflow, tasks, expected)

    # The images are usable as they are: statistics of each scan with its segmentation.
    sources = [
        {"key": "image", "source": {"mode": "output", "task": ".AIM", "key": "image"}},
        {"key": "segmentation", "source": {"mode": "output", "task": "_SEG.AIM", "key": "image"}},
    ]
    up.cli("task", "add", "Images-filename", "Statistics", "--type", "Runyard.Image.Statistics",
           "--inputs", json.dumps(sources))  # fmt: skip
    status = up.status("Images-filename", "--wait")
    measured = {
        r["name"]: r["jobs"]["Statistics"] for r in status["runs"] if "Statistics" in r["jobs"]
    }
    assert set(measured) == set(bones) == {"S1", "S4"}
    for name, job in measured.items():
        assert job["state"] == "Done", up.cli("job", "log", str(job["serial"])).stdout
        outputs = job["outputs"]
        voxels = int(np.prod(SIZES[f"{'a' if name == 'S1' else 'b'}/{name}.AIM"]))
        assert (outputs["voxels"], outputs["bone_voxels"]) == (voxels, bones[name])
        assert outputs["unit"] == "mg HA/ccm" and outputs["min"] < outputs["mean"] < outputs["max"]
        assert outputs["tv"] == pytest.approx(voxels * 0.02**3, rel=1e-5)


def test_the_conformance_script_spawns_images_with_their_sizes(
    up: Installation, tmp_path: Path
) -> None:
    script = conformance_script()
    if script is None:
        pytest.skip(f"{SCRIPT} not found: set RUNYARD_CONFORMANCE_DIR to its folder")
    package = tmp_path / "conformance"
    shutil.copytree(FIXTURES / "conformance" / "SearchFolderFilesBySuffix", package)
    shutil.copyfile(script, package / "main.py")
    up.cli("import", str(package))
    search_images(up, tmp_path, "Conformance.SearchFolderFilesBySuffix")


def test_the_built_in_search_spawns_images_with_their_sizes(
    up: Installation, tmp_path: Path
) -> None:
    search_images(up, tmp_path, "Lucid.Util.SearchFolderFilesBySuffix")
