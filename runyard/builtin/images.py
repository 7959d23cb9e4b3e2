"""The built-in image task types: ``Runyard.Image.Threshold`` (a segmentation by a range of
calibrated values), ``Runyard.Image.Statistics`` (volumes, BV/TV, mean, min and max of an
image and its segmentation) and ``Runyard.Image.StudyTable`` (a reduce task: one CSV row per
run). docs/builtin.md describes their inputs, outputs and units.

Pixels are read a slab at a time along the last axis (z), at most about ``SLAB_BYTES`` of
them, so an image memory-mapped from a file of any size is never held in memory whole; the
segmentation is written into a memory-mapped ``.raw`` file the same way.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runyard import task
from runyard.errors import RunyardError
from runyard.images import Calibration, Image, ImageMetadata
from runyard.images.model import metadata_to_json

SLAB_BYTES = 32 << 20  # float64 values of one slab of pixels, at most about this
CALIBRATIONS = ("density", "mu", "HU", "raw")
# The unit types of those names (runyard.images: "mu" and "HU" are aliases), and back.
INPUT_NAMES = {"density": "density", "linear_attenuation": "mu", "hounsfield": "HU"}
BONE = 1  # the segmentation's value in the bone (0 elsewhere)
# Length units whose cubes are converted to mm^3 (volumes are reported in mm^3).
MM_PER_UNIT = {"mm": 1.0, "um": 1e-3, "µm": 1e-3, "cm": 10.0, "m": 1000.0}
# The CSV of Runyard.Image.StudyTable: its column after "run", from the input of that key.
COLUMNS = (
    ("TV_mm3", "tv"),
    ("BV_mm3", "bv"),
    ("BV_TV", "bv_tv"),
    ("mean", "mean"),
    ("min", "min"),
    ("max", "max"),
    ("unit", "unit"),
)


class ImageTaskError(ValueError):
    """The inputs of an image task do not fit (the message says why)."""


# -- shared ---------------------------------------------------------------------------------


def calibration_of(image: Image, name: str) -> Calibration:
    """The calibration ``name`` of ``image`` (``raw``: the stored values, no unit)."""
    if name not in CALIBRATIONS:
        raise ImageTaskError(f"unknown calibration {name!r}; use one of {', '.join(CALIBRATIONS)}")
    if name == "raw":
        return Calibration(unit_type="raw", slope=1.0)
    found = image.pixel_calibrations_of_unit_type(name)
    if not found:
        known = ", ".join(INPUT_NAMES.get(c.unit_type, c.unit_type) for c in image.calibrations)
        raise ImageTaskError(
            f"the image has no {name!r} calibration (it has: {known or 'none'}); choose "
            f"another calibration, or 'raw' for the stored values"
        )
    return found[0]


def slabs(image: Image, bytes_per_pixel: int = 8) -> Iterator[slice]:
    """Slices along the last axis that cover the image a slab of at most about
    ``SLAB_BYTES`` (at ``bytes_per_pixel``) at a time."""
    depth = image.size[-1]
    per_slab = max(1, math.prod(image.size[:-1]) * bytes_per_pixel)
    step = max(1, SLAB_BYTES // per_slab)
    for start in range(0, depth, step):
        yield slice(start, min(start + step, depth))


def voxel_volume_mm3(image: Image) -> float:
    """The volume of one voxel in mm^3 (an image of 2 axes: its area in mm^2)."""
    scale = MM_PER_UNIT.get(image.unit)
    if scale is None:
        raise ImageTaskError(
            f"the image's length unit {image.unit!r} is not one of {', '.join(MM_PER_UNIT)}"
        )
    return math.prod(s * scale for s in image.spacing)


# -- threshold ------------------------------------------------------------------------------


def threshold(
    image: Image,
    target: Path,
    *,
    lower: float | None,
    upper: float | None = None,
    calibration: str | Calibration = "density",
) -> Image:
    """Segment ``image``: ``BONE`` (1) where the calibrated value is in
    ``[lower, upper]`` (either bound may be None: open), 0 elsewhere. Written as an OMNI
    image (``uint8``) to ``target`` (an ``.omni`` path; its ``.raw`` beside it), slab by
    slab; the image loaded from there. ``calibration`` is one of ``CALIBRATIONS``, or a
    calibration already chosen (``runyard.builtin.lucid`` chooses its own way)."""
    if lower is None and upper is None:
        raise ImageTaskError("give a lower or an upper threshold (or both)")
    if lower is not None and upper is not None and lower > upper:
        raise ImageTaskError(f"the lower threshold {lower} is above the upper one {upper}")
    if isinstance(calibration, Calibration):
        cal, calibration = calibration, calibration.unit_type
    else:
        cal = calibration_of(image, calibration)
    source = image.pixels
    metadata = ImageMetadata(
        kind="segments",
        axes=image.axes,
        size=image.size,
        data_type="uint8",
        spacing=image.spacing,
        unit=image.unit,
        origin=image.origin,
        source={"segmented": {"calibration": calibration, "unit": cal.unit_name or "",
                              "lower": lower, "upper": upper}},
    )  # fmt: skip
    raw = target.with_suffix(".raw")
    out = np.memmap(raw, dtype=np.uint8, mode="w+", shape=image.size, order="F")
    for part in slabs(image):
        values = cal.to_calibrated(np.asarray(source[..., part], dtype=np.float64))
        inside = np.ones(values.shape, dtype=bool)
        if lower is not None:
            inside &= values >= lower
        if upper is not None:
            inside &= values <= upper
        out[..., part] = inside.astype(np.uint8) * BONE
    out.flush()
    del out
    text = json.dumps(metadata_to_json(metadata, raw.name), indent=1) + "\n"
    target.write_text(text, encoding="utf-8")
    return Image.load(target)


# -- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Statistics:
    """What ``Runyard.Image.Statistics`` outputs. Volumes in mm^3; ``mean``, ``min`` and
    ``max`` of the whole image in the calibration's ``unit``."""

    voxels: int
    bone_voxels: int
    tv: float
    bv: float
    bv_tv: float
    mean: float
    min: float
    max: float
    unit: str

    def outputs(self) -> dict[str, Any]:
        return {
            "tv": self.tv,
            "bv": self.bv,
            "bv_tv": self.bv_tv,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "unit": self.unit,
            "voxels": self.voxels,
            "bone_voxels": self.bone_voxels,
        }


