"""The built-in task types XamFlow documents (runyard.builtin.lucid): which calibration the
input ``calibration`` chooses, ``Lucid.Core.Threshold``'s segments and
``Lucid.CLIP.StatMinMax``'s minimum and maximum on small arrays and phantoms, checked
against numpy; the same answers a slab at a time; and the scripts' refusals as job errors
(the real server and worker: tests/acceptance/test_lucid_builtins.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard import task
from runyard.builtin import images, lucid
from runyard.builtin.images import ImageTaskError
from runyard.examples.phantoms import CALIBRATIONS, phantom_image
from runyard.images import Calibration, Image

MU, DENSITY, HU = CALIBRATIONS  # linear_attenuation, density, hounsfield


def scan(raw: Any, default: str | None = "density") -> Image:
    """An int16 image of ``raw`` values with the phantoms' Scanco calibrations."""
    pixels = np.asfortranarray(np.asarray(raw, dtype=np.int16))
    return Image.from_array(
        pixels, spacing=(0.02,) * pixels.ndim, calibrations=CALIBRATIONS,
        default_pixel_calibration_unit_type=default,
    )  # fmt: skip


def column(*raw: int) -> Image:
    return scan(np.array(raw).reshape(len(raw), 1, 1))


# -- the calibration input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unit_type"),
    [
        ("density", "density"),
        ("Density", "density"),
        ("linear_attenuation", "linear_attenuation"),
        ("mu", "linear_attenuation"),
        ("MU", "linear_attenuation"),
        ("hounsfield", "hounsfield"),
        ("HU", "hounsfield"),
        ("hu", "hounsfield"),
        (" HU ", "hounsfield"),
    ],
)
def test_calibration_names_unit_types_and_their_aliases(name: str, unit_type: str) -> None:
    chosen = lucid.resolve_calibration(column(1), name)
    assert chosen.unit_type == unit_type and chosen.calibration.unit_type == unit_type
    assert chosen.why == "as asked"


def test_no_calibration_means_the_images_default_and_raw_when_it_has_none() -> None:
    for absent in (None, "", "  "):
        chosen = lucid.resolve_calibration(column(1), absent)
        assert (chosen.unit_type, chosen.unit, chosen.why) == (
            "density", "mg HA/ccm", "the image's default",
        )  # fmt: skip
    assert lucid.resolve_calibration(scan([[[1]]], "hounsfield"), None).unit_type == "hounsfield"
    undefaulted = lucid.resolve_calibration(scan([[[1]]], default=None), None)
    assert (undefaulted.unit_type, undefaulted.unit) == ("raw", "")
    plain = Image.from_array(np.zeros((2, 2, 2), np.uint8))
    assert lucid.resolve_calibration(plain, None).calibration.to_calibrated(7) == 7
    assert lucid.resolve_calibration(column(1), "RAW").unit_type == "raw"


def test_any_unit_type_the_image_has_is_a_calibration() -> None:
    grey = Calibration(unit_type="grey_value", unit_name="GV", slope=2.0, intercept=1.0)
    image = Image.from_array(np.zeros((2, 2, 2), np.int16), calibrations=[grey])
    chosen = lucid.resolve_calibration(image, "grey_value")
    assert chosen.unit == "GV" and chosen.calibration.to_calibrated(3) == 7.0


def test_a_calibration_the_image_has_not_got_names_the_ones_it_has() -> None:
    mu_only = Image.from_array(np.zeros((2, 2, 2), np.int16), calibrations=[MU])
    with pytest.raises(ImageTaskError) as refused:
        lucid.resolve_calibration(mu_only, "HU")
    assert str(refused.value) == (
        "the image has no 'hounsfield' calibration (it has: linear_attenuation (mu)); set the "
        "input calibration to one it has, or to 'raw' for the stored values"
    )
    plain = Image.from_array(np.zeros((2, 2, 2), np.int16))
    with pytest.raises(ImageTaskError, match=r"no 'density' calibration \(it has: none\)"):
        lucid.resolve_calibration(plain, "density")
    with pytest.raises(ImageTaskError, match=r"no 'Bone' calibration \(it has: linear_att"):
        lucid.resolve_calibration(mu_only, "Bone")
    odd = Image.from_array(
        np.zeros((2, 2, 2), np.int16), calibrations=[MU],
        default_pixel_calibration_unit_type="density",
    )  # fmt: skip
    with pytest.raises(ImageTaskError, match=r"default calibration 'density' is not one it has"):
        lucid.resolve_calibration(odd, None)


# -- Lucid.Core.Threshold ---------------------------------------------------------------------


