"""Derived images: a new image with the geometry of another, in memory
(``Image.derive_image(data_type, pixels)``) or in files (``Image.derive_file(path)``, XamFlow's
``derive_image(derived_omni_path, derived_raw_path, override_metadata={})`` and
``derive_segments``), whose pixels are a writable memory map of a new ``.raw`` file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from runyard.images.calibration import Calibration
from runyard.images.image import (
    OMNI_SUFFIX,
    DataTypeArg,
    Image,
    PathArg,
    data_type_name,
    raw_name,
    same_file,
)
from runyard.images.model import (
    FORMAT,
    FORMAT_VERSION,
    ImageError,
    metadata_from_json,
    metadata_to_json,
)
from runyard.images.pixelfile import create_pixels, mapped_range


def derive_image(
    image: Image,
    data_type: DataTypeArg = None,
    pixels: Any = None,
    *,
    calibrations: Iterable[Calibration] = (),
) -> Image:
    """``Image.derive_image``: a new image in memory with the geometry of ``image``."""
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
    kept = tuple(calibrations)
    default = image.metadata.default_pixel_calibration_unit_type
    metadata = dataclasses.replace(
        image.metadata,
        kind="image",
        data_type=data_type_name(array.dtype),
        calibrations=kept,
        default_pixel_calibration_unit_type=default
        if default in {c.unit_type for c in kept}
        else None,
        additional_pixels_filenames=(),
        source={},
    )
    return Image(metadata, array)


def derive_file(
    image: Image,
    path: PathArg,
    raw_path: PathArg | None = None,
    *,
    segments: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Image:
    """``Image.derive_file``: a new image in the files ``path`` and ``raw_path``."""
    target = Path(path)
    if target.suffix.lower() != OMNI_SUFFIX:
        raise ImageError(target, f"a derived OMNI image needs a name ending in {OMNI_SUFFIX}")
    raw = Path(raw_path) if raw_path is not None else target.with_name(raw_name(target))
    if raw.absolute().parent != target.absolute().parent:
        raise ImageError(raw, f"the pixel file must be in the folder of {target.name}")
    mapped = mapped_range(image.pixels) if image.has_pixels else None
    for new, old in (
        (raw, image.raw_path),
        (raw, mapped and mapped[0]),
        (target, image.metadata_path),
    ):
        if same_file(new, old):
            raise ImageError(new, "is a file of the image derived from: derive into new files")
    data = metadata_to_json(image.metadata, raw.name)
    data["additional_pixels_filenames"] = []
    if segments:
        data |= {
            "kind": "segments",
            "data_type": "uint8",
            "calibrations": [],
            "default_pixel_calibration_unit_type": None,
        }
    data |= dict(metadata or {})
    data |= {"format": FORMAT, "format_version": FORMAT_VERSION, "raw_file": raw.name}
    derived, _ = metadata_from_json(data, target)
    created = Image(derived, create_pixels(raw, derived), metadata_path=target, raw_file=raw.name)
    created.save()
    return created


# -- XamFlow's derive_image signature, told apart from Runyard's by its arguments ------------


def names_files(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``derive_image`` was called XamFlow's way: a path (not a data type) first, or
    XamFlow's keywords."""
    if not args:
        return "derived_omni_path" in kwargs or "override_metadata" in kwargs
    first = args[0]
    if isinstance(first, os.PathLike):
        return True
    return isinstance(first, str) and first.lower().endswith(OMNI_SUFFIX)


def derive_files(
    image: Image,
    derived_omni_path: PathArg,
    derived_raw_path: PathArg | None = None,
    override_metadata: Mapping[str, Any] | None = None,
) -> Image:
    """XamFlow's ``derive_image``: all metadata inherited, ``override_metadata`` applied."""
    return derive_file(image, derived_omni_path, derived_raw_path, metadata=override_metadata)
