"""Scanco ``.AIM`` files, versions 020 (32-bit header fields) and 030 (64-bit; the file
starts with ``AIMDATA_V030``): ``import_from_aim``.

A file is: [``AIMDATA_V030   \\0`` (v030 only)] a pre-header of 5 integers (its own length,
the image structure's, the processing log's, the pixel data's, the associated data's), the
image structure (data type, position, dimensions, ..., element size), the processing log
(text lines ``key   value``, with mu scaling, density calibration and dates), then the pixels,
x fastest. Details: docs/images.md.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import numpy as np

from runyard.images import scanco
from runyard.images.image import Image
from runyard.images.model import ImageError

V030_MAGIC = b"AIMDATA_V030   \0"
MAX_LOG_BYTES = 16 << 20  # a processing log is a few kB; more means a corrupt length

# AIM data type codes: numpy type of the pixels, and how they are stored.
PLAIN_TYPES = {
    0x00010001: "int8",  # char
    0x00160001: "uint8",
    0x000D0001: "uint8",
    0x00020002: "int16",  # short
    0x00170002: "uint16",
    0x00030004: "int32",
    0x001A0004: "float32",
}
RUN_LENGTH_BITS = 0x00150001  # runs alternating between two values, stored as int8
RUN_LENGTH_BYTES = 0x00080002  # (length, value) byte pairs, stored as int8
UNSUPPORTED_TYPES = {
    0x00060001: "packed bits (2x2x2 voxels per byte)",
    0x00120003: "3-component unsigned char vectors",
    0x00060003: "3-component char vectors",
}


def import_from_aim(path: str | os.PathLike[str], load_pixels: bool = True) -> Image:
    """The image in the AIM file ``path`` (its name may end in a version, ``X.AIM;2``).
    Only the header is read: with ``load_pixels`` the pixels are a read-only memory map of
    the file (run-length compressed files are decompressed into memory); without, the image
    has size, spacing, origin, calibrations and ``source`` (the header's fields) only.
    Corrupt, truncated or unsupported files raise ``ImageError``."""
    file = scanco.open_scanco(path)
    with file.handle:
        return _read(file, load_pixels)


class Layout(NamedTuple):
    """Where an AIM file's parts are, as its version string and pre-header say."""

    version: str  # AIMDATA_V020 or AIMDATA_V030
    word: int  # bytes per header integer: 4 (v020) or 8 (v030)
    struct_start: int
    struct_size: int
    log_size: int
    pixels_at: int


def _read(file: scanco.OpenFile, load_pixels: bool) -> Image:
    layout = _layout(file)
    header = file.read(
        layout.struct_start, layout.struct_size + layout.log_size, "image structure and log"
    )
    fields = _structure(header, layout.word)
    log = _log(header[layout.struct_size :].decode("latin-1"))
    code, size = fields["type"], fields["dimension"]
    data_type, stored = _storage(file, layout, code, size)
    scanco.check_size(file, size)
    scanco.check_pixels_fit(file, layout.pixels_at, stored)
    pixels = _pixels(file, layout, code, size, stored) if load_pixels else None
    spacing = fields["element_size"]
    origin = tuple(p * s for p, s in zip(fields["position"], spacing, strict=True))
    return scanco.scanco_image(
        file,
        size=size,
        data_type=data_type,
        spacing=spacing,
        origin=(origin[0], origin[1], origin[2]),
        source=_source(layout.version, code, fields, log),
        pixels=pixels,
    )


def _layout(file: scanco.OpenFile) -> Layout:
    """The version string and the pre-header: where the image structure, the processing log
    and the pixels are."""
    first = file.read(0, min(file.size, 16), "version string")
    if first == V030_MAGIC:
        version, word, start = "AIMDATA_V030", 8, 16
    else:
        version, word, start = "AIMDATA_V020", 4, 0
    decode = scanco.int64 if word == 8 else scanco.uint32  # as _length
    pre = file.read(start, 5 * word, "pre-header")
    pre_size, struct_size, log_size, data_size, _associated = (
        decode(pre, i * word) for i in range(5)
    )
    needed_struct = 140 if word == 4 else 208
    if pre_size != 5 * word or not needed_struct <= struct_size <= 4096:
        what = "an AIM v030" if word == 8 else "an AIM (v020 or v030)"
        raise ImageError(
            file.path,
            f"not {what} file: the pre-header lengths ({pre_size}, {struct_size}) are not "
            f"those of one",
        )
    if not 0 <= log_size <= MAX_LOG_BYTES or data_size < 0:
        raise ImageError(
            file.path, f"corrupt header: processing log {log_size} bytes, data {data_size}"
        )
    struct_start = start + pre_size
    return Layout(
        version, word, struct_start, struct_size, log_size, struct_start + struct_size + log_size
    )


def _length(data: bytes, at: int, word: int) -> int:
    """A length field: unsigned in v020 (pixel data of 2 GiB and more), signed 64-bit in
    v030."""
    return scanco.int64(data, at) if word == 8 else scanco.uint32(data, at)


def _storage(
    file: scanco.OpenFile, layout: Layout, code: int, size: tuple[int, int, int]
) -> tuple[str, int]:
    """The pixels' numpy type and how many bytes they take in the file, for the AIM data
    type ``code``; ``ImageError`` for a type this reader does not support."""
    if code in PLAIN_TYPES:
        data_type = PLAIN_TYPES[code]
        return data_type, math.prod(size) * np.dtype(data_type).itemsize
    if code in (RUN_LENGTH_BITS, RUN_LENGTH_BYTES):
        # Compressed pixels start with their length in bytes (this integer included).
        length = file.read(layout.pixels_at, layout.word, "pixel data length")
        stored = _length(length, 0, layout.word)
        if stored < layout.word:
            raise ImageError(file.path, f"corrupt pixels: compressed length {stored} bytes")
        return "int8", stored
    kind = UNSUPPORTED_TYPES.get(code, "unknown")
    raise ImageError(
        file.path, f"AIM data type 0x{code:08x} ({kind}) is not supported by this Runyard"
    )


def _pixels(
    file: scanco.OpenFile, layout: Layout, code: int, size: tuple[int, int, int], stored: int
) -> np.ndarray[Any, Any]:
    """The pixels: a read-only memory map, or decompressed into memory."""
    if code in PLAIN_TYPES:
        dtype = np.dtype(PLAIN_TYPES[code]).newbyteorder("<")
        return scanco.mapped_pixels(file, layout.pixels_at, size, dtype)
    compressed = file.read(layout.pixels_at, stored, "compressed pixels")
    return _decompress(file, code, compressed, size, layout.word)


def _source(version: str, code: int, fields: dict[str, Any], log: dict[str, str]) -> dict[str, Any]:
    """The header's fields, as the image's ``source``: the structure's and the processing
    log's (mu scaling, density calibration, dates, patient and measurement)."""
    return {
        "format": "AIM",
        "version": version,
        "aim_type": f"0x{code:08x}",
        "position": list(fields["position"]),
        "created": scanco.log_date(log.get("Original Creation-Date", "")),
        "modified": scanco.log_date(log.get("Time", "")),
        "patient_name": log.get("Patient Name", ""),
        "patient_index": int(_number(log, "Index Patient", 0)),
        "measurement_index": int(_number(log, "Index Measurement", 0)),
        "scanner_id": int(_number(log, "Scanner ID", 0)),
        "site": int(_number(log, "Site", 0)),
        "mu_scaling": _number(log, "Mu_Scaling", 1.0),
        "mu_water": _number(log, "HU: mu water", 0.0),
        "density_unit": log.get("Density: unit", ""),
        "density_slope": _number(log, "Density: slope", 1.0),
        "density_intercept": _number(log, "Density: intercept", 0.0),
        "calibration_data": log.get("Calibration Data", ""),
        "default_unit_type": int(_number(log, "Calib. default unit type", 0)),
    }


def _structure(header: bytes, word: int) -> dict[str, Any]:
    """The image structure's fields. v020: 5 ints (version, log, data, id, reference), the
    type, 7 int triples, element size as 3 VAX floats (mm). v030: 3 ints, the type, 7 int64
    triples, element size as 3 int64 (nanometres, i.e. 1e-6 mm)."""
    if word == 4:
        type_at, triples_at = 20, 24
    else:
        type_at, triples_at = 12, 16

    def triple(index: int) -> tuple[int, int, int]:
        at = triples_at + index * 3 * word
        decode = scanco.int64 if word == 8 else scanco.int32
        return (decode(header, at), decode(header, at + word), decode(header, at + 2 * word))

    sizes_at = triples_at + 7 * 3 * word
    if word == 4:
        spacing = tuple(scanco.vax_f(header, sizes_at + 4 * i) for i in range(3))
    else:
        spacing = tuple(scanco.int64(header, sizes_at + 8 * i) * 1e-6 for i in range(3))
    return {
        "type": scanco.int32(header, type_at) & 0xFFFFFFFF,
        "position": triple(0),
        "dimension": triple(1),
        # As ITK does, a spacing of 0 (not recorded) is taken as 1.
        "element_size": tuple(s if s != 0 else 1.0 for s in spacing),
    }


def _log(text: str) -> dict[str, str]:
    """The processing log's ``key  value`` lines (key and value apart by two or more spaces;
    lines starting with ``!`` are comments)."""
    entries: dict[str, str] = {}
    for line in text.split("\0", 1)[0].splitlines():
        if not line or line.startswith("!") or "  " not in line:
            continue
        key, value = line.split("  ", 1)
        entries.setdefault(key.strip(), value.strip())
    return entries


def _number(log: dict[str, str], key: str, default: float) -> float:
    try:
        return float(log[key].split()[0])
    except (KeyError, IndexError, ValueError):
        return default


def _decompress(
    file: scanco.OpenFile, code: int, data: bytes, size: tuple[int, int, int], word: int
) -> np.ndarray[Any, Any]:
    """Run-length compressed pixels, expanded into memory. The data starts with its own
    length (one header integer)."""
    body = np.frombuffer(data, dtype=np.uint8)[word:]
    count = math.prod(size)
    if code == RUN_LENGTH_BYTES:
        pairs = body[: body.size // 2 * 2].reshape(-1, 2)
        values = np.repeat(pairs[:, 1].view(np.int8), pairs[:, 0])
    else:  # RUN_LENGTH_BITS: two values, then run lengths alternating between them
        if body.size < 2:
            raise ImageError(file.path, "corrupt pixels: the run-length data is empty")
        lengths = body[2:].astype(np.int64)
        # A length of 255 means 254 and no switch of value.
        switches = lengths != 255
        lengths[~switches] = 254
        which = np.concatenate(([0], np.cumsum(switches)[:-1])) % 2 if lengths.size else lengths
        values = np.repeat(body[:2].view(np.int8)[which], lengths)
    if values.size < count:
        raise ImageError(
            file.path,
            f"corrupt pixels: the run-length data gives {values.size} of {count} voxels",
        )
    return values[:count].reshape(size, order="F")
