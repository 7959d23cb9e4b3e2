"""``Image``: an image's metadata and its pixels, and the OMNI files that store them (an
``.omni`` JSON file beside a ``.raw`` file of pixels; docs/images.md).

Pixels are a numpy array whose shape is the image's ``size``, indexed in the order of its
``axes`` (``pixels[x, y, z]`` for ``"XYZ"``). In the ``.raw`` file the first axis varies
fastest, so a loaded image's pixels are a read-only ``np.memmap`` of that file in Fortran
order: opening an image of any size reads only its ``.omni`` file.

XamFlow's ``omni.Image`` is this class: its constructor also takes XamFlow's
``(metadata_path, metadata)`` (the end of this module), and ``derive_image`` XamFlow's
``(derived_omni_path, derived_raw_path, override_metadata={})`` (runyard.images.derive).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from runyard.images.calibration import Calibration
from runyard.images.model import (
    DATA_TYPES,
    FORMAT,
    FORMAT_VERSION,
    ImageError,
    ImageMetadata,
    metadata_from_json,
    metadata_to_json,
)
from runyard.images.pixelfile import map_pixels, mapped_range, write_atomically, write_pixels

PathArg = str | os.PathLike[str]
DataTypeArg = str | np.dtype[Any] | type | None
OMNI_SUFFIX = ".omni"
RAW_SUFFIX = ".raw"


class Image:
    """An image: ``metadata`` (an ``ImageMetadata``) and ``pixels``. ``metadata_path`` is the
    ``.omni`` file it was loaded from or last saved to (None for an image made in memory or
    imported from a Scanco file); ``raw_path`` its pixel file. An image imported with
    ``load_pixels=False`` has no pixels: its ``pixels`` raise ``ImageError``.

    ``Image(metadata_path, metadata)`` (XamFlow's form) is the image that the ``.omni``
    metadata dict ``metadata`` describes at ``metadata_path``: its pixels are those of the
    ``raw_file`` it names beside that path, memory-mapped, if there is one yet."""

    @overload
    def __init__(
        self,
        metadata: ImageMetadata,
        pixels: np.ndarray[Any, Any] | None = None,
        *,
        metadata_path: PathArg | None = None,
        origin_path: PathArg | None = None,
        raw_file: str | None = None,
    ) -> None: ...

    @overload
    def __init__(self, metadata: PathArg, pixels: Mapping[str, Any]) -> None: ...

    @overload
    def __init__(self, metadata: Mapping[str, Any], *, metadata_path: PathArg) -> None: ...

    def __init__(
        self,
        metadata: ImageMetadata | PathArg | Mapping[str, Any],
        pixels: np.ndarray[Any, Any] | Mapping[str, Any] | None = None,
        *,
        metadata_path: PathArg | None = None,
        origin_path: PathArg | None = None,
        raw_file: str | None = None,
    ) -> None:
        self.missing_pixels = "only the header was read: import it with load_pixels=True"
        if not isinstance(metadata, ImageMetadata):
            path, data = _xamflow_arguments(metadata, pixels, metadata_path)
            metadata, raw_file = metadata_from_json(_with_defaults(path, data), path)
            pixels = map_pixels(path.with_name(raw_file), metadata)
            metadata_path = path
            self.missing_pixels = f"its pixel file {raw_file} is missing (expected beside it)"
        if isinstance(pixels, Mapping):
            raise TypeError("Image(metadata, pixels): pixels must be a numpy array or None")
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
        self._raw_file = raw_file
        if self.metadata_path is not None and raw_file is None:
            self._raw_file = self.metadata_path.stem + RAW_SUFFIX
        # The file the image was read from: its .omni, or the Scanco file it was imported from.
        self.origin_path = Path(origin_path) if origin_path is not None else self.metadata_path

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
        default_pixel_calibration_unit_type: str | None = None,
        kind: str = "image",
    ) -> Image:
        """An image of the array ``pixels`` (indexed in the order of ``axes``)."""
        array = np.asarray(pixels)
        metadata = ImageMetadata(
            kind=kind,
            axes=axes,
            size=tuple(array.shape),
            data_type=data_type_name(array.dtype),
            spacing=tuple(spacing),
            unit=unit,
            origin=tuple(origin),
            calibrations=tuple(calibrations),
            default_pixel_calibration_unit_type=default_pixel_calibration_unit_type,
        )
        return cls(metadata, array)

    @overload
    def derive_image(
        self,
        data_type: DataTypeArg = None,
        pixels: Any = None,
        *,
        calibrations: Iterable[Calibration] = (),
    ) -> Image: ...

    @overload
    def derive_image(
        self,
        derived_omni_path: os.PathLike[str],
        derived_raw_path: PathArg | None = None,
        override_metadata: Mapping[str, Any] | None = None,
    ) -> Image: ...

    def derive_image(self, *args: Any, **kwargs: Any) -> Image:
        """A new image with this one's geometry (axes, size, spacing, unit, origin) and
        ``pixels`` (an array of the same shape), or zeros of ``data_type`` (default: this
        image's). ``pixels`` are converted to ``data_type`` when both are given. It has no
        calibrations unless given (``calibrations=image.calibrations`` keeps them) and no
        file until saved.

        Given paths, XamFlow's ``derive_image(derived_omni_path, derived_raw_path,
        override_metadata={})``: ``derive_file`` (all metadata inherited, pixels in a new
        file)."""
        from runyard.images import derive

        if derive.names_files(args, kwargs):
            return derive.derive_files(self, *args, **kwargs)
        return derive.derive_image(self, *args, **kwargs)

    def derive_file(
        self,
        path: PathArg,
        raw_path: PathArg | None = None,
        *,
        segments: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> Image:
        """A new image in files: ``path`` (an ``.omni`` file, written now) and ``raw_path``
        (default: beside it, ``.raw``; in the same folder), whose pixels are zeros, a
        writable memory map of that file: fill them, then ``save()``. It inherits all of this
        image's metadata (calibrations and source too), except that ``segments`` makes it a
        label image (``kind`` ``"segments"``, ``uint8``, no calibrations); ``metadata``
        overrides fields of the ``.omni`` JSON (``{"data_type": "float32"}``)."""
        from runyard.images.derive import derive_file

        return derive_file(self, path, raw_path, segments=segments, metadata=metadata)

    def derive_segments(
        self,
        derived_omni_path: PathArg,
        derived_raw_path: PathArg | None = None,
        override_metadata: Mapping[str, Any] | None = None,
    ) -> Image:
        """XamFlow's ``derive_segments``: ``derive_file(..., segments=True)``, a label image
        (``uint8`` unless overridden) with this one's geometry."""
        return self.derive_file(
            derived_omni_path, derived_raw_path, segments=True, metadata=override_metadata
        )

    # -- what it is ---------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, ...]:
        """The number of pixels along each axis, like ``(x, y, z)``."""
        return self.metadata.size

    @property
    def axes(self) -> str:
        """One letter per axis: X Y Z spatial, C channel, W wavelength, F frequency, T time."""
        return self.metadata.axes

    @property
    def kind(self) -> str:
        """``"image"``, or ``"segments"`` for a label image."""
        return self.metadata.kind

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
    def pixels_count(self) -> int:
        """The number of pixels (the product of ``size``)."""
        return self.metadata.voxel_count

    @property
    def size_3d_tuple(self) -> tuple[int, int, int]:
        """The size along X, Y and Z (1 for an axis the image has not)."""
        x, y, z = (self.size[self.axes.index(a)] if a in self.axes else 1 for a in "XYZ")
        return (x, y, z)

    @property
    def calibrations(self) -> tuple[Calibration, ...]:
        return self.metadata.calibrations

    def calibration(self, key: str) -> Calibration:
        """The first calibration of unit type ``key`` (``"density"``, or ``"mu"``/``"HU"``
        for ``linear_attenuation``/``hounsfield``), or in unit ``key`` (``"mg HA/ccm"``)."""
        return self.metadata.calibration(key)

    def pixel_calibrations_of_unit_type(self, unit_type: str | None) -> list[Calibration]:
        """The calibrations of ``unit_type`` (or its alias ``"mu"``, ``"HU"``), in order; an
        empty list if there is none (or ``unit_type`` is None: no default unit type)."""
        return list(self.metadata.calibrations_of(unit_type)) if unit_type else []

    @property
    def default_pixel_calibration_unit_type(self) -> str | None:
        """The unit type of the calibration to use by default, or None."""
        return self.metadata.default_pixel_calibration_unit_type

    @property
    def additional_pixels_filenames(self) -> list[str]:
        """Further files of pixel data the ``.omni`` names (none for Runyard's images)."""
        return list(self.metadata.additional_pixels_filenames)

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.metadata.source)

    @property
    def raw_path(self) -> Path | None:
        """The pixel file beside ``metadata_path`` (None until the image is saved)."""
        if self.metadata_path is None or self._raw_file is None:
            return None
        return self.metadata_path.with_name(self._raw_file)

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

    def save(self, path: PathArg | None = None) -> Path:
        """Write the image as OMNI: ``path`` (which must end in ``.omni``; default: its
        ``metadata_path``) and the ``.raw`` file beside it, each written to a temporary name
        and renamed, so that a reader never sees half a file. Pixels that are that file
        already (a loaded or derived image saved in place) are flushed, not copied. Saved
        elsewhere, it names no ``additional_pixels_filenames``. Afterwards ``metadata_path``
        is ``path``. Returns ``path``."""
        if path is None and self.metadata_path is None:
            raise ImageError(
                self.origin_path or "image", "has no .omni file yet: save it to a path"
            )
        target = Path(path) if path is not None else self.metadata_path
        assert target is not None
        if target.suffix.lower() != OMNI_SUFFIX:
            raise ImageError(target, f"an OMNI image is saved to a name ending in {OMNI_SUFFIX}")
        pixels = self.pixels
        in_place = self.raw_path is not None and same_file(target, self.metadata_path)
        raw = self.raw_path if in_place and self.raw_path else target.with_name(raw_name(target))
        mapped = mapped_range(pixels)
        if mapped is not None and mapped[1] == 0 and same_file(mapped[0], raw):
            if isinstance(pixels, np.memmap) and pixels.flags.writeable:
                pixels.flush()  # the pixels are that file
        else:
            write_atomically(raw, lambda f: write_pixels(f, pixels))
        if not in_place:  # the pixels are whole in the .raw: no further pixel files there
            self.metadata = dataclasses.replace(self.metadata, additional_pixels_filenames=())
        text = json.dumps(metadata_to_json(self.metadata, raw.name), indent=1) + "\n"
        write_atomically(target, lambda f: f.write(text.encode()))
        self.metadata_path, self._raw_file = target, raw.name
        self.origin_path = self.origin_path or target
        return target

    def flush(self) -> None:
        """Write changed pixels of a writable memory map (a derived image) to its file."""
        if isinstance(self._pixels, np.memmap) and self._pixels.flags.writeable:
            self._pixels.flush()


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
    image = Image(
        metadata,
        map_pixels(where.with_name(raw_file), metadata),
        metadata_path=where,
        raw_file=raw_file,
    )
    # Metadata alone is an image still (a search reads sizes from .omni files only).
    image.missing_pixels = f"its pixel file {raw_file} is missing (expected beside it)"
    return image


