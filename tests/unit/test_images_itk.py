"""runyard.images reads what ITK's Scanco module (PyPI itk-ioscanco, pinned in the test extra)
writes: AIM v020, AIM v030 and ISQ, compared with what ITK itself reads back."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard import images


def _load_itk() -> Any:
    """``itk``, with the modules these tests use loaded. ITK's SWIG modules warn
    (DeprecationWarning) while they load, lazily, at first use; under the suite's
    warnings-are-errors that warning crashes the interpreter inside the module's
    initialisation, so they are loaded here with that warning ignored."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import itk  # pinned in the test extra: these tests never skip

        with tempfile.TemporaryDirectory() as folder:
            for name, dtype in (("a.isq", np.int16), ("b.aim", np.float32)):
                image = itk.image_from_array(np.zeros((2, 2, 2), dtype))
                image.GetMetaDataDictionary()["CreationDate"] = CREATED
                itk.MetaDataObject[itk.D].New()
                itk.imwrite(image, os.path.join(folder, name))
                itk.array_from_image(itk.imread(os.path.join(folder, name)))
                itk.ScancoImageIO.New()
    return itk


CREATED = "26-NOV-2026 10:11:12.345"
itk = _load_itk()

VERSIONS = {"v020.aim": "AIMDATA_V020   ", "v030.aim": "AIMDATA_V030   ", "scan.isq": None}


def itk_write(path: Path, pixels: np.ndarray, *, calibrated: bool = False) -> None:
    """Write ``pixels`` (indexed x, y, z) with ITK; the version from the name's table."""
    image = itk.image_from_array(np.ascontiguousarray(pixels.transpose(2, 1, 0)))
    image.SetSpacing([0.5, 0.25, 0.125])
    image.SetOrigin([1.0, 2.0, 3.0])
    fields = image.GetMetaDataDictionary()
    fields["CreationDate"] = CREATED
    fields["ModificationDate"] = CREATED
    if VERSIONS[path.name]:
        fields["Version"] = VERSIONS[path.name]
    if calibrated:
        for key, value in {"MuScaling": 4096.0, "MuWater": 0.24, "RescaleSlope": 1603.5,
                           "RescaleIntercept": -391.2}.items():  # fmt: skip
            number = itk.MetaDataObject[itk.D].New()  # a Python float would be a C float
            number.SetMetaDataObjectValue(value)
            fields.Set(key, number)
        fields["RescaleUnits"] = "mg HA/ccm"
    itk.imwrite(image, str(path))


def itk_read(path: Path) -> tuple[Any, np.ndarray]:
    io = itk.ScancoImageIO.New()
    io.SetFileName(str(path))
    io.ReadImageInformation()
    pixels = itk.array_from_image(itk.imread(str(path))).transpose(2, 1, 0)
    return io, pixels


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


@pytest.mark.parametrize("name", list(VERSIONS))
def test_calibrations_match_itk(tmp_path: Path, name: str) -> None:
    """ITK writes Hounsfield units as raw values through mu scaling and mu of water, and
    reads them back: our "HU" calibration of the raw pixels gives ITK's values."""
    path = tmp_path / name
    hounsfield = ramp() * 10
    itk_write(path, hounsfield, calibrated=True)
    io, itk_pixels = itk_read(path)
    image = images.open_image(path)
    assert image.source["mu_scaling"] == io.GetMuScaling() == 4096
    assert image.source["mu_water"] == pytest.approx(io.GetMuWater()) == pytest.approx(0.24)
    density = image.calibration("density")
    assert density.unit == io.GetRescaleUnits() == "mg HA/ccm"
    assert density.slope == pytest.approx(io.GetRescaleSlope() / io.GetMuScaling())
    assert density.intercept == pytest.approx(io.GetRescaleIntercept())
    assert image.calibration("mu").slope == 1 / 4096
    computed = image.calibration("HU").to_calibrated(image.pixels.astype(np.float64))
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
