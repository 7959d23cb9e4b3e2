"""Scanco ``.ISQ`` files (reconstructed scans, 16-bit signed pixels): ``import_from_isq``.

A file is a 512-byte header block starting with ``CTDATA-HEADER_V1`` (32-bit fields: sizes
in pixels and micrometres, mu scaling, the scan date, ..., and in its last 4 bytes the number
of further 512-byte header blocks), those further blocks (among them the calibration: density
unit, slope, intercept, mu of water, default unit type), then the pixels, x fastest.
Details: docs/images.md.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from runyard.images import scanco
from runyard.images.image import Image
from runyard.images.model import ImageError

MAGIC = b"CTDATA-HEADER_V1"
BLOCK = 512
ISQ_DATA_TYPE = 3  # 16-bit signed pixels; other types (RAD, RSQ projections) are refused
MAX_HEADER_BLOCKS = 1 << 16  # 32 MiB of header: more means a corrupt data offset


def import_from_isq(path: str | os.PathLike[str], load_pixels: bool = True) -> Image:
    """The image in the ISQ file ``path`` (its name may end in a version, ``SCAN.ISQ;1``).
    Only the header is read: with ``load_pixels`` the pixels are a read-only memory map of
    the file; without, the image has size, spacing, calibrations and ``source`` (the
    header's fields) only. Corrupt, truncated or unsupported files raise ``ImageError``."""
    file = scanco.open_scanco(path)
    with file.handle:
        return _read(file, load_pixels)


def _read(file: scanco.OpenFile, load_pixels: bool) -> Image:
    h = _first_block(file)
    size = (scanco.int32(h, 44), scanco.int32(h, 48), scanco.int32(h, 52))
    scanco.check_size(file, size)
    blocks = scanco.int32(h, 508)
    if not 0 <= blocks < MAX_HEADER_BLOCKS:
        raise ImageError(file.path, f"corrupt header: {blocks} further header blocks")
    offset = (blocks + 1) * BLOCK
    scanco.check_pixels_fit(file, offset, math.prod(size) * 2)
    source = _source(h) | _calibration(file, blocks)
    pixels = None
    if load_pixels:
        pixels = scanco.mapped_pixels(file, offset, size, np.dtype("<i2"))
    return scanco.scanco_image(
        file,
        size=size,
        data_type="int16",
        spacing=_spacing(source["physical_size_um"], size),
        origin=(0.0, 0.0, 0.0),
        source=source,
        pixels=pixels,
    )


def _first_block(file: scanco.OpenFile) -> bytes:
    """The first header block, once it is known to be an ISQ header of a supported type."""
    if file.size < BLOCK:
        raise ImageError(
            file.path, f"truncated: an ISQ header is {BLOCK} bytes; the file has {file.size}"
        )
    h = file.read(0, BLOCK, "header")
    if h[:16] != MAGIC:
        hint = "; it looks like an AIM file (import_from_aim)" if h.startswith(b"AIMDATA") else ""
        raise ImageError(
            file.path, f"not an ISQ file: it does not start with 'CTDATA-HEADER_V1'{hint}"
        )
    data_type = scanco.int32(h, 16)
    if data_type != ISQ_DATA_TYPE:
        raise ImageError(
            file.path,
            f"ISQ data type {data_type} is not supported (only {ISQ_DATA_TYPE}, 16-bit "
            "reconstructed slices)",
        )
    return h


def _spacing(physical_um: list[int], size: tuple[int, int, int]) -> tuple[float, float, float]:
    """The physical size of each axis, in micrometres, over its pixels, in mm; an axis whose
    size is 0 (not recorded) has a spacing of 1."""
    x, y, z = ((um * 1e-3 / n) if um > 0 else 1.0 for um, n in zip(physical_um, size, strict=True))
    return (x, y, z)


def _source(h: bytes) -> dict[str, Any]:
    """The first header block's fields, as the image's ``source`` (the calibration's are
    added from the further blocks)."""
    return {
        "format": "ISQ",
        "version": "CTDATA-HEADER_V1",
        "created": scanco.vms_date(h, 36),
        "patient_name": scanco.text(h, 128, 40),
        "patient_index": scanco.int32(h, 28),
        "measurement_index": scanco.int32(h, 112),
        "scanner_id": scanco.int32(h, 32),
        "scanner_type": scanco.int32(h, 104),
        "site": scanco.int32(h, 116),
        "physical_size_um": [scanco.int32(h, 56), scanco.int32(h, 60), scanco.int32(h, 64)],
        "slice_thickness_um": scanco.int32(h, 68),
        "slice_increment_um": scanco.int32(h, 72),
        "start_position_um": scanco.int32(h, 76),
        "data_range": [scanco.int32(h, 80), scanco.int32(h, 84)],
        "mu_scaling": float(scanco.int32(h, 88)),
        "energy_v": scanco.int32(h, 168),
        "intensity_ua": scanco.int32(h, 172),
    }


def _calibration(file: scanco.OpenFile, blocks: int) -> dict[str, Any]:
    """The calibration header's fields, when the extended header has one. The extended
    header may start with a ``MultiHeader`` block; then comes a directory of up to 4
    entries of 128 bytes (name at +8, length in blocks at +24), the headers following it in
    that order."""
    found: dict[str, Any] = {
        "density_unit": "",
        "density_slope": 1.0,
        "density_intercept": 0.0,
        "mu_water": 0.0,
        "calibration_data": "",
        "default_unit_type": 0,
    }
    if blocks < 3:
        return found
    extended = file.read(BLOCK, blocks * BLOCK, "extended header")
    directory, skip = 0, 1
    if extended[8:24] == b"MultiHeader     ":
        directory, skip = BLOCK, 2
    for entry in range(4):
        at = directory + entry * 128
        length = scanco.int32(extended, at + 24)
        if length < 0 or (1 + skip + length) > blocks + 1:
            break
        if extended[at + 8 : at + 24] == b"Calibration     " and length >= 2:
            cal = skip * BLOCK
            found.update(
                calibration_data=scanco.text(extended, cal + 28, 64),
                default_unit_type=scanco.int32(extended, cal + 632),
                density_unit=scanco.text(extended, cal + 648, 16),
                density_slope=scanco.vax_g(extended, cal + 664),
                density_intercept=scanco.vax_g(extended, cal + 672),
                mu_water=scanco.vax_g(extended, cal + 688),
            )
            break
        skip += length
    return found
