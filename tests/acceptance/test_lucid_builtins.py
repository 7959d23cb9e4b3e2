"""Acceptance: the built-in ``Lucid.Core.Threshold`` and ``Lucid.CLIP.StatMinMax`` on a real
``runyard up`` (SQLite and PostgreSQL) and its worker, over a User Data AIM v020 and ISQ
phantom: the workflow SelectImage -> Threshold -> StatMinMax gives the segments and the
minimum and maximum that numpy computes from the same files, in the image's default
calibration (density) and in Hounsfield units; and a calibration the image has not got fails
its job with a message naming the ones it has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from runyard.examples.phantoms import phantom_image
from runyard.images import open_image
from runyard.images.scanco_writer import write_aim, write_isq
from tests.acceptance.conftest import Installation

LOWER, UPPER = 450.0, 1500.0  # mg HA/ccm
# The files below the mapped folder: name -> (seed, size).
SCANS = {"S1.AIM": (11, (20, 16, 12)), "S2.ISQ;1": (12, (16, 18, 10))}
NONE = {"mode": "none"}


def output(task: int, key: str) -> dict[str, Any]:
    return {"mode": "output", "task": task, "key": key}


def fixed(value: Any) -> dict[str, Any]:
    return {"mode": "fixed", "fixed_value": value}


def task(name: str, task_type: str, **inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "task_type": {"name": task_type},
        "inputs": [{"key": key, "source": source} for key, source in inputs.items()],
    }


def workflow_package(folder: Path) -> Path:
    """The workflow "Lucid": Scan (a User Data image), Threshold in the image's default
    calibration, StatMinMax of the scan within the segments (default calibration and HU), of
    the segments themselves, and with a calibration no scan has."""
    scan, segments = output(0, "image"), output(1, "segments")
    tasks = [
        task("Scan", "XF.Data.SelectImage"),
        task("Threshold", "Lucid.Core.Threshold", image=scan, threshold_lower0=fixed(LOWER),
             threshold_upper0=fixed(UPPER), calibration=NONE),
        task("MinMax", "Lucid.CLIP.StatMinMax", image=scan, segments=segments,
             calibration=NONE),
        task("MinMaxHU", "Lucid.CLIP.StatMinMax", image=scan, segments=segments,
             calibration=fixed("HU")),
        task("SegmentsMinMax", "Lucid.CLIP.StatMinMax", image=segments, segments=NONE,
             calibration=NONE),
        task("Grey", "Lucid.CLIP.StatMinMax", image=scan, segments=NONE,
             calibration=fixed("grey_value")),
    ]  # fmt: skip
    package = folder / "Lucid"
    package.mkdir(parents=True)
    metadata = {"package_format": "XFP-WF1.0", "name": "Lucid", "version": "1.0.0.0",
                "display_name": "Lucid", "summary": "Threshold, then min and max",
                "dependencies": []}  # fmt: skip
    (package / "metadata.json").write_text(json.dumps(metadata))
    (package / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    return package


def make_scans(root: Path) -> None:
    root.mkdir(parents=True)
    for name, (seed, size) in SCANS.items():
        image, _ = phantom_image(seed, size)
        if name.endswith(".AIM"):
            write_aim(root / name, image, version=20)
        else:
            write_isq(root / name, image)


def expected(path: Path) -> dict[str, Any]:
    """What numpy computes from the file: the segments, and min and max within them in
    density and in HU."""
    image = open_image(path)
    assert image.default_pixel_calibration_unit_type == "density"
    raw = np.asarray(image.pixels, dtype=np.float64)
    density = image.calibration("density").to_calibrated(raw)
    hu = image.calibration("HU").to_calibrated(raw)
    inside = (density >= LOWER) & (density <= UPPER)
    assert 0 < inside.sum() < inside.size
    return {
        "segments": inside.astype(np.uint8),
        "density": (density[inside].min(), density[inside].max()),
        "HU": (hu[inside].min(), hu[inside].max()),
    }


def download(up: Installation, file_id: str) -> bytes:
    response = httpx.get(
        f"{up.url}/api/files/{file_id}",
        headers={"Authorization": f"Bearer {up.admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.content


def test_threshold_then_min_max_match_numpy_on_user_data_scans(
    up: Installation, tmp_path: Path
) -> None:
    make_scans(tmp_path / "scans")
    up.cli("userdata", "map", "/Scans/", str(tmp_path / "scans"))
    up.cli("import", str(workflow_package(tmp_path / "wf")))
    up.cli("workflow", "start", "Lucid")
    for name, (_, size) in SCANS.items():
        value = {"type": "Image", "source": "userdata", "virtualpath": f"/Scans/{name}",
                 "filename": name, "size": list(size)}  # fmt: skip
        up.cli("run", "new", "Lucid", "Scan", "--outputs", json.dumps({"image": value}),
               "--name", name)  # fmt: skip
    runs = {r["name"]: r["jobs"] for r in up.status("Lucid", "--wait")["runs"]}
    assert set(runs) == set(SCANS)

    for name, (_, size) in SCANS.items():
        jobs, truth = runs[name], expected(tmp_path / "scans" / name)
        for key in ("Threshold", "MinMax", "MinMaxHU", "SegmentsMinMax"):
            job = jobs[key]
            assert job["state"] == "Done", up.cli("job", "log", str(job["serial"])).stdout

        segments = jobs["Threshold"]["outputs"]["segments"]
        assert segments["type"] == "Image" and segments["size"] == list(size)
        assert segments["data_type"] == "uint8"
        assert segments["filename"] == f"{name.split('.')[0]}_seg.omni"  # S1.AIM: S1_seg.omni
        metadata = json.loads(download(up, segments["file_id"]))
        assert metadata["kind"] == "segments" and metadata["calibrations"] == []
        pixels = np.frombuffer(download(up, segments["raw_file_id"]), dtype=np.uint8)
        np.testing.assert_array_equal(pixels.reshape(size, order="F"), truth["segments"])

        low, high = truth["density"]
        assert jobs["MinMax"]["outputs"] == {
            "min": pytest.approx(low, rel=1e-12), "max": pytest.approx(high, rel=1e-12),
        }  # fmt: skip
        assert LOWER <= low <= high <= UPPER
        low, high = truth["HU"]
        assert jobs["MinMaxHU"]["outputs"] == {
            "min": pytest.approx(low, rel=1e-12), "max": pytest.approx(high, rel=1e-12),
        }  # fmt: skip
        assert jobs["SegmentsMinMax"]["outputs"] == {"min": 0.0, "max": 1.0}

        grey = up.job(jobs["Grey"]["serial"])
        assert grey["state"] == "Failed", grey
        assert grey["error"] == (
            "the image has no 'grey_value' calibration (it has: linear_attenuation (mu), "
            "density, hounsfield (HU)); set the input calibration to one it has, or to 'raw' "
            "for the stored values"
        )
