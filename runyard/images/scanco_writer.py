"""Writing Scanco ``.AIM`` (v020, v030) and ``.ISQ`` files, the layouts that
``import_from_aim`` and ``import_from_isq`` read (docs/images.md, "Byte layouts").

    from runyard.images.scanco_writer import write_aim, write_isq

    write_aim("SAMPLE.AIM", image)               # v020; version=30 for AIMDATA_V030
    write_isq("SAMPLE.ISQ;1", image)             # int16 pixels only

The calibrations go into the file as Scanco stores them: the ``linear_attenuation``
calibration's slope gives the mu scaling (``1 / slope``), ``density`` its slope times the mu
scaling and its intercept, ``hounsfield`` the mu of water, and a default unit type of
``density`` Scanco's code 2. An image without a ``linear_attenuation`` calibration is written
with a mu scaling of 1 and nothing else. Pixels are written in slabs, so a memory-mapped image is
never copied whole. Each file is written to a temporary name and then renamed.

Runyard writes these for its demo's synthetic scans and for tests; scanners and Scanco's
software write the real ones. What is not written: run-length compressed pixels, and the
header fields of a real scan that the readers only report (scanner, energy, ...).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from runyard.images.calibration import DENSITY, HOUNSFIELD, LINEAR_ATTENUATION
from runyard.images.image import Image
from runyard.images.scanco import SCANCO_UNIT_TYPES, VMS_EPOCH

PathArg = str | os.PathLike[str]
AIM_TYPE_CODES = {
    "int8": 0x00010001,
    "uint8": 0x00160001,
    "int16": 0x00020002,
    "uint16": 0x00170002,
    "int32": 0x00030004,
    "float32": 0x001A0004,
}
_SLAB_BYTES = 16 << 20


@dataclass(frozen=True, kw_only=True)
class ScancoCalibration:
    """An image's calibrations as Scanco headers hold them."""

    mu_scaling: float = 1.0
    density_unit: str = ""
    density_slope: float = 1.0
    density_intercept: float = 0.0
    mu_water: float = 0.0
    default_unit_type: int = 0  # Scanco's code: 2 density, 0 none given


def scanco_calibration(image: Image) -> ScancoCalibration:
    """The Scanco fields that give back ``image``'s ``linear_attenuation``, ``density`` and
    ``hounsfield`` calibrations when read (see ``runyard.images.scanco.calibrations``)."""
    mu = next(iter(image.pixel_calibrations_of_unit_type(LINEAR_ATTENUATION)), None)
    if mu is None:
        return ScancoCalibration()
    mu_slope, mu_intercept = mu.direct()
    if mu_intercept != 0 or mu_slope <= 0:
        raise ValueError("a Scanco file's mu calibration is raw / mu_scaling (intercept 0)")
    scaling = 1 / mu_slope
    found: dict[str, Any] = {"mu_scaling": scaling}
    for density in image.pixel_calibrations_of_unit_type(DENSITY)[:1]:
        slope, intercept = density.direct()
        found |= {
            "density_unit": density.unit_name or "",
            "density_slope": slope * scaling,
            "density_intercept": intercept,
        }
    for hu in image.pixel_calibrations_of_unit_type(HOUNSFIELD)[:1]:
        found["mu_water"] = 1000 / (hu.direct()[0] * scaling)
    codes = {unit_type: code for code, unit_type in SCANCO_UNIT_TYPES.items()}
    found["default_unit_type"] = codes.get(image.default_pixel_calibration_unit_type or "", 0)
    return ScancoCalibration(**found)


# -- AIM ------------------------------------------------------------------------------------


