"""``omni``: XamFlow's image module (OMNI images, Scanco AIM and ISQ files; SPEC section 8),
as a thin facade over ``runyard.images``, which new scripts should use.

    import omni

    image = omni.Image.load(path)                          # .omni beside its .raw
    scan = omni.import_from_isq(path, load_pixels=False)   # the header alone: size, spacing
    mask = image.derive_image("uint8", image.pixels > 3000)
    mask.save(worker.create_related_path(path, "_mask.omni"))

The formats and the ``Image`` API: docs/images.md; what this module has: docs/compat.md.
"""

from __future__ import annotations

from runyard.images import (
    Calibration,
    Image,
    ImageError,
    ImageMetadata,
    derive_image,
    import_from_aim,
    import_from_isq,
    load,
    open_image,
)

__all__ = [
    "Calibration",
    "Image",
    "ImageError",
    "ImageMetadata",
    "derive_image",
    "import_from_aim",
    "import_from_isq",
    "load",
    "open_image",
]
