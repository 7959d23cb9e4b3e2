"""runyard.images reads what ITK's Scanco module (PyPI itk-ioscanco, pinned in the test extra)
writes: AIM v020, AIM v030 and ISQ, compared with what ITK itself reads back: geometry,
pixels, dates and the density calibration (mu scaling, slope and intercept, mu of water)."""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard import images

CREATED = "26-NOV-2026 10:11:12.345"
VERSIONS = {"v020.aim": "AIMDATA_V020   ", "v030.aim": "AIMDATA_V030   ", "scan.isq": None}
TOOL = Path(__file__).resolve().parents[1] / "itk_tool.py"


class _Itk:
    """The ITK process (tests/itk_tool.py), started on first use, ended with the tests."""

    process: subprocess.Popen[str] | None = None

    @classmethod
    def call(cls, request: dict[str, Any]) -> dict[str, Any]:
        if cls.process is None:
            cls.process = subprocess.Popen(
                [sys.executable, str(TOOL)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            atexit.register(cls.process.kill)
        assert cls.process.stdin is not None and cls.process.stdout is not None
        cls.process.stdin.write(json.dumps(request) + "\n")
        cls.process.stdin.flush()
        answer: dict[str, Any] = json.loads(cls.process.stdout.readline())
        if "error" in answer:
            raise AssertionError(f"ITK: {answer['error']}")
        return dict(answer["ok"])


class ItkHeader:
    """What ITK's ScancoImageIO read of a file's header, with its getters' names."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def GetDimensions(self, axis: int) -> int:
        return int(self.fields["dimensions"][axis])

    def GetSpacing(self, axis: int) -> float:
        return float(self.fields["spacing"][axis])

    def GetOrigin(self, axis: int) -> float:
        return float(self.fields["origin"][axis])

    def GetVersion(self) -> str:
        return str(self.fields["version"])

    def GetMuScaling(self) -> float:
        return float(self.fields["mu_scaling"])

    def GetMuWater(self) -> float:
        return float(self.fields["mu_water"])

    def GetRescaleUnits(self) -> str:
        return str(self.fields["rescale_units"])

    def GetRescaleSlope(self) -> float:
        return float(self.fields["rescale_slope"])

    def GetRescaleIntercept(self) -> float:
        return float(self.fields["rescale_intercept"])

    def GetRescaleType(self) -> int:
        return int(self.fields["rescale_type"])

    def GetCreationDate(self) -> str:
        return str(self.fields["creation_date"])


def itk_write(path: Path, pixels: np.ndarray, *, calibrated: bool = False) -> None:
    """Write ``pixels`` (indexed x, y, z) with ITK; the version from the name's table."""
    npy = path.with_name(path.name + ".in.npy")
    np.save(npy, pixels)
    _Itk.call({"op": "write", "path": str(path), "pixels": str(npy),
               "version": VERSIONS.get(path.name), "calibrated": calibrated,
               "created": CREATED})  # fmt: skip


def itk_read(path: Path) -> tuple[ItkHeader, np.ndarray]:
    npy = path.with_name(path.name + ".out.npy")
    fields = _Itk.call({"op": "read", "path": str(path), "pixels": str(npy)})
    return ItkHeader(fields), np.load(npy)


def ramp(dtype: str = "int16") -> np.ndarray:
    return (np.arange(7 * 6 * 5) - 40).astype(dtype).reshape((7, 6, 5), order="F")


@pytest.mark.parametrize("name", list(VERSIONS))
def test_geometry_and_pixels_match_itk(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    itk_write(path, ramp())
    io, itk_pixels = itk_read(path)
    read = images.import_from_isq if name.endswith(".isq") else images.import_from_aim
    header = read(path, load_pixels=False)
    assert header.size == (7, 6, 5) == tuple(io.GetDimensions(i) for i in range(3))
    assert header.spacing == pytest.approx([io.GetSpacing(i) for i in range(3)], rel=1e-6)
    assert header.origin == pytest.approx([io.GetOrigin(i) for i in range(3)], abs=1e-6)
    assert header.source["version"] == io.GetVersion().strip()
    image = read(path)
    assert isinstance(image.pixels, np.memmap)
    np.testing.assert_array_equal(image.pixels, itk_pixels)
    np.testing.assert_array_equal(image.pixels, ramp())


@pytest.mark.parametrize("load_pixels", [False, True])
@pytest.mark.parametrize("name", list(VERSIONS))
def test_calibrations_match_itk(tmp_path: Path, name: str, load_pixels: bool) -> None:
    """ITK 1.0.1 gives a header's density slope as written, per unit of mu (RescaleSlope),
    and reads values as Hounsfield units when there are a mu scaling and a mu of water: the
    OMNI calibrations of an import give the same numbers from the raw values."""
    path = tmp_path / name
    hounsfield = ramp() * 10
    itk_write(path, hounsfield, calibrated=True)
    io, itk_pixels = itk_read(path)
    image = images.open_image(path, load_pixels=load_pixels)
    assert image.source["mu_scaling"] == io.GetMuScaling() == 4096
    assert image.source["mu_water"] == pytest.approx(io.GetMuWater()) == pytest.approx(0.24)
    [mu] = image.pixel_calibrations_of_unit_type("linear_attenuation")
    assert (mu.unit_name, mu.slope, mu.intercept) == ("1/cm", 1 / io.GetMuScaling(), 0.0)
    [density] = image.pixel_calibrations_of_unit_type("density")
    assert density.unit_name == io.GetRescaleUnits() == "mg HA/ccm"
    assert density.raw_to_calibrated(4096) == pytest.approx(
        io.GetRescaleSlope() + io.GetRescaleIntercept()  # mu = 1/cm
    )
    assert density.slope == pytest.approx(io.GetRescaleSlope() / io.GetMuScaling())
    assert density.intercept == pytest.approx(io.GetRescaleIntercept())
    [hu] = image.pixel_calibrations_of_unit_type("hounsfield")
    assert hu.raw_to_calibrated(io.GetMuWater() * io.GetMuScaling()) == pytest.approx(0.0)
    # ITK writes no default unit type (0): the density calibration is the default then.
    assert io.GetRescaleType() == 0 and image.default_pixel_calibration_unit_type == "density"
    if load_pixels:
        computed = hu.raw_to_calibrated(image.pixels.astype(np.float64))
        np.testing.assert_allclose(computed, itk_pixels, atol=1.5)  # ITK truncates to integers
        np.testing.assert_allclose(computed, hounsfield, atol=1.5)


def test_aim_dates_match_itk(tmp_path: Path) -> None:
    path = tmp_path / "v030.aim"
    itk_write(path, ramp())
    io, _ = itk_read(path)
    assert io.GetCreationDate() == CREATED
    assert images.import_from_aim(path, load_pixels=False).source["created"] == (
        "2026-11-26T10:11:12.345"
    )


@pytest.mark.parametrize("dtype", ["int16", "float32"])  # all that ITK's writer writes
def test_aim_data_types_written_by_itk(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "v030.aim"
    itk_write(path, ramp(dtype))
    image = images.import_from_aim(path)
    assert image.metadata.data_type == dtype
    np.testing.assert_array_equal(image.pixels, itk_read(path)[1])


def test_itk_written_aim_converts_to_omni(tmp_path: Path) -> None:
    itk_write(tmp_path / "v020.aim", ramp())
    scan = images.import_from_aim(tmp_path / "v020.aim")
    scan.save(tmp_path / "scan.omni")
    back = images.Image.load(tmp_path / "scan.omni")
    assert back.spacing == scan.spacing and back.source["version"] == "AIMDATA_V020"
    np.testing.assert_array_equal(back.pixels, ramp())