def statistics(image: Image, segmentation: Image, calibration: str = "density") -> Statistics:
    """The statistics of ``image`` with ``segmentation`` (the same size; bone where it is
    not 0): TV the image's volume, BV the segmented volume, BV/TV, and the calibrated
    mean, minimum and maximum over the image."""
    if segmentation.size != image.size:
        raise ImageTaskError(
            f"the segmentation's size {list(segmentation.size)} is not the image's "
            f"{list(image.size)}"
        )
    cal = calibration_of(image, calibration)
    pixels, mask = image.pixels, segmentation.pixels
    total, bone = 0.0, 0
    low, high = math.inf, -math.inf
    for part in slabs(image):
        raw = np.asarray(pixels[..., part])
        total += float(np.sum(raw, dtype=np.float64))
        low, high = min(low, float(raw.min())), max(high, float(raw.max()))
        bone += int(np.count_nonzero(np.asarray(mask[..., part])))
    voxels = math.prod(image.size)
    ends = sorted((float(cal.to_calibrated(low)), float(cal.to_calibrated(high))))
    volume = voxel_volume_mm3(image)
    return Statistics(
        voxels=voxels,
        bone_voxels=bone,
        tv=voxels * volume,
        bv=bone * volume,
        bv_tv=bone / voxels,
        mean=float(cal.to_calibrated(total / voxels)),
        min=ends[0],
        max=ends[1],
        unit=cal.unit_name or "",
    )


# -- the study table ------------------------------------------------------------------------


