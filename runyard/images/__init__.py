"""Images: OMNI files (``.omni`` metadata beside ``.raw`` pixels) and Scanco ``.AIM`` /
``.ISQ`` files (SPEC section 8; the formats: docs/images.md).

    from runyard import images

    scan = images.import_from_isq("SCAN.ISQ;1", load_pixels=False)   # the header alone
    scan.size, scan.spacing, scan.calibration("density")

    image = images.Image.load("scan.omni")         # pixels: a read-only np.memmap
    mask = image.derive_image("uint8", image.pixels > 3000)
    mask.save("scan_mask.omni")                    # scan_mask.omni + scan_mask.raw

    seg = image.derive_file("scan_seg.omni", segments=True)   # pixels: a writable map
    seg.pixels[...] = image.pixels > 3000
    seg.save()

Everything that cannot be read raises ``ImageError`` (a ``runyard.errors.RunyardError``)
naming the file and what is wrong with it.
"""

from __future__ import annotations

import os

from runyard.images.aim import import_from_aim
from runyard.images.calibration import (
    DENSITY,
    HOUNSFIELD,
    LINEAR_ATTENUATION,
    SLOPE_INTERCEPT,
    SLOPE_INTERCEPT_INDIRECT,
    UNIT_TYPES,
    Calibration,
)
from runyard.images.derive import derive_file, derive_image
from runyard.images.image import Image, load
from runyard.images.isq import import_from_isq
from runyard.images.model import AXES, DATA_TYPES, ImageError, ImageMetadata
from runyard.images.scanco import has_scanco_suffix, plain_name


def open_image(path: str | os.PathLike[str], load_pixels: bool = True) -> Image:
    """The image in ``path``, by its name's suffix: ``.omni``, ``.aim`` or ``.isq`` (in any
    case, with or without an OpenVMS version, ``SCAN.ISQ;1``)."""
    if has_scanco_suffix(path, ".aim"):
        return import_from_aim(path, load_pixels)
    if has_scanco_suffix(path, ".isq"):
        return import_from_isq(path, load_pixels)
    if plain_name(path).lower().endswith(".omni"):
        return load(path)
    raise ImageError(path, "not an image: the name must end in .omni, .aim or .isq")


__all__ = [
    "AXES",
    "DATA_TYPES",
    "DENSITY",
    "HOUNSFIELD",
    "LINEAR_ATTENUATION",
    "SLOPE_INTERCEPT",
    "SLOPE_INTERCEPT_INDIRECT",
    "UNIT_TYPES",
    "Calibration",
    "Image",
    "ImageError",
    "ImageMetadata",
    "derive_file",
    "derive_image",
    "import_from_aim",
    "import_from_isq",
    "load",
    "open_image",
    "plain_name",
]
