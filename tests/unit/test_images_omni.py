"""OMNI images: saving and loading (.omni JSON beside .raw pixels), derived images,
calibrations (direct and indirect, by unit type), files of format 1, and clear errors for
broken files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runyard import images
from runyard.compat import omni
from runyard.images import Calibration, Image, ImageError, ImageMetadata

MU = Calibration(unit_type="linear_attenuation", unit_name="1/cm", slope=1 / 4096)
DENSITY = Calibration(unit_type="density", unit_name="mg HA/ccm", slope=0.25, intercept=-100.0)


def sample() -> Image:
    pixels = np.arange(4 * 3 * 2, dtype=np.int16).reshape((4, 3, 2), order="F") - 5
    return Image.from_array(
        pixels,
        spacing=(0.01, 0.02, 0.03),
        origin=(1.0, -2.0, 0.5),
        calibrations=[MU, DENSITY],
        default_pixel_calibration_unit_type="density",
    )


def test_round_trip_keeps_metadata_and_pixels(tmp_path: Path) -> None:
    image = sample()
    assert image.metadata_path is None and image.raw_path is None
    saved = image.save(tmp_path / "scan.omni")
    assert saved == image.metadata_path == tmp_path / "scan.omni"
    assert image.raw_path == tmp_path / "scan.raw"
    loaded = Image.load(saved)
    assert loaded.metadata == image.metadata
    assert loaded.size == (4, 3, 2) and loaded.metadata_path == saved
    assert isinstance(loaded.pixels, np.memmap) and not loaded.pixels.flags.writeable
    np.testing.assert_array_equal(loaded.pixels, image.pixels)
    assert (tmp_path / "scan.raw").read_bytes() == image.pixels.astype("<i2").tobytes(order="F")


def test_the_omni_file_is_the_documented_json(tmp_path: Path) -> None:
    sample().save(tmp_path / "scan.omni")
    mu = {"unit_type": "linear_attenuation", "unit_name": "1/cm", "slope": 1 / 4096}
    density = {"unit_type": "density", "unit_name": "mg HA/ccm", "slope": 0.25}
    direct = {"type": "slope_intercept", "indirect_base_unit_type": None}
    assert json.loads((tmp_path / "scan.omni").read_text()) == {
        "format": "OMNI",
        "format_version": 2,
        "kind": "image",
        "axes": "XYZ",
        "size": [4, 3, 2],
        "data_type": "int16",
        "byte_order": "little",
        "raw_file": "scan.raw",
        "additional_pixels_filenames": [],
        "spacing": [0.01, 0.02, 0.03],
        "unit": "mm",
        "origin": [1.0, -2.0, 0.5],
        "calibrations": [
            direct | mu | {"intercept": 0.0},
            direct | density | {"intercept": -100.0},
        ],
        "default_pixel_calibration_unit_type": "density",
        "source": {},
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.omni", "scan.raw"]


@pytest.mark.parametrize("dtype", images.DATA_TYPES)
def test_every_data_type_round_trips(tmp_path: Path, dtype: str) -> None:
    pixels = (np.arange(24).reshape((2, 3, 4)) % 7).astype(dtype)
    Image.from_array(pixels).save(tmp_path / "x.omni")
    loaded = Image.load(tmp_path / "x.omni")
    assert loaded.data_type == np.dtype(dtype)
    np.testing.assert_array_equal(loaded.pixels, pixels)


def test_two_dimensional_images_and_other_axes(tmp_path: Path) -> None:
    image = Image.from_array(np.eye(3, 5, dtype=np.uint8), axes="XY", spacing=(0.1, 0.2))
    image.save(tmp_path / "slice.omni")
    loaded = Image.load(tmp_path / "slice.omni")
    assert loaded.axes == "XY" and loaded.size == (3, 5) and loaded.origin == (0.0, 0.0)
    np.testing.assert_array_equal(loaded.pixels, np.eye(3, 5))


def test_derive_image_keeps_geometry_and_takes_new_pixels(tmp_path: Path) -> None:
    image = sample()
    image.save(tmp_path / "scan.omni")
    loaded = Image.load(tmp_path / "scan.omni")
    mask = loaded.derive_image("uint8", loaded.pixels > 3)
    assert mask.size == loaded.size and mask.spacing == loaded.spacing
    assert mask.origin == loaded.origin and mask.axes == loaded.axes
    assert mask.metadata.data_type == "uint8" and mask.calibrations == ()
    assert mask.default_pixel_calibration_unit_type is None
    assert mask.metadata_path is None and int(mask.pixels.sum()) == int((image.pixels > 3).sum())
    mask.save(tmp_path / "scan_mask.omni")
    assert Image.load(tmp_path / "scan_mask.omni").pixels.dtype == np.uint8

    zeros = loaded.derive_image(np.float32, calibrations=loaded.calibrations)
    assert zeros.pixels.dtype == np.float32 and not zeros.pixels.any()
    assert zeros.calibrations == loaded.calibrations and zeros.pixels.flags.writeable
    assert zeros.default_pixel_calibration_unit_type == "density"
    same_type = images.derive_image(loaded)
    assert same_type.data_type == np.dtype("int16")
    with pytest.raises(ValueError, match=r"derived pixels have shape \(2, 2\)"):
        loaded.derive_image(pixels=np.zeros((2, 2)))


def test_derive_image_of_a_header_only_import_needs_no_pixels() -> None:
    header_only = Image(ImageMetadata(size=(3, 3, 3), data_type="int16"), None)
    assert header_only.derive_image("uint8").pixels.shape == (3, 3, 3)


def test_saving_again_over_the_loaded_file_replaces_it(tmp_path: Path) -> None:
    sample().save(tmp_path / "scan.omni")
    loaded = Image.load(tmp_path / "scan.omni")
    doubled = loaded.derive_image(pixels=loaded.pixels * 2, calibrations=loaded.calibrations)
    doubled.save(tmp_path / "scan.omni")
    np.testing.assert_array_equal(Image.load(tmp_path / "scan.omni").pixels, sample().pixels * 2)
    assert not list(tmp_path.glob(".*partial"))


def test_calibration_maps_raw_to_calibrated_and_back() -> None:
    raw = np.array([0, 400, 800], dtype=np.int16)
    calibrated = DENSITY.raw_to_calibrated(raw)
    np.testing.assert_allclose(calibrated, [-100.0, 0.0, 100.0])
    np.testing.assert_allclose(DENSITY.calibrated_to_raw(calibrated), raw)
    assert DENSITY.raw_to_calibrated(4) == DENSITY.to_calibrated(4) == -99.0
    assert DENSITY.to_raw(-99.0) == 4.0
    # A spread of raw values is a spread of calibrated values slope times as wide.
    assert DENSITY.raw_stddev_to_calibrated_stddev(8.0) == 2.0
    assert DENSITY.raw_variance_to_calibrated_variance(64.0) == 4.0
    negative = Calibration(unit_type="x", slope=-2.0)
    assert negative.raw_stddev_to_calibrated_stddev(3.0) == 6.0


def test_calibrations_are_found_by_unit_type_alias_or_unit_name() -> None:
    image = sample()
    assert image.calibration("density") is image.calibration("mg HA/ccm") is DENSITY
    assert image.calibration("mu") is image.calibration("linear_attenuation") is MU
    assert image.pixel_calibrations_of_unit_type("mu") == [MU]
    assert image.pixel_calibrations_of_unit_type("hounsfield") == []
    with pytest.raises(KeyError, match="no calibration 'HU'; this image has: linear_att"):
        image.calibration("HU")
    with pytest.raises(ValueError, match="slope must be finite and not 0"):
        Calibration(unit_type="x", slope=0)


def test_an_indirect_calibration_converts_through_its_base(tmp_path: Path) -> None:
    """density = mu * 1603.5 - 391.2 on mu = raw / 4096, as a Scanco header states it."""
    on_mu = Calibration(
        type="slope_intercept_indirect", unit_type="density", unit_name="mg HA/ccm",
        slope=1603.5, intercept=-391.2, indirect_base_unit_type="mu",
    )  # fmt: skip
    assert on_mu.indirect_base_unit_type == "linear_attenuation" and on_mu.base is None
    with pytest.raises(ValueError, match=r"is indirect \(on .*\) and has no base"):
        on_mu.raw_to_calibrated(4096)
    image = Image.from_array(np.zeros((2, 2, 2), np.int16), calibrations=[on_mu, MU])
    image.save(tmp_path / "x.omni")
    for each in (image, Image.load(tmp_path / "x.omni")):
        density = each.calibration("density")
        assert density.base == MU and density.slope == 1603.5
        assert density.raw_to_calibrated(4096) == pytest.approx(1603.5 - 391.2)
        assert density.calibrated_to_raw(1603.5 - 391.2) == pytest.approx(4096)
        assert density.raw_stddev_to_calibrated_stddev(4096) == pytest.approx(1603.5)
        assert density.direct() == pytest.approx((1603.5 / 4096, -391.2))
    with pytest.raises(ValueError, match="indirect on 'linear_attenuation', which the image has"):
        Image.from_array(np.zeros((2, 2, 2), np.int16), calibrations=[on_mu])


def test_files_of_format_1_still_load(tmp_path: Path) -> None:
    """Calibrations as Runyard wrote them before unit types: name, unit, slope, intercept."""
    sample().save(tmp_path / "scan.omni")
    data = json.loads((tmp_path / "scan.omni").read_text())
    for key in ("kind", "additional_pixels_filenames", "default_pixel_calibration_unit_type"):
        del data[key]
    data["format_version"] = 1
    data["calibrations"] = [
        {"name": "mu", "unit": "1/cm", "slope": 1 / 4096, "intercept": 0.0},
        {"name": "density", "unit": "mg HA/ccm", "slope": 0.25, "intercept": -100.0},
        {"name": "HU", "unit": "HU", "slope": 0.5, "intercept": -1000.0},
    ]
    (tmp_path / "scan.omni").write_text(json.dumps(data))
    old = Image.load(tmp_path / "scan.omni")
    assert [(c.unit_type, c.unit_name) for c in old.calibrations] == [
        ("linear_attenuation", "1/cm"), ("density", "mg HA/ccm"), ("hounsfield", "HU")
    ]  # fmt: skip
    assert old.calibrations[:2] == (MU, DENSITY) and old.kind == "image"
    assert old.default_pixel_calibration_unit_type is None
    np.testing.assert_array_equal(old.pixels, sample().pixels)
    # The same spelling works as keywords, as Runyard's code wrote it.
    assert Calibration(name="mu", unit="1/cm", slope=1 / 4096) == MU


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"axes": "XXY"}, "must not repeat"),
        ({"axes": "XYQ"}, "axes must be letters of XYZCWFT"),
        ({"kind": "mesh"}, "kind must be one of image, segments"),
        ({"size": [4, 0, 2]}, "at least 1"),
        ({"size": [4, 3]}, "size needs 3 entries"),
        ({"spacing": [0.1, -1, 0.1]}, "spacing entries must be positive"),
        ({"data_type": "complex64"}, "data type 'complex64' is not one of"),
        ({"format": "NIFTI"}, "not OMNI metadata: 'format' must be 'OMNI'"),
        ({"format_version": 3}, "'format_version' is 3; this Runyard reads versions 1 and 2"),
        ({"raw_file": "../x.raw"}, "'raw_file' must be a plain file name"),
        ({"byte_order": "big"}, "'byte_order' must be 'little'"),
        ({"calibrations": [{"name": "mu", "unit": "1/cm"}]}, "'slope' must be a number"),
        ({"calibrations": [{"unit_type": "mu", "slope": 1, "type": "lut"}]}, "type 'lut' is not"),
        ({"calibrations": [{"slope": 1}]}, "a calibration needs a unit_type"),
        ({"additional_pixels_filenames": ["../x"]}, "must be plain file names"),
        ({"size": [4, 3, 2.5]}, "'size' must be a list of whole numbers"),
    ],
)
def test_invalid_metadata_is_refused_naming_the_problem(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    sample().save(tmp_path / "scan.omni")
    data = json.loads((tmp_path / "scan.omni").read_text()) | change
    (tmp_path / "scan.omni").write_text(json.dumps(data))
    with pytest.raises(ImageError, match=message) as error:
        Image.load(tmp_path / "scan.omni")
    assert str(error.value).startswith(str(tmp_path / "scan.omni"))


def test_broken_files_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "scan.omni"
    with pytest.raises(ImageError, match=r"scan.omni: no such file"):
        Image.load(path)
    path.write_text("{not json")
    with pytest.raises(ImageError, match="not OMNI metadata: not valid JSON"):
        Image.load(path)
    sample().save(path)
    raw = tmp_path / "scan.raw"
    raw.write_bytes(raw.read_bytes()[:-1])
    with pytest.raises(ImageError, match=r"scan.raw: truncated: the metadata says 4x3x2 int16"):
        Image.load(path)
    raw.write_bytes(bytes(49))
    with pytest.raises(ImageError, match="too long"):
        Image.load(path)
    raw.unlink()
    metadata_only = Image.load(path)  # what a search needs: the size, from the .omni alone
    assert metadata_only.size == (4, 3, 2) and not metadata_only.has_pixels
    with pytest.raises(ImageError, match=r"scan\.omni: its pixel file scan\.raw is missing"):
        metadata_only.pixels
    with pytest.raises(ImageError, match=r"x.raw: an OMNI image is saved to a name ending"):
        sample().save(tmp_path / "x.raw")


def test_compat_omni_is_runyard_images() -> None:
    assert omni.Image is Image and omni.import_from_aim is images.import_from_aim
    assert omni.import_from_isq is images.import_from_isq and omni.ImageError is ImageError