def table_rows(
    runs: Sequence[dict[str, Any]], columns: dict[str, Sequence[Any] | None]
) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of the study table: the run's name, then one column per
    connected input (``columns``: input key -> its list, or None when not connected), in
    the order of ``COLUMNS``."""
    used = [(title, key) for title, key in COLUMNS if columns.get(key) is not None]
    for _, key in used:
        values = columns[key]
        assert values is not None
        if len(values) != len(runs):
            raise ImageTaskError(
                f"input {key!r} has {len(values)} values for {len(runs)} runs; it must come "
                "from a task of every run"
            )
    header = ["run", *(title for title, _ in used)]
    rows = []
    for i, run in enumerate(runs):
        row: list[Any] = [run["name"]]
        for _, key in used:
            values = columns[key]
            assert values is not None
            row.append(values[i])
        rows.append(row)
    return header, rows


def write_table(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- the scripts ----------------------------------------------------------------------------


def number_input(job: task.CurrentJob, key: str) -> float | None:
    """The job's input ``key``, a number (None when not given)."""
    value = job.inputs.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImageTaskError(f"input {key!r} must be a number; got {value!r}")
    return float(value)


def image_input(job: task.CurrentJob, key: str) -> Image:
    """The image of the job's ``Image`` input ``key``, fetched into its own folder."""
    value = job.inputs.get(key)
    if not isinstance(value, dict):
        raise ImageTaskError(f"input {key!r} must be an Image value; got {value!r}")
    return job.download_image(value, job.working_dir / key)


def related_path(job: task.CurrentJob, key: str, postfix: str) -> Path:
    """A path in the working folder named after the file of the ``Image`` input ``key``
    and ``postfix``: ``SCAN.ISQ;1`` and ``"_seg.omni"`` give ``SCAN_seg.omni``."""
    name = Path(str(job.inputs[key].get("filename") or "image")).name.split(";")[0]
    return job.working_dir / f"{Path(name).stem}{postfix}"


def count_nonzero(image: Image) -> int:
    """How many pixels of ``image`` are not 0 (a slab at a time)."""
    return sum(int(np.count_nonzero(image.pixels[..., p])) for p in slabs(image, 1))


def threshold_main() -> None:
    """The script of ``Runyard.Image.Threshold``."""
    job = task.current_job()
    try:
        image = image_input(job, "image")
        segmentation = threshold(
            image,
            related_path(job, "image", "_seg.omni"),
            lower=number_input(job, "lower"),
            upper=number_input(job, "upper"),
            calibration=str(job.inputs.get("calibration") or "density"),
        )
        count = count_nonzero(segmentation)
    except (ImageTaskError, RunyardError, task.TaskError) as exc:
        task.fail(str(exc))
    print(f"{image}: {count} of {math.prod(image.size)} voxels segmented")
    task.finish({"segmentation": job.upload_image(segmentation), "voxels": count})


def statistics_main() -> None:
    """The script of ``Runyard.Image.Statistics``."""
    job = task.current_job()
    try:
        found = statistics(
            image_input(job, "image"),
            image_input(job, "segmentation"),
            str(job.inputs.get("calibration") or "density"),
        )
    except (ImageTaskError, RunyardError, task.TaskError) as exc:
        task.fail(str(exc))
    print(json.dumps(found.outputs()))
    task.finish(found.outputs())


def study_table_main() -> None:
    """The script of ``Runyard.Image.StudyTable`` (a reduce task)."""
    job = task.current_job()
    filename = str(job.inputs.get("filename") or "study.csv")
    if Path(filename).name != filename or not filename.lower().endswith(".csv"):
        task.fail(f"filename {filename!r} must be a plain file name ending in .csv")
    try:
        header, rows = table_rows(job.runs, {key: job.inputs.get(key) for _, key in COLUMNS})
    except ImageTaskError as exc:
        task.fail(str(exc))
    path = write_table(job.working_dir / filename, header, rows)
    print(f"{len(rows)} rows, columns {', '.join(header)}")
    task.finish({"table": job.upload(path, value_type="CSV"), "rows": len(rows)})