def write_aim(
    path: PathArg,
    image: Image,
    *,
    version: int = 20,
    log: Mapping[str, str] | None = None,
    created: datetime | None = None,
) -> Path:
    """Write ``image`` (3-D, ``XYZ``, in mm) as an AIM file of ``version`` 20 or 30. The
    processing log holds the calibrations, ``created`` (default: now) and the ``log``
    entries given (``{"Patient Name": "Sample 7"}``)."""
    if version not in (20, 30):
        raise ValueError(f"AIM version must be 20 or 30; got {version}")
    _check_geometry(image)
    code = AIM_TYPE_CODES.get(image.metadata.data_type)
    if code is None:
        raise ValueError(
            f"AIM files hold {', '.join(AIM_TYPE_CODES)} pixels; this image has "
            f"{image.metadata.data_type}"
        )
    size = image.size
    spacing = image.spacing
    position = tuple(round(o / s) for o, s in zip(image.origin, spacing, strict=True))
    log_bytes = _processing_log(scanco_calibration(image), log or {}, created)
    data_size = image.metadata.voxel_count * image.data_type.itemsize
    if version == 20:
        structure = bytearray(140)
        struct.pack_into("<i", structure, 20, code)
        struct.pack_into("<3i", structure, 24, *position)
        struct.pack_into("<3i", structure, 36, *size)
        structure[108:120] = b"".join(_vax_f(s) for s in spacing)
        head = struct.pack("<5I", 20, 140, len(log_bytes), data_size, 0)
    else:
        structure = bytearray(224)
        struct.pack_into("<i", structure, 12, code)
        struct.pack_into("<3q", structure, 16, *position)
        struct.pack_into("<3q", structure, 40, *size)
        struct.pack_into("<3q", structure, 184, *(round(s * 1e6) for s in spacing))
        head = b"AIMDATA_V030   \0" + struct.pack("<5q", 40, 224, len(log_bytes), data_size, 0)
    header = head + bytes(structure) + log_bytes
    return _write(Path(path), header, image.pixels)


def _processing_log(
    calibration: ScancoCalibration, extra: Mapping[str, str], created: datetime | None
) -> bytes:
    when = _log_date(created or datetime.now())
    entries = {
        "Created by": "Runyard",
        "Time": when,
        "Original Creation-Date": when,
        **extra,
        "Mu_Scaling": _number(calibration.mu_scaling),
    }
    if calibration.density_unit:
        entries |= {
            "Calib. default unit type": _unit_type_entry(calibration.default_unit_type),
            "Density: unit": calibration.density_unit,
            "Density: slope": _number(calibration.density_slope),
            "Density: intercept": _number(calibration.density_intercept),
        }
    if calibration.mu_water > 0:
        entries["HU: mu water"] = _number(calibration.mu_water)
    lines = ["!", "! Processing Log", "!", "!" + "-" * 79]
    lines += [f"{key:<30}  {value:>20}" for key, value in entries.items()]
    return ("\n".join(lines) + "\n").encode("latin-1")


def _unit_type_entry(code: int) -> str:
    label = SCANCO_UNIT_TYPES.get(code)
    return f"{code} ({label.capitalize()})" if label else str(code)


def _log_date(moment: datetime) -> str:
    month = moment.strftime("%b").upper()
    return f"{moment.day}-{month}-{moment.year} {moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


def _number(value: float) -> str:
    return repr(float(value))


def _vax_f(value: float) -> bytes:
    ieee = struct.pack("<f", value * 4)
    return bytes((ieee[2], ieee[3], ieee[0], ieee[1]))


# -- ISQ ------------------------------------------------------------------------------------


