"""runyard.images.scanco_writer: AIM (v020, v030) and ISQ files that Runyard's readers and
ITK's Scanco module (itk-ioscanco, pinned in the test extra) read back as written: size,
spacing, origin, pixels, calibrations and header fields."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from runyard import images
from runyard.examples.phantoms import CALIBRATIONS
from runyard.images import Calibration, Image
from runyard.images.scanco_writer import scanco_calibration, write_aim, write_isq
from tests.unit.test_images_itk import itk_read  # ITK runs in a process of its own

CREATED = datetime(2026, 1, 15, 9, 30, 5, 250000)


def ramp(dtype: str = "int16", size: tuple[int, int, int] = (7, 6, 5)) -> np.ndarray:
    return (np.arange(np.prod(size)) - 40).astype(dtype).reshape(size, order="F")


def calibrated(pixels: np.ndarray, spacing: float = 0.02) -> Image:
    return Image.from_array(
        pixels, spacing=(spacing, spacing, 2 * spacing), origin=(0.2, 0.4, 0.8),
        calibrations=CALIBRATIONS, default_pixel_calibration_unit_type="density",
    )  # fmt: skip


@pytest.mark.parametrize("version", [20, 30])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "float32"])
def test_aim_files_read_back_as_written(tmp_path: Path, version: int, dtype: str) -> None:
    image = calibrated(ramp(dtype))
    path = write_aim(tmp_path / "S01.AIM;2", image, version=version, created=CREATED,
                     log={"Patient Name": "Phantom 1"})  # fmt: skip
    back = images.import_from_aim(path)
    assert back.size == (7, 6, 5) and back.metadata.data_type == dtype
    assert back.spacing == pytest.approx((0.02, 0.02, 0.04), rel=1e-6)
    assert back.origin == pytest.approx((0.2, 0.4, 0.8), rel=1e-6)
    assert _same(back, CALIBRATIONS)
    np.testing.assert_array_equal(back.pixels, image.pixels)
    source = back.source
    assert source["version"] == f"AIMDATA_V0{version}" and source["patient_name"] == "Phantom 1"
    assert source["created"] == source["modified"] == "2026-01-15T09:30:05.250"
    assert not list(tmp_path.glob(".*partial"))


def _same(image: Image, expected: tuple[Calibration, ...]) -> bool:
    """The calibrations are those expected (to within float rounding)."""
    for got, want in zip(image.calibrations, expected, strict=True):
        assert (got.type, got.unit_type, got.unit_name) == (
            want.type,
            want.unit_type,
            want.unit_name,
        )
        assert (got.slope, got.intercept) == pytest.approx((want.slope, want.intercept))
    assert image.default_pixel_calibration_unit_type == "density"
    return True


def test_isq_files_read_back_as_written(tmp_path: Path) -> None:
    image = calibrated(ramp("int16", (8, 6, 4)))
    path = write_isq(tmp_path / "S02.ISQ;1", image, created=CREATED, patient_name="Phantom 2")
    back = images.import_from_isq(path)
    assert back.size == (8, 6, 4) and back.metadata.data_type == "int16"
    assert back.spacing == pytest.approx((0.02, 0.02, 0.04))
    assert back.origin == (0.0, 0.0, 0.0)  # ISQ files have no origin
    assert _same(back, CALIBRATIONS)
    np.testing.assert_array_equal(back.pixels, image.pixels)
    source = back.source
    assert source["patient_name"] == "Phantom 2" and source["created"] == "2026-01-15T09:30:05.250"
    assert source["physical_size_um"] == [160, 120, 160]
    assert source["data_range"] == [-40, 151] and source["mu_scaling"] == 8192


def test_an_image_without_calibrations_is_written_with_mu_scaling_one(tmp_path: Path) -> None:
    mask = Image.from_array(np.where(ramp() > 0, 127, 0).astype(np.int8))
    assert scanco_calibration(mask).mu_scaling == 1.0
    back = images.import_from_aim(write_aim(tmp_path / "S_SEG.AIM", mask))
    assert [c.unit_type for c in back.calibrations] == ["linear_attenuation"]
    assert back.default_pixel_calibration_unit_type is None  # no density, no default
    np.testing.assert_array_equal(back.pixels, mask.pixels)


@pytest.mark.parametrize(
    ("write", "image", "message"),
    [
        (write_isq, Image.from_array(ramp("uint16")), "ISQ files hold int16 pixels"),
        (write_aim, Image.from_array(ramp("float64")), "AIM files hold int8, uint8"),
        (write_aim, Image.from_array(np.zeros((2, 2), np.int16), axes="XY"), "axes XYZ"),
        (write_aim, Image.from_array(ramp(), unit="um"), "measure in mm"),
    ],
)
def test_what_scanco_files_cannot_hold_is_refused(
    tmp_path: Path, write: object, image: Image, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write(tmp_path / "x.aim", image)  # type: ignore[operator]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "version"), [("v020.aim", 20), ("v030.aim", 30),
                                                ("scan.isq", None)])  # fmt: skip
def test_itk_reads_what_runyard_writes(tmp_path: Path, name: str, version: int | None) -> None:
    # A mu calibration alone: ITK converts values to Hounsfield units when a file has a mu
    # of water, so without one it gives the raw values.
    mu = Calibration(unit_type="linear_attenuation", unit_name="1/cm", slope=1 / 4096)
    image = Image.from_array(ramp("int16"), spacing=(0.5, 0.25, 0.125), calibrations=[mu])
    path = tmp_path / name
    if version is None:
        write_isq(path, image)
    else:
        write_aim(path, image, version=version)
    io, pixels = itk_read(path)
    assert tuple(io.GetDimensions(i) for i in range(3)) == (7, 6, 5)
    assert [io.GetSpacing(i) for i in range(3)] == pytest.approx([0.5, 0.25, 0.125], rel=1e-6)
    assert io.GetMuScaling() == 4096
    np.testing.assert_array_equal(pixels, image.pixels)


@pytest.mark.parametrize(("name", "version"), [("v020.aim", 20), ("v030.aim", 30),
                                                ("scan.isq", None)])  # fmt: skip
def test_itk_reads_the_density_calibration_runyard_writes(
    tmp_path: Path, name: str, version: int | None
) -> None:
    image = calibrated(ramp("int16"))
    path = tmp_path / name
    if version is None:
        write_isq(path, image)
    else:
        write_aim(path, image, version=version, created=CREATED)
    io, _ = itk_read(path)
    assert io.GetMuScaling() == 8192 and io.GetRescaleUnits() == "mg HA/ccm"
    assert io.GetRescaleSlope() == pytest.approx(1603.5)  # per unit of mu, as Scanco writes
    assert io.GetRescaleIntercept() == pytest.approx(-391.2)
    assert io.GetMuWater() == pytest.approx(0.2409)
    assert io.GetRescaleType() == 2  # Scanco's code for density, the default unit type
