"""Images as XamFlow scripts use them: an ``Image`` input from User Data that is a Scanco AIM
(v020, v030) or ISQ file arrives through ``worker.get_omni_image(param)`` as an OMNI image whose
``metadata_path`` is a real ``.omni`` path; scripts derive segments and images
(``create_related_path(img.metadata_path, "_seg.omni")``, ``derive_segments``,
``derive_image(..., override_metadata={...})``), use the calibrations of the scan
(``default_pixel_calibration_unit_type``, ``pixel_calibrations_of_unit_type``,
``omni.Calibration``) and upload the results (``upload_omni_output``), which the next task reads
back. Threshold and min/max scripts in the style of ``Lucid.Core.Threshold`` and
``Lucid.CLIP.StatMinMax``; a ``Contours`` output of ``create_output_contours``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard.examples.phantoms import phantom_image, phantom_pixels
from runyard.images.scanco_writer import write_aim, write_isq
from tests.compat.conftest import SOURCE, Lab

# The scans in User Data /Scans/: file name -> (format, size, phantom seed).
SCANS: dict[str, tuple[str, tuple[int, int, int], int]] = {
    "S1.AIM": ("AIM v020", (10, 8, 6), 1),
    "S2.AIM": ("AIM v030", (9, 7, 5), 2),
    "S3.ISQ;1": ("ISQ", (8, 6, 4), 3),
}
FEATURES = ("Threshold", "StatMinMax", "Calibrate", "Contours")
LOWER, UPPER = 450.0, 100000.0  # the Threshold task's fixed thresholds
# The calibrations of the phantoms' Scanco headers (mu scaling 8192, density slope 1603.5 and
# intercept -391.2 in mg HA/ccm, mu of water 0.2409): unit name -> (slope, intercept).
MU_SCALING, MU_WATER = 8192.0, 0.2409
UNITS = {
    "1/cm": (1 / MU_SCALING, 0.0),
    "mg HA/ccm": (1603.5 / MU_SCALING, -391.2),
    "HU": (1000 / (MU_WATER * MU_SCALING), -1000.0),
}


def write_scans(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (kind, size, seed) in SCANS.items():
        image, _ = phantom_image(seed, size)
        if kind == "ISQ":
            write_isq(folder / name, image)
        else:
            write_aim(folder / name, image, version=20 if kind == "AIM v020" else 30)


def run_name(file_name: str) -> str:
    return file_name.split(".")[0]


def raw_pixels(scan: str) -> np.ndarray[Any, Any]:
    """The pixels written into ``scan``, as float64."""
    _, size, seed = SCANS[scan]
    return phantom_pixels(seed, size)[0].astype(np.float64)


def calibrated(scan: str, unit: str | None) -> np.ndarray[Any, Any]:
    """``scan``'s pixels in ``unit`` (one of UNITS; raw values for no unit)."""
    if not unit:
        return raw_pixels(scan)
    assert unit in UNITS, f"{unit!r} is none of the Scanco calibrations {list(UNITS)}"
    slope, intercept = UNITS[unit]
    return raw_pixels(scan) * slope + intercept


