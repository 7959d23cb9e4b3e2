"""The records of an image: its geometry and pixel calibrations (``ImageMetadata``,
``Calibration``), their JSON form in an ``.omni`` file, and ``ImageError``.

Pure: nothing here reads or writes files. The format is described in docs/images.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import RunyardError

FORMAT = "OMNI"
FORMAT_VERSION = 1
BYTE_ORDER = "little"
# Pixel data types, by their numpy names; always little-endian in the .raw file.
DATA_TYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float32",
    "float64",
)


class ImageError(RunyardError):
    """An image file that cannot be read as what it claims to be (corrupt, truncated, of an
    unsupported variant), or an image used wrongly. The message names the file and what is
    wrong with it."""

    code = "invalid_image"
    status = 422

    def __init__(self, where: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{os.fspath(where)}: {problem}", file=os.fspath(where))
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A linear map from raw pixel values to a physical quantity:
    ``calibrated = raw * slope + intercept``, in ``unit``. ``name`` says which quantity:
    ``"mu"`` (linear attenuation, ``1/cm``), ``"density"`` (e.g. ``mg HA/ccm``), ``"HU"``."""

    name: str
    unit: str
    slope: float
    intercept: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a calibration needs a name, like 'mu' or 'density'")
        if not (math.isfinite(self.slope) and self.slope != 0):
            raise ValueError(f"calibration {self.name!r}: slope must be finite and not 0")
        if not math.isfinite(self.intercept):
            raise ValueError(f"calibration {self.name!r}: intercept must be finite")

    def to_calibrated(self, raw: Any) -> Any:
        """``raw * slope + intercept``: a number, or a numpy array (as float64)."""
        return raw * self.slope + self.intercept

    def to_raw(self, calibrated: Any) -> Any:
        """The inverse: ``(calibrated - intercept) / slope`` (not rounded)."""
        return (calibrated - self.intercept) / self.slope

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "slope": self.slope,
            "intercept": self.intercept,
        }


@dataclass(frozen=True, kw_only=True)
class ImageMetadata:
    """What an image is besides its pixels. ``axes`` names the dimensions (``"XYZ"``), and
    ``size``, ``spacing`` and ``origin`` have one entry per axis, in that order. ``spacing``
    and ``origin`` are in ``unit`` (a length, ``"mm"`` by default). ``source`` is where the
    image came from (for an imported Scanco file: its header's fields), a JSON object."""

    axes: str = "XYZ"
    size: tuple[int, ...]
    data_type: str
    spacing: tuple[float, ...] = ()
    unit: str = "mm"
    origin: tuple[float, ...] = ()
    calibrations: tuple[Calibration, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.axes)
        if n == 0 or not self.axes.isalpha() or not self.axes.isupper():
            raise ValueError(f"axes must be upper-case letters like 'XYZ'; got {self.axes!r}")
        if len(set(self.axes)) != n:
            raise ValueError(f"axes must not repeat a letter; got {self.axes!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing or (1.0,) * n))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin or (0.0,) * n))
        object.__setattr__(self, "calibrations", tuple(self.calibrations))
        for name in ("size", "spacing", "origin"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs {n} entries, one per axis of {self.axes!r}")
        if any(s < 1 for s in self.size):
            raise ValueError(f"size entries must be at least 1; got {list(self.size)}")
        if not all(math.isfinite(s) and s > 0 for s in self.spacing):
            raise ValueError(f"spacing entries must be positive; got {list(self.spacing)}")
        if not all(math.isfinite(o) for o in self.origin):
            raise ValueError(f"origin entries must be finite; got {list(self.origin)}")
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"data type {self.data_type!r} is not one of {', '.join(DATA_TYPES)}")
        names = [c.name for c in self.calibrations]
        if len(set(names)) != len(names):
            raise ValueError(f"calibration names must differ; got {names}")

    @property
    def voxel_count(self) -> int:
        return math.prod(self.size)

    def calibration(self, name: str) -> Calibration:
        """The calibration called ``name`` (or, failing that, the one in unit ``name``)."""
        by_name = [c for c in self.calibrations if c.name == name]
        by_unit = [c for c in self.calibrations if c.unit == name]
        if by_name or by_unit:
            return (by_name or by_unit)[0]
        known = ", ".join(c.name for c in self.calibrations) or "none"
        raise KeyError(f"no calibration {name!r}; this image has: {known}")


def metadata_to_json(metadata: ImageMetadata, raw_file: str) -> dict[str, Any]:
    """The content of an ``.omni`` file for ``metadata`` whose pixels are in ``raw_file``
    (a file name in the same folder)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "axes": metadata.axes,
        "size": list(metadata.size),
        "data_type": metadata.data_type,
        "byte_order": BYTE_ORDER,
        "raw_file": raw_file,
        "spacing": list(metadata.spacing),
        "unit": metadata.unit,
        "origin": list(metadata.origin),
        "calibrations": [c.to_json() for c in metadata.calibrations],
        "source": dict(metadata.source),
    }


def metadata_from_json(data: Any, where: str | os.PathLike[str]) -> tuple[ImageMetadata, str]:
    """The metadata and the raw file's name from the content of an ``.omni`` file; an
    ``ImageError`` naming ``where`` and the field when it is not a valid one."""
    if not isinstance(data, dict):
        raise ImageError(where, "not OMNI metadata: the file must hold a JSON object")
    if data.get("format") != FORMAT:
        raise ImageError(where, f"not OMNI metadata: 'format' must be {FORMAT!r}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ImageError(
            where,
            f"'format_version' is {version!r}; this Runyard reads version {FORMAT_VERSION}",
        )
    if data.get("byte_order", BYTE_ORDER) != BYTE_ORDER:
        raise ImageError(where, f"'byte_order' must be {BYTE_ORDER!r}")
    raw_file = data.get("raw_file")
    if not isinstance(raw_file, str) or raw_file in ("", ".", "..") or "/" in raw_file:
        raise ImageError(where, "'raw_file' must be a plain file name like 'scan.raw'")
    try:
        calibrations = tuple(
            Calibration(
                name=_string(c, "name"),
                unit=_string(c, "unit"),
                slope=_number(c, "slope"),
                intercept=_number(c, "intercept", 0.0),
            )
            for c in _list(data, "calibrations", [])
        )
        source = data.get("source", {})
        if not isinstance(source, dict):
            raise ValueError("'source' must be a JSON object")
        metadata = ImageMetadata(
            axes=_string(data, "axes"),
            size=tuple(_integers(data, "size")),
            data_type=_string(data, "data_type"),
            spacing=tuple(_number(v, None) for v in _list(data, "spacing", [])),
            unit=_string(data, "unit", "mm"),
            origin=tuple(_number(v, None) for v in _list(data, "origin", [])),
            calibrations=calibrations,
            source=source,
        )
    except ValueError as exc:
        raise ImageError(where, f"invalid OMNI metadata: {exc}") from None
    return metadata, raw_file


def _string(data: Any, key: str, default: str | None = None) -> str:
    value = data.get(key, default) if isinstance(data, dict) else None
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string")
    return value


def _number(data: Any, key: str | None, default: float | None = None) -> float:
    value = data if key is None else (data.get(key, default) if isinstance(data, dict) else None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key or 'spacing and origin entries'!r} must be a number")
    return float(value)


def _list(data: dict[str, Any], key: str, default: list[Any] | None = None) -> Sequence[Any]:
    value = data.get(key, default)
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list")
    return value


def _integers(data: dict[str, Any], key: str) -> list[int]:
    values = _list(data, key)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{key!r} must be a list of whole numbers")
    return list(values)