def data_type_name(dtype: np.dtype[Any]) -> str:
    name = dtype.newbyteorder("=").name
    if name not in DATA_TYPES:
        raise ValueError(f"pixels of type {dtype} cannot be stored; use one of {DATA_TYPES}")
    return name


def raw_name(omni: Path) -> str:
    return omni.stem + RAW_SUFFIX


def same_file(a: PathArg | None, b: PathArg | None) -> bool:
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


# -- XamFlow's signatures (omni.Image), told apart from Runyard's by their arguments ----------


def _xamflow_arguments(
    first: PathArg | Mapping[str, Any], second: Any, metadata_path: PathArg | None
) -> tuple[Path, Mapping[str, Any]]:
    """``(metadata_path, metadata)`` of ``Image(metadata_path, metadata)``, given by position
    or by keyword (``Image(metadata_path=..., metadata=...)``)."""
    if isinstance(first, Mapping) and metadata_path is not None and second is None:
        return Path(metadata_path), first
    if isinstance(first, str | os.PathLike) and isinstance(second, Mapping):
        return Path(first), second
    raise TypeError(
        "Image takes (metadata: ImageMetadata, pixels) or XamFlow's (metadata_path: Path, "
        f"metadata: dict); got {type(first).__name__} and {type(second).__name__}"
    )


def _with_defaults(path: Path, data: Mapping[str, Any]) -> dict[str, Any]:
    """A metadata dict given to the constructor: the format (and a raw file named after the
    path) may go without saying."""
    defaults = {"format": FORMAT, "format_version": FORMAT_VERSION, "raw_file": raw_name(path)}
    return defaults | dict(data)
