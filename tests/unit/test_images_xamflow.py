"""XamFlow's ``omni`` module as its documentation writes it: ``omni.Image(metadata_path,
metadata)``, its properties, ``derive_image(derived_omni_path, derived_raw_path,
override_metadata={})`` and ``derive_segments``, ``save()``, ``omni.Calibration`` and its
conversions, and the threshold script of XamFlow's programming guide, unmodified."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from runyard import images
from runyard.compat import omni
from runyard.task.workdir import WorkingDirectory

PIXELS = (np.arange(6 * 5 * 4, dtype=np.int16).reshape((6, 5, 4), order="F") - 20) * 100
MU = {"type": "slope_intercept", "unit_type": "linear_attenuation", "unit_name": "1/cm",
      "slope": 1 / 8192, "intercept": 0.0}  # fmt: skip
DENSITY = {"type": "slope_intercept_indirect", "unit_type": "density",
           "unit_name": "mg HA/ccm", "slope": 1603.5, "intercept": -391.2,
           "indirect_base_unit_type": "linear_attenuation"}  # fmt: skip


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    """An OMNI scan with a mu and a density calibration (density by default)."""
    image = images.Image.from_array(
        PIXELS,
        spacing=(0.02, 0.02, 0.04),
        calibrations=[omni.Calibration(MU), omni.Calibration(DENSITY)],
        default_pixel_calibration_unit_type="density",
    )
    return image.save(tmp_path / "SCAN.omni")


def test_an_image_is_made_from_a_metadata_dict_at_its_path(scan: Path) -> None:
    metadata = json.loads(scan.read_text())
    for image in (omni.Image(scan, metadata), omni.Image(metadata_path=scan, metadata=metadata)):
        assert isinstance(image, omni.Image) and image.metadata_path == scan
        assert image.size == (6, 5, 4) and image.axes == "XYZ"
        assert isinstance(image.pixels, np.memmap) and not image.pixels.flags.writeable
        np.testing.assert_array_equal(image.pixels, PIXELS)
    # The format goes without saying, and the pixel file is named after the path by default.
    bare = {"axes": "XYZ", "size": [6, 5, 4], "data_type": "int16"}
    np.testing.assert_array_equal(omni.Image(scan, bare).pixels, PIXELS)
    elsewhere = omni.Image(scan.with_name("NEW.omni"), bare)  # no pixel file there yet
    assert elsewhere.size == (6, 5, 4) and not elsewhere.has_pixels
    with pytest.raises(omni.ImageError, match=r"NEW\.omni: its pixel file NEW\.raw is missing"):
        elsewhere.pixels
    with pytest.raises(omni.ImageError, match="invalid OMNI metadata: 'size' must be a list"):
        omni.Image(scan, {"axes": "XYZ", "data_type": "int16"})
    with pytest.raises(TypeError, match="XamFlow's \\(metadata_path: Path, metadata: dict\\)"):
        omni.Image(scan, scan)  # type: ignore[call-overload]


def test_an_image_has_xamflows_properties(scan: Path) -> None:
    image = omni.Image.load(scan)
    assert image.axes == "XYZ" and image.size == (6, 5, 4) and image.kind == "image"
    assert image.additional_pixels_filenames == []
    assert image.default_pixel_calibration_unit_type == "density"
    [density] = image.pixel_calibrations_of_unit_type("density")
    assert isinstance(density, omni.Calibration) and density.unit_name == "mg HA/ccm"
    assert image.pixel_calibrations_of_unit_type("hounsfield") == []
    assert image.pixel_calibrations_of_unit_type(None) == []  # an image without a default
    assert image.pixels_count == 120 and image.size_3d_tuple == (6, 5, 4)
    flat = images.Image.from_array(np.zeros((3, 2, 4), np.uint8), axes="CXY")
    assert flat.size_3d_tuple == (2, 4, 1) and flat.axes == "CXY"
    data = json.loads(scan.read_text()) | {"additional_pixels_filenames": ["SCAN.1.drain"]}
    listed = omni.Image(scan, data)
    assert listed.additional_pixels_filenames == ["SCAN.1.drain"]
    listed.save()
    assert omni.Image.load(scan).additional_pixels_filenames == ["SCAN.1.drain"]
    # Saved elsewhere, its pixels are all in the new .raw file.
    listed.save(scan.with_name("COPY.omni"))
    assert listed.additional_pixels_filenames == []
    assert omni.Image.load(scan.with_name("COPY.omni")).additional_pixels_filenames == []


def test_derive_image_with_paths_inherits_the_metadata_into_new_files(scan: Path) -> None:
    image = omni.Image.load(scan)
    omni_path, raw_path = scan.with_name("SCAN_f.omni"), scan.with_name("SCAN_f.raw")
    derived = image.derive_image(omni_path, raw_path, {"data_type": "float32"})
    assert derived.metadata_path == omni_path and derived.raw_path == raw_path
    assert omni_path.is_file() and raw_path.stat().st_size == 120 * 4  # written at once
    assert derived.data_type == np.float32 and derived.spacing == image.spacing
    assert derived.calibrations == image.calibrations and derived.source == image.source
    assert derived.default_pixel_calibration_unit_type == "density"
    assert derived.pixels.flags.writeable and not derived.pixels.any()
    derived.pixels[...] = image.pixels * 0.5
    assert derived.save() == omni_path
    again = omni.Image.load(omni_path)
    np.testing.assert_array_equal(again.pixels, PIXELS * 0.5)
    assert again.calibration("density").raw_to_calibrated(8192) == pytest.approx(1212.3)
    # Keywords work as well; and with no override, the data type is inherited too.
    same = image.derive_image(derived_omni_path=scan.with_name("B.omni"),
                              derived_raw_path=str(scan.with_name("B.raw")))  # fmt: skip
    assert same.data_type == np.int16 and same.raw_path == scan.with_name("B.raw")


def test_derive_segments_makes_a_uint8_label_image_without_calibrations(scan: Path) -> None:
    image = omni.Image.load(scan)
    seg = image.derive_segments(scan.with_name("SCAN_seg.omni"), scan.with_name("SCAN_seg.raw"))
    assert seg.kind == "segments" and seg.data_type == np.uint8 and seg.calibrations == ()
    assert seg.default_pixel_calibration_unit_type is None and seg.size == image.size
    wide = image.derive_segments(scan.with_name("W.omni"), scan.with_name("W.raw"),
                                 override_metadata={"data_type": "uint16"})  # fmt: skip
    assert wide.data_type == np.uint16 and wide.kind == "segments"
    assert json.loads(scan.with_name("W.omni").read_text())["kind"] == "segments"


def test_deriving_into_the_images_own_files_or_another_folder_is_refused(
    scan: Path, tmp_path: Path
) -> None:
    image = omni.Image.load(scan)
    with pytest.raises(omni.ImageError, match=r"SCAN\.raw: is a file of the image derived from"):
        image.derive_image(tmp_path / "X.omni", tmp_path / "SCAN.raw")
    with pytest.raises(omni.ImageError, match=r"SCAN\.omni: is a file of the image derived"):
        image.derive_segments(scan, tmp_path / "other.raw")
    (tmp_path / "sub").mkdir()
    with pytest.raises(omni.ImageError, match=r"must be in the folder of X\.omni"):
        image.derive_image(tmp_path / "X.omni", tmp_path / "sub" / "X.raw")
    np.testing.assert_array_equal(omni.Image.load(scan).pixels, PIXELS)


def test_saving_in_place_writes_the_metadata_and_leaves_the_pixel_file(scan: Path) -> None:
    image = omni.Image.load(scan)
    seg = image.derive_segments(scan.with_name("S.omni"), scan.with_name("S.raw"))
    inode = scan.with_name("S.raw").stat().st_ino
    seg.pixels[2, 1, 0] = 1
    seg.save()
    assert scan.with_name("S.raw").stat().st_ino == inode  # flushed, not copied
    assert int(omni.Image.load(scan.with_name("S.omni")).pixels.sum()) == 1
    image.save()  # a loaded image saved where it is: its files stay as they are
    np.testing.assert_array_equal(omni.Image.load(scan).pixels, PIXELS)
    with pytest.raises(omni.ImageError, match=r"has no \.omni file yet: save it to a path"):
        images.Image.from_array(PIXELS).save()


def test_calibration_takes_xamflows_arguments(scan: Path) -> None:
    from_dict = omni.Calibration(MU)
    by_keyword = omni.Calibration(unit_type="linear_attenuation", unit_name="1/cm",
                                  slope=1 / 8192)  # fmt: skip
    assert from_dict == by_keyword and by_keyword.type == "slope_intercept"
    assert by_keyword.intercept == 0.0 and by_keyword.indirect_base_unit_type is None
    overridden = omni.Calibration(MU, slope=0.5, unit_name=None)
    assert (overridden.slope, overridden.unit_name) == (0.5, "1/cm")  # None: not given
    indirect = omni.Calibration(DENSITY)
    assert (indirect.type, indirect.indirect_base_unit_type) == (
        "slope_intercept_indirect", "linear_attenuation",
    )  # fmt: skip
    attached = indirect.attached(from_dict)
    assert attached.raw_to_calibrated(8192) == pytest.approx(1603.5 - 391.2)
    assert attached.raw_variance_to_calibrated_variance(4.0) == pytest.approx(
        4.0 * (1603.5 / 8192) ** 2
    )
    assert math.isclose(attached.calibrated_to_raw(attached.raw_to_calibrated(777.0)), 777.0)
    for arguments, message in (
        ({"unit_type": "density"}, "'slope' must be a number"),
        ({"unit_type": "d", "slope": 1, "type": "spline"}, "type 'spline' is not one of"),
        ({"unit_type": "d", "slope": 1, "type": "slope_intercept_indirect"}, "needs an indirect"),
        (
            {"unit_type": "d", "slope": 1, "indirect_base_unit_type": "mu"},
            "for slope_intercept_ind",
        ),
        ({"unit_type": "d", "slope": math.inf}, "slope must be finite and not 0"),
    ):
        with pytest.raises(ValueError, match=message):
            omni.Calibration(**arguments)  # type: ignore[arg-type]


def test_the_threshold_script_of_xamflows_guide_runs_unmodified(scan: Path) -> None:
    """Lucid.Core.Threshold as XamFlow's "Loading input" guide writes it, with numpy doing
    what its thres module does: thresholds in a calibration's unit, a segments image."""

    class Worker:  # what the script uses of xfworkerutil.XFWorkerJob
        working_dir = WorkingDirectory(scan.parent)

        def create_related_path(self, path: Path, postfix: str) -> Path:
            return self.working_dir.create_related_path(path, postfix)

    def thres_image(image, lower, upper, omni_path, raw_path, temp):  # type: ignore[no-untyped-def]
        seg = image.derive_segments(omni_path, raw_path)
        upper = np.inf if upper is None else upper
        seg.pixels[...] = (image.pixels >= lower) & (image.pixels <= upper)
        seg.save()
        return seg

    worker = Worker()
    threshold_lower, threshold_upper, calibration_name = 450.0, None, "density"
    image = omni.Image.load(scan)  # what worker.get_omni_image gives
    seg_image_omni_path = worker.create_related_path(image.metadata_path, "_seg.omni")
    seg_image_pixels_path = worker.create_related_path(image.metadata_path, "_seg.raw")
    if calibration_name is not None:
        calibrations = image.pixel_calibrations_of_unit_type(calibration_name)
        assert len(calibrations) != 0
        calibration = calibrations[0]
        threshold_lower = (
            calibration.calibrated_to_raw(threshold_lower) if threshold_lower is not None else None
        )
        threshold_upper = (
            calibration.calibrated_to_raw(threshold_upper) if threshold_upper is not None else None
        )
    seg_image = thres_image(image, threshold_lower, threshold_upper, seg_image_omni_path,
                            seg_image_pixels_path, scan.parent / "thres")  # fmt: skip
    assert seg_image.metadata_path == scan.with_name("SCAN_seg.omni")
    density = PIXELS * 1603.5 / 8192 - 391.2
    np.testing.assert_array_equal(omni.Image.load(seg_image_omni_path).pixels, density >= 450)
