"""``omni``: XamFlow's image module (OMNI images, Scanco AIM and ISQ files; SPEC section 8),
as a thin facade over ``runyard.images``, which new scripts should use. Every name here is
the object of ``runyard.images`` of that name: ``omni.Image`` is ``runyard.images.Image``,
whose constructor and ``derive_image`` also take XamFlow's arguments.

    import omni

    image = omni.Image.load(path)                          # .omni beside its .raw
    scan = omni.import_from_isq(path, load_pixels=False)   # the header alone: size, spacing
    density = image.pixel_calibrations_of_unit_type("density")[0]
    seg = image.derive_segments(worker.create_related_path(path, "_seg.omni"),
                                worker.create_related_path(path, "_seg.raw"))
    seg.pixels[...] = image.pixels >= density.calibrated_to_raw(450.0)
    seg.save()

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
