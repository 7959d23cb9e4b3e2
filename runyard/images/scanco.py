"""What Scanco's ``.AIM`` and ``.ISQ`` readers share: reading a header without reading the
pixels, the VAX number and OpenVMS date encodings, file names with OpenVMS version suffixes
(``SCAN.ISQ;1``), and the calibrations a header's mu scaling and density fields give.

Byte layouts: docs/images.md ("Scanco AIM and ISQ"). All integers are little-endian.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from runyard.images.calibration import DENSITY, HOUNSFIELD, LINEAR_ATTENUATION, Calibration
from runyard.images.image import Image
from runyard.images.model import ImageError, ImageMetadata

PathArg = str | os.PathLike[str]
VMS_EPOCH = datetime(1858, 11, 17)  # OpenVMS dates count 100 ns ticks from here
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Scanco's calibration unit type codes (an AIM log's "Calib. default unit type   2 (Density)",
# an ISQ calibration header's unit type), for those Runyard knows the meaning of.
SCANCO_UNIT_TYPES = {2: DENSITY}
_LOG_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?")


def display_name(path: PathArg) -> str:
    """The file's name as given, version suffix included (``SCAN.ISQ;1``)."""
    return PurePosixPath(os.fspath(path).replace("\\", "/")).name


def plain_name(path: PathArg) -> str:
    """The file's name without an OpenVMS version suffix: ``SCAN.ISQ;1`` -> ``SCAN.ISQ``."""
    return re.sub(r";\d*$", "", display_name(path))


def has_scanco_suffix(path: PathArg, suffix: str) -> bool:
    """Whether the name ends in ``suffix`` (``.aim``), in any case, version suffix or not."""
    return plain_name(path).lower().endswith(suffix.lower())


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpenFile:
    """A Scanco file opened for its header: its path, size in bytes and handle."""

    path: Path
    size: int
    handle: BinaryIO

    def read(self, offset: int, length: int, what: str) -> bytes:
        """``length`` bytes at ``offset``; ``ImageError`` (truncated) if the file ends first."""
        if offset + length > self.size:
            raise ImageError(
                self.path,
                f"truncated: its {what} needs bytes {offset}..{offset + length} but the file "
                f"has {self.size} bytes",
            )
        self.handle.seek(offset)
        data = self.handle.read(length)
        if len(data) != length:
            raise ImageError(self.path, f"truncated while reading its {what}")
        return data


def open_scanco(path: PathArg) -> OpenFile:
    where = Path(path)
    try:
        handle = open(where, "rb")  # closed by the reader that opened it
    except FileNotFoundError:
        raise ImageError(where, "no such file") from None
    except OSError as exc:
        raise ImageError(where, f"cannot be opened: {exc}") from None
    return OpenFile(path=where, size=os.fstat(handle.fileno()).st_size, handle=handle)


def check_pixels_fit(file: OpenFile, offset: int, length: int) -> None:
    """Refuse a file too short to hold the ``length`` bytes of pixels at ``offset``."""
    if offset + length > file.size:
        raise ImageError(
            file.path,
            f"truncated: the header says the pixels take {length} bytes from byte {offset} "
            f"({offset + length} in all), but the file has {file.size} bytes",
        )


def check_size(file: OpenFile, size: tuple[int, ...]) -> None:
    """Refuse an image size with an empty axis."""
    if min(size) < 1:
        raise ImageError(file.path, f"corrupt header: image size {list(size)} has an empty axis")


def mapped_pixels(
    file: OpenFile, offset: int, size: tuple[int, ...], dtype: np.dtype[Any]
) -> np.ndarray[Any, Any]:
    """A read-only memory map of uncompressed pixels, first axis fastest."""
    return np.memmap(file.path, dtype=dtype, mode="r", offset=offset, shape=size, order="F")


def int32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<i", data, offset)[0]
    return value


def uint32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value


