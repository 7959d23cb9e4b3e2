"""The record of an image besides its pixels (``ImageMetadata``: geometry, pixel
calibrations, where it came from), its JSON form in an ``.omni`` file, and ``ImageError``.

Pure: nothing here reads or writes files. The format is described in docs/images.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import RunyardError
from runyard.images.calibration import Calibration, attach_bases, unit_type_of

FORMAT = "OMNI"
FORMAT_VERSION = 2  # written; 1 (calibrations with name and unit) is read too
READ_VERSIONS = (1, 2)
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
# Axis letters: X Y Z spatial, C channel (e.g. RGB), W wavelength spectra, F frequency
# spectra, T time (animation frames).
AXES = "XYZCWFT"
KINDS = ("image", "segments")  # segments: a label image (0 background, 1, 2, ... labels)


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
class ImageMetadata:
    """What an image is besides its pixels. ``axes`` names the dimensions (``"XYZ"``), and
    ``size``, ``spacing`` and ``origin`` have one entry per axis, in that order. ``spacing``
    and ``origin`` are in ``unit`` (a length, ``"mm"`` by default). ``kind`` is ``"image"``
    or ``"segments"`` (a label image). Indirect calibrations get their base attached.
    ``additional_pixels_filenames`` are further pixel files a format may have (Runyard's
    images have none). ``source`` is where the image came from (for an imported Scanco
    file: its header's fields), a JSON object."""

    kind: str = "image"
    axes: str = "XYZ"
    size: tuple[int, ...]
    data_type: str
    spacing: tuple[float, ...] = ()
    unit: str = "mm"
    origin: tuple[float, ...] = ()
    calibrations: tuple[Calibration, ...] = ()
    default_pixel_calibration_unit_type: str | None = None
    additional_pixels_filenames: tuple[str, ...] = ()
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.axes)
        if n == 0 or any(a not in AXES for a in self.axes):
            raise ValueError(
                f"axes must be letters of {AXES} (X Y Z spatial, C channel, W wavelength, "
                f"F frequency, T time) like 'XYZ'; got {self.axes!r}"
            )
        if len(set(self.axes)) != n:
            raise ValueError(f"axes must not repeat a letter; got {self.axes!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing or (1.0,) * n))
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin or (0.0,) * n))
        object.__setattr__(self, "calibrations", attach_bases(tuple(self.calibrations)))
        object.__setattr__(
            self, "additional_pixels_filenames", tuple(self.additional_pixels_filenames)
        )
        default = self.default_pixel_calibration_unit_type
        if default is not None:
            object.__setattr__(self, "default_pixel_calibration_unit_type", unit_type_of(default))
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
        if not all(_plain(name) for name in self.additional_pixels_filenames):
            raise ValueError("additional_pixels_filenames must be plain file names")

    @property
    def voxel_count(self) -> int:
        return math.prod(self.size)

    def calibrations_of(self, unit_type: str) -> tuple[Calibration, ...]:
        """The calibrations of ``unit_type`` (or its alias: ``"mu"``, ``"HU"``), in order."""
        wanted = unit_type_of(unit_type)
        return tuple(c for c in self.calibrations if c.unit_type == wanted)

    def calibration(self, key: str) -> Calibration:
        """The first calibration of unit type ``key`` (or its alias: ``"mu"``, ``"HU"``), or
        failing that, the first in unit ``key`` (``"mg HA/ccm"``); ``KeyError`` naming the
        unit types there are otherwise."""
        found = self.calibrations_of(key) or tuple(
            c for c in self.calibrations if c.unit_name == key
        )
        if found:
            return found[0]
        known = ", ".join(c.unit_type for c in self.calibrations) or "none"
        raise KeyError(f"no calibration {key!r}; this image has: {known}")


def metadata_to_json(metadata: ImageMetadata, raw_file: str) -> dict[str, Any]:
    """The content of an ``.omni`` file for ``metadata`` whose pixels are in ``raw_file``
    (a file name in the same folder)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": metadata.kind,
        "axes": metadata.axes,
        "size": list(metadata.size),
        "data_type": metadata.data_type,
        "byte_order": BYTE_ORDER,
        "raw_file": raw_file,
        "additional_pixels_filenames": list(metadata.additional_pixels_filenames),
        "spacing": list(metadata.spacing),
        "unit": metadata.unit,
        "origin": list(metadata.origin),
        "calibrations": [c.to_json() for c in metadata.calibrations],
        "default_pixel_calibration_unit_type": metadata.default_pixel_calibration_unit_type,
        "source": dict(metadata.source),
    }


def metadata_from_json(data: Any, where: str | os.PathLike[str]) -> tuple[ImageMetadata, str]:
    """The metadata and the raw file's name from the content of an ``.omni`` file (format
    version 1 or 2); an ``ImageError`` naming ``where`` and the field when it is not a valid
    one."""
    if not isinstance(data, dict):
        raise ImageError(where, "not OMNI metadata: the file must hold a JSON object")
    if data.get("format") != FORMAT:
        raise ImageError(where, f"not OMNI metadata: 'format' must be {FORMAT!r}")
    version = data.get("format_version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise ImageError(
            where,
            f"'format_version' is {version!r}; this Runyard reads versions "
            f"{' and '.join(map(str, READ_VERSIONS))}",
        )
    if data.get("byte_order", BYTE_ORDER) != BYTE_ORDER:
        raise ImageError(where, f"'byte_order' must be {BYTE_ORDER!r}")
    raw_file = data.get("raw_file")
    if not isinstance(raw_file, str) or not _plain(raw_file):
        raise ImageError(where, "'raw_file' must be a plain file name like 'scan.raw'")
    try:
        calibrations = []
        for c in _list(data, "calibrations", []):
            if not isinstance(c, dict):
                raise ValueError("'calibrations' entries must be JSON objects")
            calibrations.append(Calibration(c))
        source = data.get("source", {})
        if not isinstance(source, dict):
            raise ValueError("'source' must be a JSON object")
        default = data.get("default_pixel_calibration_unit_type")
        if default is not None and not isinstance(default, str):
            raise ValueError("'default_pixel_calibration_unit_type' must be a string or null")
        additional = _list(data, "additional_pixels_filenames", [])
        if not all(isinstance(name, str) for name in additional):
            raise ValueError("'additional_pixels_filenames' must be a list of file names")
        metadata = ImageMetadata(
            kind=_string(data, "kind", "image"),
            axes=_string(data, "axes"),
            size=tuple(_integers(data, "size")),
            data_type=_string(data, "data_type"),
            spacing=tuple(_number(v, None) for v in _list(data, "spacing", [])),
            unit=_string(data, "unit", "mm"),
            origin=tuple(_number(v, None) for v in _list(data, "origin", [])),
            calibrations=tuple(calibrations),
            default_pixel_calibration_unit_type=default,
            additional_pixels_filenames=tuple(additional),
            source=source,
        )
    except ValueError as exc:
        raise ImageError(where, f"invalid OMNI metadata: {exc}") from None
    return metadata, raw_file


def _plain(name: str) -> bool:
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


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