def write_isq(
    path: PathArg,
    image: Image,
    *,
    created: datetime | None = None,
    patient_name: str = "",
    measurement_index: int = 0,
) -> Path:
    """Write ``image`` (3-D, ``XYZ``, ``int16`` pixels, in mm) as an ISQ file with a
    calibration header. ISQ stores each axis's physical size in whole micrometres, so the
    spacing read back is that size over the pixels (exact for spacings of whole
    micrometres)."""
    _check_geometry(image)
    if image.metadata.data_type != "int16":
        raise ValueError(f"ISQ files hold int16 pixels; this image has {image.metadata.data_type}")
    calibration = scanco_calibration(image)
    size = image.size
    physical_um = [round(s * 1000 * n) for s, n in zip(image.spacing, size, strict=True)]
    nbytes = image.metadata.voxel_count * 2
    pixels = image.pixels
    header = bytearray(512)
    header[:16] = b"CTDATA-HEADER_V1"
    struct.pack_into("<4i", header, 16, 3, min(nbytes, 2**31 - 1), min(nbytes // 512, 2**31 - 1), 0)
    header[36:44] = _vms_date(created or datetime.now())
    struct.pack_into("<3i", header, 44, *size)
    struct.pack_into("<3i", header, 56, *physical_um)
    struct.pack_into("<3i", header, 68, physical_um[2] // size[2], physical_um[2] // size[2], 0)
    low, high = _data_range(pixels)
    struct.pack_into("<3i", header, 80, low, high, round(calibration.mu_scaling))
    struct.pack_into("<i", header, 112, measurement_index)
    header[128:168] = patient_name.encode("latin-1")[:40].ljust(40)
    multi = bytearray(512)
    multi[8:24] = b"MultiHeader     "
    directory = bytearray(512)
    directory[8:24] = b"Calibration     "
    struct.pack_into("<i", directory, 24, 2)
    cal = bytearray(1024)
    cal[28:92] = b"Runyard".ljust(64)
    struct.pack_into("<i", cal, 632, calibration.default_unit_type)
    cal[648:664] = calibration.density_unit.encode("latin-1")[:16].ljust(16)
    cal[664:672] = _vax_g(calibration.density_slope)
    cal[672:680] = _vax_g(calibration.density_intercept)
    cal[688:696] = _vax_g(calibration.mu_water)
    extended = bytes(multi + directory + cal)
    struct.pack_into("<i", header, 508, len(extended) // 512)
    return _write(Path(path), bytes(header) + extended, pixels)


def _data_range(pixels: np.ndarray[Any, Any]) -> tuple[int, int]:
    """The smallest and largest pixel value, read a slab at a time."""
    step = _slab_step(pixels)
    ranges = [
        (int(slab.min()), int(slab.max()))
        for slab in (pixels[..., i : i + step] for i in range(0, pixels.shape[-1], step))
    ]
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def _vax_g(value: float) -> bytes:
    d = struct.pack("<d", value * 4)
    return bytes((d[6], d[7], d[4], d[5], d[2], d[3], d[0], d[1]))


def _vms_date(moment: datetime) -> bytes:
    return struct.pack("<Q", (moment - VMS_EPOCH) // timedelta(microseconds=1) * 10)


# -- shared ---------------------------------------------------------------------------------


def _check_geometry(image: Image) -> None:
    if image.axes != "XYZ":
        raise ValueError(f"Scanco files are 3-D images with axes XYZ; this one has {image.axes}")
    if image.unit != "mm":
        raise ValueError(f"Scanco files measure in mm; this image is in {image.unit}")


def _slab_step(pixels: np.ndarray[Any, Any]) -> int:
    slab_bytes = max(int(pixels.nbytes) // max(int(pixels.shape[-1]), 1), 1)
    return max(1, _SLAB_BYTES // slab_bytes)


def _write(target: Path, header: bytes, pixels: np.ndarray[Any, Any]) -> Path:
    partial = target.with_name(f".{target.name}.partial")
    dtype = pixels.dtype.newbyteorder("<")
    try:
        with open(partial, "wb") as f:
            f.write(header)
            _write_slabs(f, pixels, dtype)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def _write_slabs(f: BinaryIO, pixels: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> None:
    step = _slab_step(pixels)
    for start in range(0, pixels.shape[-1], step):
        f.write(np.asarray(pixels[..., start : start + step], dtype=dtype).tobytes(order="F"))


__all__ = ["AIM_TYPE_CODES", "ScancoCalibration", "scanco_calibration", "write_aim", "write_isq"]
