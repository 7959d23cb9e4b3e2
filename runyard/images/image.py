"""``Image``: an image's metadata and its pixels, and the OMNI files that store them (an
``.omni`` JSON file beside a ``.raw`` file of pixels; docs/images.md).

Pixels are a numpy array whose shape is the image's ``size``, indexed in the order of its
``axes`` (``pixels[x, y, z]`` for ``"XYZ"``). In the ``.raw`` file the first axis varies
fastest, so a loaded image's pixels are a read-only ``np.memmap`` of that file in Fortran
order: opening an image of any size reads only its ``.omni`` file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runyard.images.model import (
    DATA_TYPES,
    Calibration,
    ImageError,
    ImageMetadata,
    metadata_from_json,
    metadata_to_json,
)

PathArg = str | os.PathLike[str]
OMNI_SUFFIX = ".omni"
RAW_SUFFIX = ".raw"
_WRITE_CHUNK = 64 << 20  # pixels are written a slab of at most about this many bytes at a time


class Image:
    """An image: ``metadata`` (an ``ImageMetadata``) and ``pixels``. ``metadata_path`` is the
    ``.omni`` file it was loaded from or last saved to (None for an image made in memory or
    imported from a Scanco file). An image imported with ``load_pixels=False`` has no pixels:
    its ``pixels`` raise ``ImageError``."""

    def __init__(
        self,
        metadata: ImageMetadata,
        pixels: np.ndarray[Any, Any] | None,
        *,
        metadata_path: PathArg | None = None,
        origin_path: PathArg | None = None,
    ) -> None:
        if pixels is not None:
            if tuple(pixels.shape) != metadata.size:
                raise ValueError(
                    f"pixels have shape {tuple(pixels.shape)}; the image's size is {metadata.size}"
                )
            if pixels.dtype.newbyteorder("=") != np.dtype(metadata.data_type):
                raise ValueError(
                    f"pixels are {pixels.dtype}; the image's data type is {metadata.data_type}"
                )
        self.metadata = metadata
        self._pixels = pixels
        self.metadata_path = Path(metadata_path) if metadata_path is not None else None
        # The file the image was read from: its .omni, or the Scanco file it was imported from.
        self.origin_path = Path(origin_path) if origin_path is not None else self.metadata_path
        self.missing_pixels = "only the header was read: import it with load_pixels=True"

    # -- making images ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: PathArg) -> Image:
        """Open the OMNI image whose ``.omni`` file is ``path``; its pixels are a read-only
        memory map of the ``.raw`` file named in it (nothing of them is read yet)."""
        return load(path)

    @classmethod
    def from_array(
        cls,
        pixels: Any,
        *,
        axes: str = "XYZ",
        spacing: Sequence[float] = (),
        unit: str = "mm",
        origin: Sequence[float] = (),
        calibrations: Iterable[Calibration] = (),
    ) -> Image:
        """An image of the array ``pixels`` (indexed in the order of ``axes``)."""
        array = np.asarray(pixels)
        metadata = ImageMetadata(
            axes=axes,
            size=tuple(array.shape),
            data_type=_data_type_name(array.dtype),
            spacing=tuple(spacing),
            unit=unit,
            origin=tuple(origin),
            calibrations=tuple(calibrations),
        )
        return cls(metadata, array)

    def derive_image(
        self,
        data_type: str | np.dtype[Any] | type | None = None,
        pixels: Any = None,
        *,
        calibrations: Iterable[Calibration] = (),
    ) -> Image:
        """A new image with this one's geometry (axes, size, spacing, unit, origin) and
        ``pixels`` (an array of the same shape), or zeros of ``data_type`` (default: this
        image's). ``pixels`` are converted to ``data_type`` when both are given. It has no
        calibrations unless given (``calibrations=image.metadata.calibrations`` keeps them)
        and no file until saved."""
        return derive_image(self, data_type, pixels, calibrations=calibrations)

    # -- what it is ---------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, ...]:
        """The number of pixels along each axis, like ``(x, y, z)``."""
        return self.metadata.size

    @property
    def axes(self) -> str:
        return self.metadata.axes

    @property
    def spacing(self) -> tuple[float, ...]:
        return self.metadata.spacing

    @property
    def unit(self) -> str:
        return self.metadata.unit

    @property
    def origin(self) -> tuple[float, ...]:
        return self.metadata.origin

    @property
    def data_type(self) -> np.dtype[Any]:
        return np.dtype(self.metadata.data_type)

    @property
    def calibrations(self) -> tuple[Calibration, ...]:
        return self.metadata.calibrations

    def calibration(self, name: str) -> Calibration:
        """The calibration called ``name`` (``"mu"``, ``"density"``) or in unit ``name``."""
        return self.metadata.calibration(name)

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.metadata.source)

    @property
    def raw_path(self) -> Path | None:
        """The ``.raw`` file beside ``metadata_path`` (None until the image is saved)."""
        if self.metadata_path is None:
            return None
        return self.metadata_path.with_name(_raw_name(self.metadata_path))

    @property
    def has_pixels(self) -> bool:
        return self._pixels is not None

    @property
    def pixels(self) -> np.ndarray[Any, Any]:
        """The pixels, shaped like ``size``; read-only for a loaded or imported image."""
        if self._pixels is None:
            raise ImageError(self.origin_path or "image", self.missing_pixels)
        return self._pixels

    def __repr__(self) -> str:
        where = f" from {self.origin_path}" if self.origin_path else ""
        return (
            f"<Image {self.axes} {'x'.join(map(str, self.size))} {self.metadata.data_type}{where}>"
        )

    # -- saving -------------------------------------------------------------------------------

    def save(self, path: PathArg) -> Path:
        """Write the image as OMNI: ``path`` (which must end in ``.omni``) and the ``.raw``
        file beside it, each written to a temporary name and renamed, so that a reader never
        sees half a file. Afterwards ``metadata_path`` is ``path``. Returns ``path``."""
        target = Path(path)
        if target.suffix.lower() != OMNI_SUFFIX:
            raise ImageError(target, f"an OMNI image is saved to a name ending in {OMNI_SUFFIX}")
        pixels = self.pixels
        raw = target.with_name(_raw_name(target))
        _write_atomically(raw, lambda f: _write_pixels(f, pixels))
        text = json.dumps(metadata_to_json(self.metadata, raw.name), indent=1) + "\n"
        _write_atomically(target, lambda f: f.write(text.encode()))
        self.metadata_path = target
        self.origin_path = self.origin_path or target
        return target


def load(path: PathArg) -> Image:
    """``Image.load``: the OMNI image of the ``.omni`` file ``path``. Without its ``.raw``
    file the image has its metadata but no pixels (``pixels`` says the file is missing); a
    ``.raw`` file of the wrong length is refused at once."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImageError(where, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(where, f"cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImageError(where, f"not OMNI metadata: not valid JSON ({exc})") from None
    metadata, raw_file = metadata_from_json(data, where)
    raw = where.with_name(raw_file)
    dtype = np.dtype(metadata.data_type).newbyteorder("<")
    expected = metadata.voxel_count * dtype.itemsize
    try:
        actual = raw.stat().st_size
    except FileNotFoundError:
        # Metadata alone is an image still (a search reads sizes from .omni files only).
        image = Image(metadata, None, metadata_path=where)
        image.missing_pixels = f"its pixel file {raw_file} is missing (expected beside it)"
        return image
    if actual != expected:
        state = "truncated" if actual < expected else "too long"
        raise ImageError(
            raw,
            f"{state}: the metadata says {'x'.join(map(str, metadata.size))} "
            f"{metadata.data_type} pixels, {expected} bytes; the file has {actual}",
        )
    pixels = np.memmap(raw, dtype=dtype, mode="r", shape=metadata.size, order="F")
    return Image(metadata, pixels, metadata_path=where)


def derive_image(
    image: Image,
    data_type: str | np.dtype[Any] | type | None = None,
    pixels: Any = None,
    *,
    calibrations: Iterable[Calibration] = (),
) -> Image:
    """``Image.derive_image``: a new image with the geometry of ``image``."""
    if pixels is None:
        dtype = np.dtype(data_type) if data_type is not None else image.data_type
        array = np.zeros(image.size, dtype=dtype, order="F")
    else:
        array = np.asarray(pixels)
        if data_type is not None:
            array = array.astype(np.dtype(data_type), copy=False)
        if tuple(array.shape) != image.size:
            raise ValueError(
                f"derived pixels have shape {tuple(array.shape)}; the image's size is {image.size}"
            )
    metadata = dataclasses.replace(
        image.metadata,
        data_type=_data_type_name(array.dtype),
        calibrations=tuple(calibrations),
        source={},
    )
    return Image(metadata, array)


def _data_type_name(dtype: np.dtype[Any]) -> str:
    name = dtype.newbyteorder("=").name
    if name not in DATA_TYPES:
        raise ValueError(f"pixels of type {dtype} cannot be stored; use one of {DATA_TYPES}")
    return name


def _raw_name(omni: Path) -> str:
    return omni.stem + RAW_SUFFIX


def _write_pixels(f: Any, pixels: np.ndarray[Any, Any]) -> None:
    """The pixels as the .raw file holds them: little-endian, first axis fastest. Written
    in slabs along the last axis, so a memory-mapped image is never copied whole."""
    dtype = pixels.dtype.newbyteorder("<")
    slab_bytes = pixels.nbytes // max(pixels.shape[-1], 1)
    step = max(1, _WRITE_CHUNK // max(slab_bytes, 1))
    for start in range(0, pixels.shape[-1], step):
        slab = np.asarray(pixels[..., start : start + step], dtype=dtype)
        f.write(slab.tobytes(order="F"))


def _write_atomically(target: Path, write: Any) -> None:
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as f:
            write(f)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
