"""The computations of the built-in image task types (runyard.builtin.images) on phantoms
whose answers are known: a ball and a slab of "bone" in a cube; the same answers when the
image is read from a memory-mapped file a slab at a time; and the study table's rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from runyard.builtin import images as builtin
from runyard.builtin.images import ImageTaskError
from runyard.examples.phantoms import CALIBRATIONS, phantom_image, phantom_pixels
from runyard.images import Calibration, Image

DENSITY = CALIBRATIONS[1]  # mg HA/ccm = raw * slope + intercept


def calibrated(values: np.ndarray, spacing: float = 0.5) -> Image:
    """An int16 image holding the density ``values`` (mg HA/ccm), Scanco-calibrated."""
    raw = np.round(DENSITY.to_raw(values)).astype(np.int16)
    return Image.from_array(raw, spacing=(spacing,) * 3, calibrations=CALIBRATIONS)


def ball_phantom(n: int = 20, radius: float = 6.0) -> tuple[Image, np.ndarray]:
    """A ball of 1000 mg HA/ccm in 100 mg HA/ccm, and its mask."""
    x, y, z = np.ogrid[:n, :n, :n]
    c = (n - 1) / 2
    ball = (x - c) ** 2 + (y - c) ** 2 + (z - c) ** 2 <= radius**2
    return calibrated(np.where(ball, 1000.0, 100.0)), ball


def test_threshold_marks_the_voxels_in_the_calibrated_range(tmp_path: Path) -> None:
    image, ball = ball_phantom()
    seg = builtin.threshold(image, tmp_path / "seg.omni", lower=500.0)
    assert seg.metadata_path == tmp_path / "seg.omni" and (tmp_path / "seg.raw").is_file()
    assert seg.metadata.data_type == "uint8" and seg.size == image.size
    assert seg.spacing == image.spacing and seg.calibrations == ()
    np.testing.assert_array_equal(seg.pixels, ball.astype(np.uint8))
    assert seg.source["segmented"] == {
        "calibration": "density", "unit": "mg HA/ccm", "lower": 500.0, "upper": None,
    }  # fmt: skip


def test_threshold_bounds_are_inclusive_and_either_may_be_open(tmp_path: Path) -> None:
    image = calibrated(np.array([100.0, 400.0, 700.0, 1000.0]).reshape(4, 1, 1))
    values = DENSITY.to_calibrated(image.pixels.astype(float)).ravel()
    between = builtin.threshold(image, tmp_path / "a.omni", lower=values[1], upper=values[2])
    assert between.pixels.ravel().tolist() == [0, 1, 1, 0]
    below = builtin.threshold(image, tmp_path / "b.omni", lower=None, upper=500.0)
    assert below.pixels.ravel().tolist() == [1, 1, 0, 0]


def test_threshold_in_mu_and_raw_units(tmp_path: Path) -> None:
    image = calibrated(np.array([100.0, 1000.0]).reshape(2, 1, 1))
    raw = image.pixels.ravel()
    mu = builtin.threshold(image, tmp_path / "mu.omni", lower=raw[1] / 8192, calibration="mu")
    assert mu.pixels.ravel().tolist() == [0, 1]
    by_raw = builtin.threshold(image, tmp_path / "r.omni", lower=float(raw[0]) + 1,
                               calibration="raw")  # fmt: skip
    assert by_raw.pixels.ravel().tolist() == [0, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lower": None}, "give a lower or an upper threshold"),
        ({"lower": 900.0, "upper": 100.0}, "lower threshold 900.0 is above the upper one 100.0"),
        ({"lower": 1.0, "calibration": "HU2"}, "unknown calibration 'HU2'"),
    ],
)
def test_threshold_refuses_inputs_that_make_no_sense(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    image, _ = ball_phantom(4, 1)
    with pytest.raises(ImageTaskError, match=message):
        builtin.threshold(image, tmp_path / "x.omni", **kwargs)  # type: ignore[arg-type]


def test_an_image_without_the_calibration_says_which_it_has(tmp_path: Path) -> None:
    plain = Image.from_array(np.zeros((2, 2, 2), np.int16))
    with pytest.raises(ImageTaskError, match=r"no 'density' calibration \(it has: none\)"):
        builtin.threshold(plain, tmp_path / "x.omni", lower=1.0)
    mu = Calibration(name="mu", unit="1/cm", slope=0.5)
    mu_only = Image.from_array(np.zeros((2, 2, 2), np.int16), calibrations=[mu])
    with pytest.raises(ImageTaskError, match=r"it has: mu\); choose another calibration"):
        builtin.statistics(mu_only, mu_only, "HU")


def test_statistics_of_a_half_filled_cube() -> None:
    # z < 5 is bone (1000), the rest 100: BV/TV 0.5; 10x10x10 voxels of 0.5 mm: TV 125 mm^3.
    values = np.full((10, 10, 10), 100.0)
    values[:, :, :5] = 1000.0
    image = calibrated(values)
    mask = Image.from_array((values > 500).astype(np.uint8), spacing=(0.5,) * 3)
    stats = builtin.statistics(image, mask)
    assert (stats.voxels, stats.bone_voxels) == (1000, 500)
    assert stats.tv == pytest.approx(125.0) and stats.bv == pytest.approx(62.5)
    assert stats.bv_tv == 0.5 and stats.unit == "mg HA/ccm"
    step = DENSITY.slope  # values are stored as whole raw numbers: within one raw step
    assert stats.mean == pytest.approx(550.0, abs=step)
    assert stats.min == pytest.approx(100.0, abs=step)
    assert stats.max == pytest.approx(1000.0, abs=step)
    raw = builtin.statistics(image, mask, "raw")
    assert raw.unit == "" and raw.max == float(image.pixels.max())


def test_statistics_of_a_ball_counts_its_voxels_and_converts_units() -> None:
    image, ball = ball_phantom(20, 6.0)
    mask = image.derive_image("uint8", ball.astype(np.uint8) * 127)  # Scanco writes 127
    stats = builtin.statistics(image, mask, "density")
    assert stats.bone_voxels == int(ball.sum())
    assert stats.bv == pytest.approx(int(ball.sum()) * 0.125)
    assert stats.bv_tv == pytest.approx(ball.sum() / 8000)
    assert stats.bv_tv == pytest.approx(4 / 3 * math.pi * 6.0**3 / 8000, rel=0.05)
    in_um = Image.from_array(image.pixels, spacing=(500.0,) * 3, unit="um",
                             calibrations=CALIBRATIONS)  # fmt: skip
    assert builtin.statistics(in_um, mask).tv == pytest.approx(1000.0)


def test_statistics_refuse_a_segmentation_of_another_size() -> None:
    image, _ = ball_phantom(6, 2)
    other = Image.from_array(np.zeros((6, 6, 5), np.uint8))
    with pytest.raises(ImageTaskError, match=r"segmentation's size \[6, 6, 5\] is not the image's"):
        builtin.statistics(image, other)


def test_memory_mapped_images_give_the_same_answers_a_slab_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, bone_voxels = phantom_image(7, (24, 20, 16))
    whole_seg = builtin.threshold(image, tmp_path / "whole.omni", lower=450.0)
    whole = builtin.statistics(image, whole_seg)
    image.save(tmp_path / "scan.omni")
    mapped = Image.load(tmp_path / "scan.omni")
    assert isinstance(mapped.pixels, np.memmap)
    # Slabs of 3 slices (24 * 20 * 8 bytes each): 6 slabs, the last one of 1 slice.
    monkeypatch.setattr(builtin, "SLAB_BYTES", 24 * 20 * 8 * 3)
    assert [(s.start, s.stop) for s in builtin.slabs(mapped)] == [
        (0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 16)
    ]  # fmt: skip
    seg = builtin.threshold(mapped, tmp_path / "seg.omni", lower=450.0)
    np.testing.assert_array_equal(seg.pixels, whole_seg.pixels)
    assert builtin.statistics(mapped, seg) == whole
    assert whole.bone_voxels == bone_voxels  # the phantom's noise never crosses 450


def test_demo_phantoms_are_reproducible_and_their_truth_is_their_mask() -> None:
    raw, bone = phantom_pixels(3, (16, 16, 12))
    again, _ = phantom_pixels(3, (16, 16, 12))
    np.testing.assert_array_equal(raw, again)
    density = DENSITY.to_calibrated(raw.astype(float))
    assert density[bone].min() > 450 > density[~bone].max()
    assert 0.02 < bone.mean() < 0.6


def test_study_table_rows_have_the_run_name_and_the_connected_columns(tmp_path: Path) -> None:
    runs = [{"id": 3, "name": "S01.AIM", "entity": None}, {"id": 4, "name": "S02.ISQ;1"}]
    header, rows = builtin.table_rows(
        runs, {"tv": [1.0, 2.0], "bv_tv": [0.25, 0.5], "unit": ["mg HA/ccm"] * 2, "bv": None}
    )
    assert header == ["run", "TV_mm3", "BV_TV", "unit"]
    assert rows == [["S01.AIM", 1.0, 0.25, "mg HA/ccm"], ["S02.ISQ;1", 2.0, 0.5, "mg HA/ccm"]]
    path = builtin.write_table(tmp_path / "t.csv", header, rows)
    assert path.read_text().splitlines() == [
        "run,TV_mm3,BV_TV,unit",
        "S01.AIM,1.0,0.25,mg HA/ccm",
        "S02.ISQ;1,2.0,0.5,mg HA/ccm",
    ]
    with pytest.raises(ImageTaskError, match="input 'tv' has 1 values for 2 runs"):
        builtin.table_rows(runs, {"tv": [1.0]})
