"""A package's files on disk: written below a folder, put in place whole, compared with an
installed copy; and a package folder zipped (for upload, and for workers fetching installed
scripts)."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from runyard.packages.archive import read_package


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write the files of a package (already checked: relative, safe paths) below ``folder``."""
    for relative, content in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


@contextmanager
def placed_files(final: Path, files: dict[str, bytes]) -> Iterator[Path]:
    """Write ``files`` to a new folder beside ``final`` and give it; at the end of the
    ``with`` block (where the caller records the package, in its transaction) move it to
    ``final``. Anything that fails, in the block or in the move, leaves neither folder."""
    made_parent = not final.parent.exists()  # the name's folder, for its first version
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=final.parent))
    try:
        write_files(staging, files)
        yield staging
        if final.exists():  # left by an import whose transaction failed
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        if made_parent:
            with suppress(OSError):  # kept if another version arrived meanwhile
                final.parent.rmdir()
        raise


def same_files(folder: Path, files: dict[str, bytes]) -> bool:
    """Whether ``folder`` holds exactly ``files`` (an installed package imported again)."""
    if not folder.is_dir():
        return False
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return on_disk == set(files) and all(
        (folder / name).read_bytes() == content for name, content in files.items()
    )


def folder_zip_bytes(folder: Path) -> bytes:
    """The package folder as an ``.xfp`` zip, read with the same safety checks as an import."""
    files = read_package(folder).files
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            archive.writestr(name, files[name])
    return buffer.getvalue()