def test_threshold_of_a_phantom_in_its_default_calibration_is_its_bone(tmp_path: Path) -> None:
    image, bone_voxels = phantom_image(3, (24, 20, 16))
    segments = lucid.threshold(image, tmp_path / "s.omni", lower=450.0, upper=None)
    assert segments.metadata_path == tmp_path / "s.omni" and (tmp_path / "s.raw").is_file()
    assert segments.kind == "segments" and segments.metadata.data_type == "uint8"
    assert (segments.size, segments.spacing, segments.origin) == (
        image.size, image.spacing, image.origin,
    )  # fmt: skip
    density = DENSITY.to_calibrated(np.asarray(image.pixels, dtype=np.float64))
    np.testing.assert_array_equal(segments.pixels, (density >= 450.0).astype(np.uint8))
    assert int(segments.pixels.sum()) == bone_voxels  # the noise never crosses 450
    assert segments.source["segmented"] == {
        "calibration": "density", "unit": "mg HA/ccm", "lower": 450.0, "upper": None,
    }  # fmt: skip


def test_threshold_bounds_are_inclusive_and_a_missing_one_is_unbounded(tmp_path: Path) -> None:
    image = column(100, 200, 300, 400)
    raw = {"calibration": "raw"}
    both = lucid.threshold(image, tmp_path / "a.omni", lower=200, upper=300, **raw)
    assert both.pixels.ravel().tolist() == [0, 1, 1, 0]
    above = lucid.threshold(image, tmp_path / "b.omni", lower=300, upper=None, **raw)
    assert above.pixels.ravel().tolist() == [0, 0, 1, 1]
    below = lucid.threshold(image, tmp_path / "c.omni", lower=None, upper=200, **raw)
    assert below.pixels.ravel().tolist() == [1, 1, 0, 0]


@pytest.mark.parametrize(("name", "calibration"), [("mu", MU), ("HU", HU), ("density", DENSITY)])
def test_threshold_in_each_calibration_matches_numpy(
    tmp_path: Path, name: str, calibration: Calibration
) -> None:
    image, _ = phantom_image(5, (12, 10, 8))
    values = calibration.to_calibrated(np.asarray(image.pixels, dtype=np.float64))
    lower, upper = np.percentile(values, [30, 80])
    segments = lucid.threshold(
        image, tmp_path / f"{name}.omni", lower=lower, upper=upper, calibration=name
    )
    expected = (values >= lower) & (values <= upper)
    np.testing.assert_array_equal(segments.pixels, expected.astype(np.uint8))
    assert 0 < int(segments.pixels.sum()) < values.size


def test_an_uncalibrated_image_is_thresholded_in_raw_values(tmp_path: Path) -> None:
    plain = Image.from_array(np.array([1.5, 2.5, 3.5], np.float32).reshape(3, 1, 1))
    segments = lucid.threshold(plain, tmp_path / "p.omni", lower=2.0, upper=None)
    assert segments.pixels.ravel().tolist() == [0, 1, 1]
    assert segments.source["segmented"]["calibration"] == "raw"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lower": 9.0, "upper": 1.0}, "the lower threshold 9.0 is above the upper one 1.0"),
        ({"lower": None, "upper": None}, "give a lower or an upper threshold"),
        ({"lower": 1.0, "upper": None, "calibration": "HU2"}, r"no 'HU2' calibration \(it has"),
    ],
)
def test_threshold_refuses_inputs_that_make_no_sense(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImageTaskError, match=message):
        lucid.threshold(column(1, 2), tmp_path / "x.omni", **kwargs)
    assert not (tmp_path / "x.omni").exists()


# -- Lucid.CLIP.StatMinMax --------------------------------------------------------------------


def test_min_max_of_the_whole_image_and_within_segments_match_numpy(tmp_path: Path) -> None:
    image, _ = phantom_image(4, (16, 14, 12))
    raw = np.asarray(image.pixels)
    assert lucid.min_max(image, calibration="raw") == (float(raw.min()), float(raw.max()))
    segments = lucid.threshold(image, tmp_path / "s.omni", lower=450.0, upper=None)
    inside = raw[segments.pixels != 0].astype(np.float64)
    low, high = lucid.min_max(image, segments)  # the image's default: density
    assert (low, high) == (DENSITY.to_calibrated(inside.min()), DENSITY.to_calibrated(inside.max()))
    assert low >= 450.0
    mu = lucid.min_max(image, segments, "mu")
    assert mu == (MU.to_calibrated(inside.min()), MU.to_calibrated(inside.max()))
    assert lucid.min_max(segments) == (0.0, 1.0)  # the segments themselves: raw 0 and 1


def test_min_max_counts_every_nonzero_label_and_skips_nan() -> None:
    values = np.array([5.0, np.nan, -3.0, 8.0, 2.0], np.float32).reshape(5, 1, 1)
    image = Image.from_array(values)
    assert lucid.min_max(image) == (-3.0, 8.0)
    mask = Image.from_array(np.array([127, 127, 0, 0, 2], np.uint8).reshape(5, 1, 1))
    assert lucid.min_max(image, mask) == (2.0, 5.0)


def test_min_max_of_a_calibration_with_a_negative_slope_are_in_order() -> None:
    flipped = Calibration(unit_type="depth", unit_name="mm", slope=-0.5, intercept=10.0)
    image = Image.from_array(np.array([2, 4, 6], np.int16).reshape(3, 1, 1), calibrations=[flipped])
    assert lucid.min_max(image, calibration="depth") == (7.0, 9.0)


