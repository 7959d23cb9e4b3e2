"""A package's files on disk: written below a folder, put in place whole, compared with an
installed copy; and a package folder zipped (for upload, and for workers fetching installed
scripts)."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from runyard.packages.archive import READ_CHUNK, open_file, read_package


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write the files of a package (already checked: relative, safe paths) below
    ``folder``, each streamed (a zip's entries are inflated a chunk at a time)."""
    for relative in files:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_file(files, relative) as source, target.open("wb") as out:
            shutil.copyfileobj(source, out, READ_CHUNK)


@contextmanager
def placed_files(final: Path, files: Mapping[str, bytes]) -> Iterator[Path]:
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


def same_files(folder: Path, files: Mapping[str, bytes]) -> bool:
    """Whether ``folder`` holds exactly ``files`` (an installed package imported again)."""
    if not folder.is_dir():
        return False
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return on_disk == set(files) and all(
        _same_content(folder / name, files, name) for name in files
    )


def _same_content(path: Path, files: Mapping[str, bytes], name: str) -> bool:
    with path.open("rb") as installed, open_file(files, name) as new:
        while True:
            chunk = new.read(READ_CHUNK)
            if installed.read(READ_CHUNK) != chunk:
                return False
            if not chunk:
                return True


def folder_zip(folder: Path) -> IO[bytes]:
    """The package folder as an ``.xfp`` zip, read with the same safety checks as an import:
    a temporary file (removed when closed), at its start. Each file streams into it."""
    files = read_package(folder).files
    out = tempfile.TemporaryFile()
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                with open_file(files, name) as source, archive.open(name, "w") as target:
                    shutil.copyfileobj(source, target, READ_CHUNK)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def folder_zip_bytes(folder: Path) -> bytes:
    """The package folder as an ``.xfp`` zip (see ``folder_zip``), in memory."""
    with folder_zip(folder) as zipped:
        return zipped.read()