@pytest.fixture(scope="module")
def scans(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scans written and mapped at /Scans/; a workflow per feature, a run per scan."""
    folder = tmp_path_factory.mktemp("userdata") / "scans"
    write_scans(folder)
    lab.installation.cli("userdata", "map", "/Scans/", str(folder))
    for feature in FEATURES:
        with lab.feature(feature):
            packages = [f"Compat.{feature}", f"Workflow.{feature}"]
            if feature in ("Threshold", "Calibrate"):
                packages.insert(0, "Compat.StatMinMax")
            for name in packages:
                lab.import_package(name)
            lab.start_workflow(f"Compat {feature}")
            for name, (_, size, _) in SCANS.items():
                image = {"type": "Image", "source": "userdata", "virtualpath": f"/Scans/{name}",
                         "filename": name, "size": list(size)}  # fmt: skip
                lab.new_run(f"Compat {feature}", "Select", run_name(name), {"image": image})
    with lab.feature("Calibration"):
        for name in (SOURCE, "Compat.Calibration", "Workflow.Calibration"):
            lab.import_package(name)
        lab.start_workflow("Compat Calibration")
        lab.new_run("Compat Calibration", "Source", "one", {"value": 1})
    lab.wait()
    return folder


def jobs_of(lab: Lab, feature: str) -> dict[str, dict[str, Any]]:
    lab.check(feature)
    runs = lab.runs(f"Compat {feature}")
    assert sorted(runs) == sorted(run_name(n) for n in SCANS)
    return runs


@pytest.mark.parametrize("scan", list(SCANS))
def test_stat_min_max_of_a_scanco_image_from_user_data(lab: Lab, scans: Path, scan: str) -> None:
    job = jobs_of(lab, "StatMinMax")[run_name(scan)].get("MinMax")
    outputs = lab.done(job, f"MinMax of {scan}")
    pixels = raw_pixels(scan)
    assert (outputs["min"], outputs["max"]) == (float(pixels.min()), float(pixels.max()))


@pytest.mark.parametrize("scan", list(SCANS))
def test_get_omni_image_gives_a_real_omni_metadata_path_and_its_related_paths(
    lab: Lab, scans: Path, scan: str
) -> None:
    job = jobs_of(lab, "Threshold")[run_name(scan)].get("Threshold")
    checks = json.loads(lab.done(job, f"Threshold of {scan}")["checks"])
    assert checks["metadata_path suffix"] == ".omni" and checks["metadata_path is a file"]
    stem = run_name(scan)
    assert checks["related"].startswith(stem) and checks["related"].endswith("_seg.omni")
    assert (checks["axes"], checks["size"]) == ("XYZ", list(SCANS[scan][1]))


@pytest.mark.parametrize("scan", list(SCANS))
def test_threshold_in_the_default_calibration_derives_and_uploads_segments(
    lab: Lab, scans: Path, scan: str
) -> None:
    """``threshold_lower0``/``threshold_upper0`` are in the unit of the image's default
    calibration; the segments (label 1) are uploaded and the next task reads them back."""
    jobs = jobs_of(lab, "Threshold")[run_name(scan)]
    outputs = lab.done(jobs.get("Threshold"), f"Threshold of {scan}")
    assert outputs["segments"]["type"] == "Image", outputs["segments"]
    values = calibrated(scan, outputs["unit"])
    expected = int(((values >= LOWER) & (values <= UPPER)).sum())
    assert outputs["voxels"] == expected, outputs["unit"]
    checks = json.loads(outputs["checks"])
    assert checks["segments saved, voxels of label 1"] == expected, "saved by segments.save()"
    assert checks["segments saved, size"] == list(SCANS[scan][1])
    segments = lab.done(jobs.get("SegmentsMinMax"), f"min/max of the segments of {scan}")
    everywhere = expected == values.size
    assert segments == {"min": 1.0 if everywhere else 0.0, "max": 1.0 if expected else 0.0}


def test_the_default_calibration_of_a_scanco_scan_is_its_density(lab: Lab, scans: Path) -> None:
    """A Scanco file's density calibration arrives as a calibration of the imported image,
    and is the default one (our reading: a bone threshold is given in mg HA/ccm)."""
    for scan in SCANS:
        facts = image_calibration(lab, scan)
        assert facts.get("unit_name") == "mg HA/ccm", facts


def image_calibration(lab: Lab, scan: str) -> dict[str, Any]:
    """What the Calibrate script found of ``scan``'s default calibration."""
    job = jobs_of(lab, "Calibrate")[run_name(scan)].get("Calibrate")
    facts: dict[str, Any] = json.loads(lab.done(job, f"Calibrate {scan}")["image_calibration"])
    return facts


@pytest.mark.parametrize("scan", list(SCANS))
def test_the_calibrations_of_a_scanco_image_convert_raw_values(
    lab: Lab, scans: Path, scan: str
) -> None:
    facts = image_calibration(lab, scan)
    assert isinstance(facts["default_unit_type"], str) and facts["default_unit_type"], facts
    assert facts["calibrations"] >= 1, f"pixel_calibrations_of_unit_type(default): {facts}"
    assert facts["unit_name"] in UNITS, facts
    slope, intercept = UNITS[facts["unit_name"]]
    assert facts["slope"] == pytest.approx(slope, rel=1e-6)
    assert facts["intercept"] == pytest.approx(intercept, rel=1e-6, abs=1e-9)
    assert facts["raw 1000"] == pytest.approx(1000.0 * slope + intercept, rel=1e-6)
    assert facts["back to raw"] == pytest.approx(1000.0)


def test_omni_calibration_answers_as_documented(lab: Lab, scans: Path) -> None:
    lab.check("Calibration")
    job = lab.runs("Compat Calibration")["one"].get("Calibration")
    checks = json.loads(lab.done(job, "Calibration")["checks"])
    assert checks == {
        "type": "slope_intercept",
        "unit_type": "compat",
        "unit_name": "compat units",
        "slope": 2.0,
        "intercept": -10.0,
        "indirect_base_unit_type": None,
        "raw_to_calibrated(5)": 0.0,
        "calibrated_to_raw(0)": 5.0,
        "raw_to_calibrated([1, 2])": [-8.0, -6.0],
        "raw_stddev_to_calibrated_stddev(3)": 6.0,
        "raw_variance_to_calibrated_variance(3)": 12.0,
    }


@pytest.mark.parametrize("scan", list(SCANS))
def test_derive_image_with_override_metadata_uploads_a_float_image(
    lab: Lab, scans: Path, scan: str
) -> None:
    jobs = jobs_of(lab, "Calibrate")[run_name(scan)]
    outputs = lab.done(jobs.get("Calibrate"), f"Calibrate {scan}")
    assert outputs["calibrated"]["type"] == "Image", outputs["calibrated"]
    unit = json.loads(outputs["image_calibration"]).get("unit_name")  # None: no calibration
    values = calibrated(scan, unit)
    minmax = lab.done(jobs.get("CalibratedMinMax"), f"min/max of the calibrated {scan}")
    assert minmax["min"] == pytest.approx(float(values.min()), rel=1e-5)
    assert minmax["max"] == pytest.approx(float(values.max()), rel=1e-5)


def test_create_output_contours_of_a_file_and_its_image(lab: Lab, scans: Path) -> None:
    for scan in SCANS:
        job = jobs_of(lab, "Contours")[run_name(scan)].get("Contours")
        contours = lab.done(job, f"Contours of {scan}")["contours"]
        assert contours["type"] == "Contours", contours
        content = json.loads(lab.file(contours))
        assert len(content["slices"]) == SCANS[scan][1][2]
