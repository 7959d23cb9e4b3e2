"""``omni``: XamFlow's image module (OMNI images, Scanco AIM and ISQ files; SPEC section 8).

Importable now, because scripts import it even when they handle only ``ForeignFile`` values;
every entry point raises ``NotAvailable`` until images arrive (docs/compat.md).
"""

from __future__ import annotations

import os
from typing import Any

from runyard.compat import IMAGES, not_available

PathArg = str | os.PathLike[str]


class Image:
    """An OMNI image: ``.omni`` metadata beside ``.raw`` pixels (not available yet)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        not_available("omni.Image", IMAGES)

    @classmethod
    def load(cls, path: PathArg) -> Image:
        """Open the ``.omni`` image at ``path``."""
        not_available("omni.Image.load", IMAGES)


def import_from_aim(path: PathArg, load_pixels: bool = True) -> Image:
    """A Scanco ``.AIM`` file as an image (header only with ``load_pixels=False``)."""
    not_available("omni.import_from_aim", IMAGES)


def import_from_isq(path: PathArg, load_pixels: bool = True) -> Image:
    """A Scanco ``.ISQ`` file as an image (header only with ``load_pixels=False``)."""
    not_available("omni.import_from_isq", IMAGES)


__all__ = ["Image", "import_from_aim", "import_from_isq"]
