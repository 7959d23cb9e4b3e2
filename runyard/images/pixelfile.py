"""An image's pixel file (``.raw``): mapping it into memory, creating it, and writing pixels
into one without holding them in memory whole.

The file is the pixels and nothing else: little-endian values of the image's data type, the
first axis varying fastest (Fortran order), so a memory map of it in Fortran order is the
image's pixel array.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from runyard.images.model import ImageError, ImageMetadata

WRITE_CHUNK = 64 << 20  # pixels are written a slab of at most about this many bytes at a time
_COPY_CHUNK = 1 << 30  # bytes per copy_file_range call


def file_dtype(metadata: ImageMetadata) -> np.dtype[Any]:
    return np.dtype(metadata.data_type).newbyteorder("<")


def map_pixels(raw: Path, metadata: ImageMetadata) -> np.ndarray[Any, Any] | None:
    """The pixels of the file ``raw`` as a read-only memory map; None if there is no such
    file; ``ImageError`` if its length is not that of the pixels ``metadata`` describes."""
    dtype = file_dtype(metadata)
    expected = metadata.voxel_count * dtype.itemsize
    try:
        actual = raw.stat().st_size
    except FileNotFoundError:
        return None
    if actual != expected:
        state = "truncated" if actual < expected else "too long"
        raise ImageError(
            raw,
            f"{state}: the metadata says {'x'.join(map(str, metadata.size))} "
            f"{metadata.data_type} pixels, {expected} bytes; the file has {actual}",
        )
    return np.memmap(raw, dtype=dtype, mode="r", shape=metadata.size, order="F")


def create_pixels(raw: Path, metadata: ImageMetadata) -> np.ndarray[Any, Any]:
    """A new pixel file ``raw`` of zeros (sparse: nothing is written yet), mapped writable."""
    return np.memmap(raw, dtype=file_dtype(metadata), mode="w+", shape=metadata.size, order="F")


def mapped_range(pixels: np.ndarray[Any, Any]) -> tuple[Path, int] | None:
    """``(file, offset)`` when ``pixels`` are a whole memory map of a file that holds them
    as a pixel file does (little-endian, first axis fastest), so that the file's bytes from
    ``offset`` are the pixel file; None otherwise (an array in memory, a view of a map)."""
    if not isinstance(pixels, np.memmap) or not isinstance(pixels.base, mmap.mmap):
        return None
    if pixels.filename is None or not pixels.flags.f_contiguous:
        return None
    if pixels.dtype.newbyteorder("<") != pixels.dtype:
        return None
    return Path(pixels.filename), int(pixels.offset)


def write_pixels(f: BinaryIO, pixels: np.ndarray[Any, Any]) -> None:
    """Write ``pixels`` as a pixel file holds them. A whole memory map of a file laid out
    the same way is copied file to file (by the kernel where it can); anything else is
    written in slabs along the last axis, so a memory map is never copied into memory
    whole."""
    f.flush()
    source = mapped_range(pixels)
    if source is not None:
        if isinstance(pixels, np.memmap):
            pixels.flush()
        _copy_range(source[0], source[1], int(pixels.nbytes), f)
        return
    dtype = pixels.dtype.newbyteorder("<")
    slab_bytes = pixels.nbytes // max(pixels.shape[-1], 1)
    step = max(1, WRITE_CHUNK // max(slab_bytes, 1))
    for start in range(0, pixels.shape[-1], step):
        slab = np.asarray(pixels[..., start : start + step], dtype=dtype)
        f.write(slab.tobytes(order="F"))


def _copy_range(source: Path, offset: int, length: int, f: BinaryIO) -> None:
    with open(source, "rb") as src:
        done = 0
        try:
            while done < length:
                copied = os.copy_file_range(
                    src.fileno(), f.fileno(), min(_COPY_CHUNK, length - done), offset + done
                )
                if copied == 0:
                    raise ImageError(source, "truncated while its pixels were copied")
                done += copied
        except (AttributeError, OSError):  # no copy_file_range here: copy through memory
            f.seek(0, os.SEEK_END)
            src.seek(offset + done)
            remaining = length - done
            while remaining:
                chunk = src.read(min(WRITE_CHUNK, remaining))
                if not chunk:
                    raise ImageError(source, "truncated while its pixels were copied") from None
                f.write(chunk)
                remaining -= len(chunk)
        f.seek(0, os.SEEK_END)


def write_atomically(target: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write ``target`` through ``write`` under a temporary name, then rename it: a reader
    never sees half a file, and an error leaves no file behind."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as f:
            write(f)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


__all__ = [
    "create_pixels",
    "file_dtype",
    "map_pixels",
    "mapped_range",
    "write_atomically",
    "write_pixels",
]
