"""Image previews for the web UI: one slice of an image, cut from its memory-mapped pixels
(nothing else of the image is read) and encoded as a PNG, grey levels through a window and
level, or a segmentation as a coloured, see-through overlay.

The images are those of ``Image`` values (docs/images.md): an OMNI image in the file store
(its ``.omni`` and ``.raw`` stored files), or an image file in User Data (``.omni`` beside its
``.raw``, ``.aim``, ``.isq``).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

from runyard.errors import InvalidInput
from runyard.images import Image, ImageError, open_image
from runyard.images.model import metadata_from_json
from runyard.operations.files import FileManager
from runyard.operations.userdata import UserDataManager
from runyard.operations.userdata_tokens import UserDataToken

AXES = ("x", "y", "z")
MAX_SIDE = 4096  # pixels along either side of a slice, at most
THUMBNAIL_SIDE = 96  # pixels along the long side of a thumbnail, at most
# Overlay colours of the labels 1..n of a segmentation (RGBA), repeated after the last.
LABEL_COLOURS = np.array(
    [[255, 60, 60, 130], [60, 200, 255, 130], [255, 210, 0, 130], [120, 255, 120, 130]],
    dtype=np.uint8,
)


def filestore_image(files: FileManager, file_id: str, raw_file_id: str) -> Image:
    """The OMNI image of the stored ``.omni`` file ``file_id`` whose ``.raw`` file is the
    stored ``raw_file_id`` (as an ``Image`` value of the file store names them)."""
    _, omni = files.get(file_id)
    _, raw = files.get(raw_file_id)
    try:
        data = json.loads(omni.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageError(omni, f"not OMNI metadata: {exc}") from None
    metadata, _ = metadata_from_json(data, file_id)
    dtype = np.dtype(metadata.data_type).newbyteorder("<")
    expected = metadata.voxel_count * dtype.itemsize
    if raw.stat().st_size != expected:
        raise InvalidInput(
            f"stored file {raw_file_id} has {raw.stat().st_size} bytes, not the {expected} "
            f"of the pixels of {file_id}: not its .raw file",
            raw_file_id=raw_file_id,
        )
    pixels = np.memmap(raw, dtype=dtype, mode="r", shape=metadata.size, order="F")
    return Image(metadata, pixels)


def userdata_image(userdata: UserDataManager, path: str) -> Image:
    """The image file ``path`` of User Data (for an admin: no token is involved)."""
    return open_image(userdata.real_file(path))


def userdata_header(userdata: UserDataManager, token: UserDataToken, path: str) -> dict[str, Any]:
    """What the header of the User Data image ``path`` says (its pixels are not read, so
    this takes milliseconds whatever the size): for a search that makes ``Image`` values
    without fetching the files."""
    real = userdata.readable(token, path)
    try:
        image = open_image(real, load_pixels=False)
    except ImageError as exc:
        raise ImageError(path, exc.problem) from None  # the virtual path, not the real one
    return {
        "path": path,
        "size": list(image.size),
        "spacing": list(image.spacing),
        "unit": image.unit,
        "data_type": image.metadata.data_type,
    }


def describe(image: Image) -> dict[str, Any]:
    """What a slice viewer needs first: the size, the geometry, the data type and a window
    and level that show the middle slice across z from its 1st to its 99th percentile."""
    size = _size3(image)
    middle = slice_of(image, "z", size[2] // 2)
    low, high = percentiles(middle)
    return {
        "size": list(size),
        "spacing": list(image.spacing) + [1.0] * (3 - len(image.spacing)),
        "unit": image.unit,
        "data_type": image.metadata.data_type,
        "window": max(high - low, 1e-9),
        "level": (high + low) / 2,
    }


def thumbnail(image: Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small grey PNG of the middle slice across z, at most ``side`` pixels on its long
    side (every n-th pixel), from its 1st to its 99th percentile: a runs table's cell."""
    middle = slice_of(image, "z", _size3(image)[2] // 2)
    step = max(1, -(-max(middle.shape) // side))
    low, high = percentiles(middle)
    return grey_png(middle[::step, ::step], high - low, (high + low) / 2)


def slice_of(image: Image, axis: str, index: int) -> np.ndarray[Any, Any]:
    """The slice ``index`` across ``axis``, as rows x columns of the screen: a z slice has
    y rows and x columns; a y slice z rows and x columns; an x slice z rows and y columns."""
    if axis not in AXES:
        raise InvalidInput(f"axis must be x, y or z, not {axis!r}", axis=axis)
    size = _size3(image)
    along = AXES.index(axis)
    if not 0 <= index < size[along]:
        raise InvalidInput(
            f"slice {index} across {axis} is out of the image: 0 to {size[along] - 1}",
            index=index,
        )
    pixels = image.pixels
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    cut = np.take(pixels, index, axis=along)  # reads only that slice of the memory map
    if max(cut.shape) > MAX_SIDE:
        step = -(-max(cut.shape) // MAX_SIDE)
        cut = cut[::step, ::step]
    return np.ascontiguousarray(cut.T)


def grey_png(cut: np.ndarray[Any, Any], window: float, level: float) -> bytes:
    """The slice through the window ``level - window/2`` .. ``level + window/2``, black to
    white, as an 8-bit grey PNG."""
    if not window > 0:
        raise InvalidInput(f"the window must be more than 0, not {window}", window=window)
    low = level - window / 2
    scaled = (cut.astype(np.float64) - low) * (255.0 / window)
    return png(np.clip(scaled, 0, 255).astype(np.uint8))


def overlay_png(cut: np.ndarray[Any, Any]) -> bytes:
    """A segmentation slice as a see-through RGBA PNG: label 0 clear, labels 1, 2, ... in
    colours."""
    labels = cut.astype(np.int64)
    colours = LABEL_COLOURS[(np.maximum(labels, 1) - 1) % len(LABEL_COLOURS)]
    colours[labels <= 0] = 0
    return png(colours)


def png(pixels: np.ndarray[Any, Any]) -> bytes:
    """A PNG of 8-bit pixels: rows x columns (grey) or rows x columns x 4 (RGBA)."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError("png() takes uint8 rows x columns (x 4) pixels")
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 6
    rows = pixels.reshape(height, -1)
    # Every row starts with its filter type: 0, none.
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw, 6)),
            _chunk(b"IEND", b""),
        ]
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _size3(image: Image) -> tuple[int, int, int]:
    size = tuple(image.size)
    if len(size) == 2:
        return (size[0], size[1], 1)
    if len(size) != 3:
        raise InvalidInput(f"only 2D and 3D images have slices; this one is {len(size)}D")
    return (size[0], size[1], size[2])


def percentiles(cut: np.ndarray[Any, Any]) -> tuple[float, float]:
    if cut.size == 0:
        return 0.0, 1.0
    sample = cut.ravel()[:: max(1, cut.size // 65536)].astype(np.float64)
    low, high = np.percentile(sample, [1, 99])
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    if high <= low:
        high = low + 1
    return float(low), float(high)
