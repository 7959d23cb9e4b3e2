"""The image task types XamFlow documents, thin over ``runyard.builtin.images``:
``Lucid.Core.Threshold`` (``image``, ``threshold_lower0``, ``threshold_upper0``,
``calibration`` -> ``segments``) and ``Lucid.CLIP.StatMinMax`` (``image``, optionally
``segments``, ``calibration`` -> ``min``, ``max``). docs/builtin.md describes them.

They differ from ``Runyard.Image.Threshold`` and ``Runyard.Image.Statistics`` in how the
input ``calibration`` is read (``resolve_calibration``): any unit type the image has, by its
name or alias (``linear_attenuation`` or ``mu``, ``hounsfield`` or ``HU``), or ``raw``; left
out, the image's own default unit type, and raw values when it has none. The threshold is
``images.threshold``; the minimum and maximum are one slab-wise pass (``images.slabs``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runyard import task
from runyard.builtin import images
from runyard.builtin.images import ImageTaskError
from runyard.errors import RunyardError
from runyard.images import Calibration, Image
from runyard.images.calibration import UNIT_TYPE_ALIASES, UNIT_TYPES

RAW = "raw"
# The names the input accepts whatever their case, and the unit type each stands for.
KNOWN_NAMES = {name.lower(): name for name in UNIT_TYPES} | {
    alias.lower(): unit_type for alias, unit_type in UNIT_TYPE_ALIASES.items()
}
ALIASES = {"linear_attenuation": "mu", "hounsfield": "HU"}  # shown beside the unit type


@dataclass(frozen=True, kw_only=True)
class Chosen:
    """The calibration an input ``calibration`` chose: ``unit_type`` (``raw`` for the stored
    values), the ``calibration`` itself, and ``why``, for the job log."""

    unit_type: str
    calibration: Calibration
    why: str

    @property
    def unit(self) -> str:
        """The unit of its values (``mg HA/ccm``), or empty for raw values."""
        return "" if self.unit_type == RAW else self.calibration.unit_name or ""


def resolve_calibration(image: Image, name: str | None) -> Chosen:
    """The calibration of ``image`` that the input ``calibration`` names: ``raw`` (the
    stored values), a unit type the image has or its alias (``mu``, ``HU``; the known names
    in any case); None or empty, the image's ``default_pixel_calibration_unit_type``, raw
    when it has none. ``ImageTaskError`` naming the calibrations the image has otherwise."""
    given = (name or "").strip()
    if not given:
        default = image.default_pixel_calibration_unit_type
        if not default:
            return Chosen(unit_type=RAW, calibration=_raw(), why="the image has no default")
        unit_type, why = default, "the image's default"
    elif given.lower() == RAW:
        return Chosen(unit_type=RAW, calibration=_raw(), why="as asked")
    else:
        unit_type, why = KNOWN_NAMES.get(given.lower(), given), "as asked"
    found = image.pixel_calibrations_of_unit_type(unit_type)
    if not found:
        missing = (
            f"the image has no {unit_type!r} calibration"
            if why == "as asked"
            else f"the image's default calibration {unit_type!r} is not one it has"
        )
        raise ImageTaskError(
            f"{missing} (it has: {known_calibrations(image)}); set the input calibration "
            "to one it has, or to 'raw' for the stored values"
        )
    return Chosen(unit_type=unit_type, calibration=found[0], why=why)


def known_calibrations(image: Image) -> str:
    """The unit types of ``image``'s calibrations, with their aliases: ``linear_attenuation
    (mu), density``, or ``none``."""
    names = dict.fromkeys(
        f"{c.unit_type} ({ALIASES[c.unit_type]})" if c.unit_type in ALIASES else c.unit_type
        for c in image.calibrations
    )
    return ", ".join(names) or "none"


def _raw() -> Calibration:
    return Calibration(unit_type=RAW, slope=1.0)


# -- Lucid.Core.Threshold -------------------------------------------------------------------


def threshold(
    image: Image,
    target: Path,
    *,
    lower: float | None,
    upper: float | None,
    calibration: str | None = None,
) -> Image:
    """``segments`` of ``image``: a ``uint8`` label image written to ``target`` (``.omni``),
    1 where the value in the chosen calibration is in ``[lower, upper]`` (a bound of None:
    unbounded), 0 elsewhere (``images.threshold``)."""
    chosen = resolve_calibration(image, calibration)
    return images.threshold(image, target, lower=lower, upper=upper, calibration=chosen.calibration)


# -- Lucid.CLIP.StatMinMax ------------------------------------------------------------------


def min_max(
    image: Image, segments: Image | None = None, calibration: str | None = None
) -> tuple[float, float]:
    """The smallest and largest value of ``image`` in the chosen calibration, where
    ``segments`` (the same size) is not 0, or over the whole image; NaN pixels of a float
    image do not count. ``ImageTaskError`` when no pixel counts."""
    if segments is not None and segments.size != image.size:
        raise ImageTaskError(
            f"the segments' size {list(segments.size)} is not the image's {list(image.size)}"
        )
    chosen = resolve_calibration(image, calibration)
    pixels = image.pixels
    mask = None if segments is None else segments.pixels
    low, high = math.inf, -math.inf
    for part in images.slabs(image):
        values = np.asarray(pixels[..., part])
        if mask is not None:
            values = values[np.asarray(mask[..., part]) != 0]
        if values.dtype.kind == "f":
            values = values[~np.isnan(values)]
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    if low > high:
        where = "within the segments (all 0)" if segments is not None else "in the image"
        raise ImageTaskError(f"no pixel to take the minimum and maximum of {where}")
    ends = sorted(float(chosen.calibration.to_calibrated(v)) for v in (low, high))
    return ends[0], ends[1]


# -- the scripts ----------------------------------------------------------------------------

FAILURES = (ImageTaskError, RunyardError, task.TaskError)


def _calibration_input(job: task.CurrentJob) -> str | None:
    value = job.inputs.get("calibration")
    if value is not None and not isinstance(value, str):
        raise ImageTaskError(f"input 'calibration' must be a string; got {value!r}")
    return value


def threshold_main() -> None:
    """The script of ``Lucid.Core.Threshold``."""
    job = task.current_job()
    try:
        image = images.image_input(job, "image")
        lower = images.number_input(job, "threshold_lower0")
        upper = images.number_input(job, "threshold_upper0")
        calibration = _calibration_input(job)
        target = images.related_path(job, "image", "_seg.omni")
        segments = threshold(image, target, lower=lower, upper=upper, calibration=calibration)
        chosen = resolve_calibration(image, calibration)
        count = images.count_nonzero(segments)
    except FAILURES as exc:
        task.fail(str(exc))
    bounds = f"[{'-inf' if lower is None else lower}, {'inf' if upper is None else upper}]"
    print(
        f"{chosen.unit_type} ({chosen.why}) {bounds} {chosen.unit}".rstrip()
        + f": {count} of {math.prod(image.size)} voxels segmented"
    )
    task.finish({"segments": job.upload_image(segments)})


def stat_min_max_main() -> None:
    """The script of ``Lucid.CLIP.StatMinMax``."""
    job = task.current_job()
    try:
        image = images.image_input(job, "image")
        has_segments = job.inputs.get("segments") is not None
        segments = images.image_input(job, "segments") if has_segments else None
        calibration = _calibration_input(job)
        low, high = min_max(image, segments, calibration)
        chosen = resolve_calibration(image, calibration)
    except FAILURES as exc:
        task.fail(str(exc))
    where = "within the segments" if segments is not None else "over the whole image"
    print(
        f"{where}, {chosen.unit_type} ({chosen.why}): min {low}, max {high} {chosen.unit}".rstrip()
    )
    task.finish({"min": low, "max": high})