def test_min_max_refuse_segments_of_another_size_and_empty_ones() -> None:
    image = column(1, 2, 3)
    other = Image.from_array(np.ones((3, 1, 2), np.uint8))
    with pytest.raises(ImageTaskError, match=r"segments' size \[3, 1, 2\] is not the image's"):
        lucid.min_max(image, other)
    empty = Image.from_array(np.zeros((3, 1, 1), np.uint8))
    with pytest.raises(ImageTaskError, match=r"within the segments \(all 0\)"):
        lucid.min_max(image, empty)
    with pytest.raises(ImageTaskError, match="the image has no 'hounsfield' calibration"):
        lucid.min_max(Image.from_array(np.zeros((3, 1, 1), np.int16)), None, "HU")


def test_memory_mapped_images_give_the_same_answers_a_slab_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, _ = phantom_image(8, (20, 18, 14))
    whole_segments = lucid.threshold(image, tmp_path / "w.omni", lower=300.0, upper=1200.0)
    whole = lucid.min_max(image, whole_segments, "HU")
    image.save(tmp_path / "scan.omni")
    mapped = Image.load(tmp_path / "scan.omni")
    assert isinstance(mapped.pixels, np.memmap)
    monkeypatch.setattr(images, "SLAB_BYTES", 20 * 18 * 8 * 4)  # 4 slices a slab: 4 slabs
    assert len(list(images.slabs(mapped))) == 4
    segments = lucid.threshold(mapped, tmp_path / "s.omni", lower=300.0, upper=1200.0)
    np.testing.assert_array_equal(segments.pixels, whole_segments.pixels)
    assert lucid.min_max(mapped, segments, "HU") == whole
    assert lucid.min_max(mapped) == lucid.min_max(image)


# -- the scripts: outputs and refusals as job results -----------------------------------------


def run_script(
    main: Any,
    inputs: dict[str, Any],
    given: dict[str, Image],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Run ``main`` as a job with ``inputs``; its ``Image`` inputs are the images ``given``
    (by key) and an uploaded image's value is its path. The result the worker would read."""
    job_file, result_file = tmp_path / "job.json", tmp_path / "result.json"
    job_file.write_text(json.dumps({"inputs": inputs, "metadata": {}}))
    env = {"RUNYARD_JOB_SERIAL": "7", "RUNYARD_JOB_FILE": str(job_file),
           "RUNYARD_SERVER": "http://server.invalid", "RUNYARD_JOB_TOKEN": "t",
           "RUNYARD_RESULT_FILE": str(result_file)}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(task, "_current", [])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(images, "image_input", lambda job, key: given[key])
    monkeypatch.setattr(
        task.CurrentJob, "upload_image", lambda self, image, filename=None: str(image.metadata_path)
    )
    with pytest.raises(SystemExit):
        main()
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


def test_the_threshold_script_outputs_segments_named_after_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = column(100, 5000, 9000)
    inputs = {"image": {"type": "Image", "filename": "C0001.ISQ;1"}, "threshold_lower0": 4000,
              "threshold_upper0": None, "calibration": "raw"}  # fmt: skip
    result = run_script(lucid.threshold_main, inputs, {"image": image}, tmp_path, monkeypatch)
    assert result == {"outputs": {"segments": str(tmp_path / "C0001_seg.omni")}}
    assert Image.load(tmp_path / "C0001_seg.omni").pixels.ravel().tolist() == [0, 1, 1]


def test_the_min_max_script_outputs_numbers_and_fails_on_a_calibration_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = column(100, 5000, 9000)
    mask = Image.from_array(np.array([1, 1, 0], np.uint8).reshape(3, 1, 1))
    given = {"image": image, "segments": mask}
    inputs: dict[str, Any] = {"image": {"type": "Image"}, "segments": {"type": "Image"},
                              "calibration": "mu"}  # fmt: skip
    result = run_script(lucid.stat_min_max_main, inputs, given, tmp_path, monkeypatch)
    assert result == {"outputs": {"min": 100 / 8192, "max": 5000 / 8192}}
    no_mask = inputs | {"segments": None, "calibration": None}
    result = run_script(lucid.stat_min_max_main, no_mask, given, tmp_path, monkeypatch)
    assert result["outputs"]["max"] == DENSITY.to_calibrated(9000.0)
    bad = inputs | {"calibration": "hounsfield"}
    plain = given | {"image": Image.from_array(np.zeros((3, 1, 1), np.int16), calibrations=[MU])}
    result = run_script(lucid.stat_min_max_main, bad, plain, tmp_path, monkeypatch)
    assert result == {"error": (
        "the image has no 'hounsfield' calibration (it has: linear_attenuation (mu)); set the "
        "input calibration to one it has, or to 'raw' for the stored values"
    )}  # fmt: skip
    wrong = inputs | {"calibration": 3}
    result = run_script(lucid.stat_min_max_main, wrong, given, tmp_path, monkeypatch)
    assert result == {"error": "input 'calibration' must be a string; got 3"}
