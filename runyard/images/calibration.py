"""Pixel calibrations: ``Calibration``, a linear map from raw pixel values to a physical
quantity, and the unit types that say which quantity (docs/images.md#calibrations).

    density = Calibration(unit_type="density", unit_name="mg HA/ccm", slope=0.196, intercept=-391)
    density.raw_to_calibrated(3000)          # 197.0
    density.calibrated_to_raw(450.0)         # the raw value of 450 mg HA/ccm

A calibration is ``slope_intercept`` (``calibrated = raw * slope + intercept``) or
``slope_intercept_indirect``: ``calibrated = base * slope + intercept``, where ``base`` is the
value in the image's calibration of unit type ``indirect_base_unit_type`` (an image attaches
that calibration as ``base`` when it is made). Pure: nothing here reads or writes files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SLOPE_INTERCEPT = "slope_intercept"
SLOPE_INTERCEPT_INDIRECT = "slope_intercept_indirect"
CALIBRATION_TYPES = (SLOPE_INTERCEPT, SLOPE_INTERCEPT_INDIRECT)

# The unit types Runyard gives (Scanco imports) and knows, with their usual unit names. Other
# unit types are kept as they are written.
LINEAR_ATTENUATION = "linear_attenuation"  # mu, 1/cm
DENSITY = "density"  # e.g. mg HA/ccm (hydroxyapatite-equivalent)
HOUNSFIELD = "hounsfield"  # HU: 1000 * (mu - mu_water) / mu_water
UNIT_TYPES = {LINEAR_ATTENUATION: "1/cm", DENSITY: "mg HA/ccm", HOUNSFIELD: "HU"}
# Other names for them, accepted wherever a unit type is looked up (and the calibration names
# of format 1 .omni files: "mu", "density", "HU").
UNIT_TYPE_ALIASES = {"mu": LINEAR_ATTENUATION, "HU": HOUNSFIELD, "hu": HOUNSFIELD}


def unit_type_of(name: str) -> str:
    """The unit type ``name`` stands for: ``"mu"`` -> ``"linear_attenuation"``, ``"HU"`` ->
    ``"hounsfield"``; any other name is itself."""
    return UNIT_TYPE_ALIASES.get(name, name)


@dataclass(frozen=True, init=False)
class Calibration:
    """A linear map from raw pixel values to a physical quantity of ``unit_type`` (in
    ``unit_name``). Made from keywords, or from its JSON form (``metadata``, a dict of an
    ``.omni`` file's ``calibrations`` list), keywords taking precedence::

        Calibration(unit_type="linear_attenuation", unit_name="1/cm", slope=1 / 8192)
        Calibration({"type": "slope_intercept", "unit_type": "density", "slope": 0.2})

    ``name`` and ``unit`` are the keywords (and JSON keys) of format 1 files, still read:
    ``name`` gives the unit type (``"mu"``: ``linear_attenuation``, ``"HU"``: ``hounsfield``),
    ``unit`` the unit name. ``base`` is the calibration an indirect one applies to, attached
    by the image that has both."""

    type: str
    unit_type: str
    unit_name: str | None
    slope: float
    intercept: float
    indirect_base_unit_type: str | None
    base: Calibration | None = field(repr=False)

    def __init__(
        self,
        metadata: Mapping[str, Any] | None = None,
        *,
        type: str | None = None,  # XamFlow's name
        unit_type: str | None = None,
        unit_name: str | None = None,
        slope: float | None = None,
        intercept: float | None = None,
        indirect_base_unit_type: str | None = None,
        base: Calibration | None = None,
        name: str | None = None,
        unit: str | None = None,
    ) -> None:
        if not isinstance(metadata, Mapping | None):
            raise ValueError(f"calibration metadata must be a JSON object; got {metadata!r}")
        keywords = {
            "type": type,
            "unit_type": unit_type,
            "unit_name": unit_name,
            "slope": slope,
            "intercept": intercept,
            "indirect_base_unit_type": indirect_base_unit_type,
            "name": name,
            "unit": unit,
        }
        given = dict(metadata or {}) | {k: v for k, v in keywords.items() if v is not None}
        which = _unit_type(given)
        kind = given.get("type") or SLOPE_INTERCEPT
        if kind not in CALIBRATION_TYPES:
            raise ValueError(
                f"calibration {which!r}: type {kind!r} is not one of {', '.join(CALIBRATION_TYPES)}"
            )
        label = given.get("unit_name", given.get("unit"))
        if label is not None and not isinstance(label, str):
            raise ValueError(f"calibration {which!r}: 'unit_name' must be a string")
        on = _base_unit_type(which, kind, given.get("indirect_base_unit_type"))
        if base is not None and base.unit_type != on:
            raise ValueError(f"calibration {which!r}: {base.unit_type!r} is not its base")
        slope_value = _number(given.get("slope"), "slope", which)
        if slope_value == 0:
            raise ValueError(f"calibration {which!r}: slope must be finite and not 0")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "unit_type", which)
        object.__setattr__(self, "unit_name", label or None)
        object.__setattr__(self, "slope", slope_value)
        object.__setattr__(
            self, "intercept", _number(given.get("intercept", 0.0), "intercept", which)
        )
        object.__setattr__(self, "indirect_base_unit_type", on)
        object.__setattr__(self, "base", base)

    # -- what it is ---------------------------------------------------------------------------

    @property
    def is_indirect(self) -> bool:
        return self.type == SLOPE_INTERCEPT_INDIRECT

    def attached(self, base: Calibration) -> Calibration:
        """This indirect calibration with ``base`` (of its ``indirect_base_unit_type``)."""
        return Calibration(self.to_json(), base=base)

    def direct(self) -> tuple[float, float]:
        """``(slope, intercept)`` from raw values: an indirect calibration's composed with
        its base's. ``ValueError`` for an indirect calibration without its base."""
        if not self.is_indirect:
            return self.slope, self.intercept
        if self.base is None:
            raise ValueError(
                f"calibration {self.unit_type!r} is indirect (on {self.indirect_base_unit_type!r}) "
                "and has no base: take it from an image that has both "
                "(image.pixel_calibrations_of_unit_type), or attach one (calibration.attached)"
            )
        slope, intercept = self.base.direct()
        return slope * self.slope, intercept * self.slope + self.intercept

    # -- converting values --------------------------------------------------------------------

    def raw_to_calibrated(self, raw: Any) -> Any:
        """``raw * slope + intercept`` (through the base for an indirect calibration): a
        number, or a numpy array (as float64)."""
        slope, intercept = self.direct()
        return raw * slope + intercept

    def calibrated_to_raw(self, calibrated: Any) -> Any:
        """The inverse of ``raw_to_calibrated`` (not rounded)."""
        slope, intercept = self.direct()
        return (calibrated - intercept) / slope

    def raw_stddev_to_calibrated_stddev(self, raw_stddev: Any) -> Any:
        """A standard deviation of raw values in calibrated units: ``|slope| * raw_stddev``."""
        return abs(self.direct()[0]) * raw_stddev

    def raw_variance_to_calibrated_variance(self, raw_variance: Any) -> Any:
        """A variance of raw values in calibrated units: ``slope ** 2 * raw_variance``."""
        return self.direct()[0] ** 2 * raw_variance

    # Runyard's short names for the same.
    to_calibrated = raw_to_calibrated
    to_raw = calibrated_to_raw

    def to_json(self) -> dict[str, Any]:
        """Its JSON form, as an ``.omni`` file holds it (the base is not part of it)."""
        return {
            "type": self.type,
            "unit_type": self.unit_type,
            "unit_name": self.unit_name,
            "slope": self.slope,
            "intercept": self.intercept,
            "indirect_base_unit_type": self.indirect_base_unit_type,
        }


def attach_bases(calibrations: tuple[Calibration, ...]) -> tuple[Calibration, ...]:
    """``calibrations`` with each indirect one attached to the first of the others of its
    base unit type (itself attached first); ``ValueError`` if there is none, or for a cycle."""
    done: dict[int, Calibration] = {}

    def resolve(index: int, seen: tuple[int, ...]) -> Calibration:
        if index in done:
            return done[index]
        calibration = calibrations[index]
        if calibration.is_indirect:
            if index in seen:
                chain = " -> ".join(calibrations[i].unit_type for i in (*seen, index))
                raise ValueError(f"indirect calibrations form a cycle: {chain}")
            bases = [
                i
                for i, c in enumerate(calibrations)
                if c.unit_type == calibration.indirect_base_unit_type
            ]
            if not bases:
                raise ValueError(
                    f"calibration {calibration.unit_type!r} is indirect on "
                    f"{calibration.indirect_base_unit_type!r}, which the image has not"
                )
            calibration = calibration.attached(resolve(bases[0], (*seen, index)))
        done[index] = calibration
        return calibration

    return tuple(resolve(i, ()) for i in range(len(calibrations)))


def _unit_type(given: Mapping[str, Any]) -> str:
    """The unit type of a calibration's fields: ``unit_type``, or format 1's ``name``."""
    which = given.get("unit_type")
    if which is None and isinstance(given.get("name"), str):
        which = unit_type_of(given["name"])
    if not isinstance(which, str) or not which:
        raise ValueError("a calibration needs a unit_type, like 'density'")
    return which


def _base_unit_type(which: str, kind: str, on: Any) -> str | None:
    """The checked ``indirect_base_unit_type`` of a calibration of type ``kind``."""
    if kind != SLOPE_INTERCEPT_INDIRECT:
        if on is not None:
            raise ValueError(
                f"calibration {which!r}: indirect_base_unit_type is for "
                f"{SLOPE_INTERCEPT_INDIRECT} calibrations only"
            )
        return None
    if not isinstance(on, str) or not on:
        raise ValueError(f"calibration {which!r} is indirect: it needs an indirect_base_unit_type")
    if unit_type_of(on) == which:
        raise ValueError(f"calibration {which!r} cannot be indirect on itself")
    return unit_type_of(on)


def _number(value: Any, key: str, which: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"calibration {which!r}: {key!r} must be a number")
    if not math.isfinite(value):
        rule = "finite and not 0" if key == "slope" else "finite"
        raise ValueError(f"calibration {which!r}: {key} must be {rule}")
    return float(value)