def int64(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<q", data, offset)[0]
    return value


def text(data: bytes, offset: int, length: int) -> str:
    """A fixed-width string field: up to the first NUL, trailing spaces removed."""
    return data[offset : offset + length].split(b"\0", 1)[0].decode("latin-1").rstrip()


def vax_f(data: bytes, offset: int) -> float:
    """A VAX F-float (4 bytes): its 16-bit halves swapped relative to an IEEE float, with
    an exponent bias that makes it 4 times the IEEE value of the same bits."""
    b = data[offset : offset + 4]
    value: float = struct.unpack("<f", bytes((b[2], b[3], b[0], b[1])))[0]
    return value / 4


def vax_g(data: bytes, offset: int) -> float:
    """A VAX G-float (8 bytes): 16-bit words in the reverse order of a little-endian IEEE
    double, and 4 times its value."""
    b = data[offset : offset + 8]
    value: float = struct.unpack("<d", bytes((b[6], b[7], b[4], b[5], b[2], b[3], b[0], b[1])))[0]
    return value / 4


def vms_date(data: bytes, offset: int) -> str | None:
    """An OpenVMS date (64-bit count of 100 ns since 1858-11-17) as ISO 8601, or None when
    it is 0 or out of range."""
    ticks = struct.unpack_from("<Q", data, offset)[0]
    if ticks == 0:
        return None
    try:
        return (VMS_EPOCH + timedelta(microseconds=ticks // 10)).isoformat(timespec="milliseconds")
    except OverflowError:
        return None


def log_date(value: str) -> str | None:
    """A processing-log date like ``26-NOV-2026 10:11:12.345`` as ISO 8601, or None."""
    match = _LOG_DATE.search(value)
    if not match or match.group(2).upper() not in MONTHS:
        return None
    day, month, year, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(
            int(year),
            MONTHS.index(month.upper()) + 1,
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:3].ljust(3, "0")) * 1000,
        )
    except ValueError:
        return None
    return moment.isoformat(timespec="milliseconds")


# -- calibrations and the image ------------------------------------------------------------------


def calibrations(
    *,
    mu_scaling: float,
    density_slope: float,
    density_intercept: float,
    density_unit: str,
    mu_water: float,
) -> tuple[Calibration, ...]:
    """The pixel calibrations of a Scanco header's fields. Raw values divided by
    ``mu_scaling`` are the linear attenuation mu in 1/cm; the density calibration applies
    its slope and intercept to mu; Hounsfield units are ``1000 * (mu - mu_water) /
    mu_water``. Each is given from raw values (``slope_intercept``); none of them without a
    positive mu scaling."""
    if not mu_scaling > 0:
        return ()
    found = [Calibration(unit_type=LINEAR_ATTENUATION, unit_name="1/cm", slope=1 / mu_scaling)]
    if density_unit and density_slope != 0:
        found.append(
            Calibration(
                unit_type=DENSITY,
                unit_name=density_unit,
                slope=density_slope / mu_scaling,
                intercept=density_intercept,
            )
        )
    if mu_water > 0:
        found.append(
            Calibration(
                unit_type=HOUNSFIELD,
                unit_name="HU",
                slope=1000 / (mu_water * mu_scaling),
                intercept=-1000,
            )
        )
    return tuple(found)


def default_unit_type(code: int, found: tuple[Calibration, ...]) -> str | None:
    """The unit type of a header's default calibration (``Calib. default unit type`` of an
    AIM log, the calibration header's unit type in an ISQ file) if the image has it; when the
    header names none Runyard knows (0, as ITK writes), density if there is a density
    calibration (what scanners write); else None."""
    present = {c.unit_type for c in found}
    named = SCANCO_UNIT_TYPES.get(code)
    if named in present:
        return named
    return DENSITY if DENSITY in present else None


def scanco_image(
    file: OpenFile,
    *,
    size: tuple[int, int, int],
    data_type: str,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    source: dict[str, Any],
    pixels: np.ndarray[Any, Any] | None,
) -> Image:
    """The image of a Scanco header (and pixels, if read); its calibrations are those of
    the header's fields in ``source`` (``mu_scaling``, ``density_slope``,
    ``density_intercept``, ``density_unit``, ``mu_water``, ``default_unit_type``)."""
    check_size(file, size)
    if not all(s > 0 for s in spacing):
        raise ImageError(file.path, f"corrupt header: voxel spacing {list(spacing)} mm")
    found = calibrations(
        mu_scaling=source["mu_scaling"],
        density_slope=source["density_slope"],
        density_intercept=source["density_intercept"],
        density_unit=source["density_unit"],
        mu_water=source["mu_water"],
    )
    metadata = ImageMetadata(
        axes="XYZ",
        size=size,
        data_type=data_type,
        spacing=spacing,
        unit="mm",
        origin=origin,
        calibrations=found,
        default_pixel_calibration_unit_type=default_unit_type(source["default_unit_type"], found),
        source={"filename": display_name(file.path), **source},
    )
    return Image(metadata, pixels, origin_path=file.path)
