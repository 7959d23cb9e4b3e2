"""Zipping a package folder (for upload, and for workers fetching installed scripts)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from runyard.packages.archive import read_package


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write the files of a package (already checked: relative, safe paths) below ``folder``."""
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def folder_zip_bytes(folder: Path) -> bytes:
    """The package folder as an ``.xfp`` zip, read with the same safety checks as an import."""
    files = read_package(folder).files
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(name, files[name])
    return buffer.getvalue()
