"""Image values in task scripts: fetching an ``Image`` input, storing an image as an output.

    from runyard import task

    job = task.current_job()
    scan = job.download_image(job.inputs["scan"])           # a runyard.images.Image
    mask = scan.derive_image("uint8", scan.pixels > 3000)
    task.finish({"mask": job.upload_image(mask, "mask.omni")})

An ``Image`` value is a JSON object (docs/images.md#image-values):

- an OMNI image in the file store, its two files stored separately::

    {"type": "Image", "source": "filestore", "file_id": ..., "filename": "mask.omni",
     "raw_file_id": ..., "raw_filename": "mask.raw", "size": [x, y, z],
     "data_type": "uint8", "sha256": ..., "raw_sha256": ...}

- an image file in User Data (``.omni`` with its ``.raw`` beside it, ``.aim``, ``.isq``)::

    {"type": "Image", "source": "userdata", "virtualpath": "/Scans/s1/SCAN.ISQ;1",
     "filename": "SCAN.ISQ;1", "size": [x, y, z]}

``download_image`` always gives an image whose ``metadata_path`` is a real ``.omni`` file in
the working folder: an AIM or ISQ file is converted (``SCAN.ISQ;1`` -> ``SCAN.omni`` +
``SCAN.raw``), its pixels copied file to file, never held in memory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard import task as _task

if TYPE_CHECKING:  # numpy is imported only by scripts that use images
    from runyard.images import Image


def download(job: _task.CurrentJob, value: dict[str, Any], folder: Path) -> Path:
    """``CurrentJob.download`` of an ``Image`` value: its file in ``folder`` (an ``.omni``
    file with its ``.raw`` beside it, or the ``.aim`` / ``.isq`` file); the path of the
    first."""
    source = value.get("source")
    if source == "filestore":
        raw_id = value.get("raw_file_id")
        if not isinstance(raw_id, str) or not raw_id:
            raise _task.TaskError(f"the Image value has no 'raw_file_id'; got {value!r}")
        omni = job.download(_file_value(value, "file_id", "filename"), folder)
        raw_name = _raw_file_name(omni)
        job.client().download(raw_id, folder / raw_name)
        return omni
    if source == "userdata":
        from runyard.task import userdata, virtualpath

        path = userdata.download(job, value, folder)
        if path.suffix.lower() == ".omni":
            where = str(value["virtualpath"])
            base = where if where.endswith("/") else virtualpath.folder_of(where)
            for name in _pixel_file_names(path):
                userdata.download(job, {"virtualpath": virtualpath.join_file(base, name)}, folder)
        return path
    raise _task.TaskError(
        f"Image values from source {source!r} cannot be downloaded; supported: 'filestore', "
        "'userdata'"
    )


def download_image(
    job: _task.CurrentJob, value: dict[str, Any], target_dir: Path | None = None
) -> Image:
    """The image of an ``Image`` value as an OMNI image in the working folder (or
    ``target_dir``), its pixels memory-mapped: an ``.omni`` file fetched with its ``.raw``
    and loaded; an AIM or ISQ file fetched and converted to ``.omni`` + ``.raw`` there
    (``SCAN.ISQ;1`` -> ``SCAN.omni``, numbered if taken), the Scanco file not kept. So its
    ``metadata_path`` is always a real ``.omni`` file."""
    from runyard import images

    if not isinstance(value, dict) or value.get("type") != "Image":
        raise _task.TaskError(
            f"download_image needs an Image value like {{'type': 'Image', 'source': "
            f"'filestore', 'file_id': ..., 'raw_file_id': ...}}; got {value!r}"
        )
    folder = Path(target_dir) if target_dir is not None else job.working_dir
    if not _is_scanco(value):
        return images.open_image(job.download(value, folder))
    folder.mkdir(parents=True, exist_ok=True)
    return images.load(_scanco_as_omni(job, value, folder))


def _is_scanco(value: dict[str, Any]) -> bool:
    """Whether an ``Image`` value is an AIM or ISQ file of User Data, by its name."""
    from runyard.images.scanco import has_scanco_suffix

    where = str(value.get("virtualpath") or "")
    name = str(value.get("filename") or "") if where.endswith("/") else where
    return value.get("source") == "userdata" and any(
        has_scanco_suffix(name, suffix) for suffix in (".aim", ".isq")
    )


def _scanco_as_omni(job: _task.CurrentJob, value: dict[str, Any], folder: Path) -> Path:
    """Fetch the Scanco file of ``value`` into a folder of its own in ``folder``, save it as
    OMNI in ``folder`` (its pixels copied file to file), then delete it; the ``.omni``."""
    from runyard import images

    staging = Path(tempfile.mkdtemp(prefix=".scanco-", dir=folder))
    try:
        scan = images.open_image(job.download(value, staging))
        target = _free_omni_path(folder, images.plain_name(scan.origin_path or "image"))
        scan.save(target)
        del scan  # its memory map of the fetched file, before the file goes
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _free_omni_path(folder: Path, name: str) -> Path:
    """``folder / STEM.omni`` for the file ``name``, numbered (``STEM_2.omni``) while that
    name or its ``.raw`` is taken."""
    stem = Path(name).stem or "image"
    number = 1
    while True:
        candidate = stem if number == 1 else f"{stem}_{number}"
        omni, raw = folder / f"{candidate}.omni", folder / f"{candidate}.raw"
        if not (omni.exists() or raw.exists()):
            return omni
        number += 1


def upload_image(
    job: _task.CurrentJob, image: Image, filename: str | None = None
) -> dict[str, Any]:
    """Store an image in the file store; its ``Image`` value, for the outputs. An image
    never saved (or imported from a Scanco file), or given a ``filename``, is first saved as
    OMNI in the working folder (``filename``, default: named after where it came from,
    else ``image.omni``); a saved one is uploaded as it is on disk."""
    from runyard import images

    if not isinstance(image, images.Image):
        raise _task.TaskError(f"upload_image needs a runyard.images.Image; got {image!r}")
    if filename is not None or image.metadata_path is None:
        name = filename or _default_name(image)
        if Path(name).name != name or not name.lower().endswith(".omni"):
            raise _task.TaskError(f"{name!r} is not a plain file name ending in .omni")
        image.save(job.working_dir / name)
    image.flush()  # pixels written through a derived image's memory map
    omni, raw = image.metadata_path, image.raw_path
    if omni is None or raw is None:  # not reached: saved above
        raise _task.TaskError("the image has no files to upload")
    raw_stored = job.client().upload(raw)
    omni_stored = job.client().upload(omni)
    return {
        "type": "Image",
        "source": "filestore",
        "file_id": omni_stored["file_id"],
        "filename": omni_stored["filename"],
        "raw_file_id": raw_stored["file_id"],
        "raw_filename": raw_stored["filename"],
        "size": list(image.size),
        "data_type": image.metadata.data_type,
        "sha256": omni_stored.get("sha256"),
        "raw_sha256": raw_stored.get("sha256"),
    }


def _default_name(image: Image) -> str:
    from runyard.images import plain_name

    origin = image.origin_path
    stem = Path(plain_name(origin)).stem if origin is not None else ""
    return f"{stem or 'image'}.omni"


def _file_value(value: dict[str, Any], id_key: str, name_key: str) -> dict[str, Any]:
    file_id = value.get(id_key)
    if not isinstance(file_id, str) or not file_id:
        raise _task.TaskError(f"the Image value has no {id_key!r}; got {value!r}")
    return {"source": "filestore", "file_id": file_id, "filename": value.get(name_key)}


def _raw_file_name(omni: Path) -> str:
    """The ``raw_file`` an ``.omni`` file names (checked to be a plain file name)."""
    return _pixel_file_names(omni)[0]


def _pixel_file_names(omni: Path) -> list[str]:
    """The ``raw_file`` an ``.omni`` file names, then its ``additional_pixels_filenames``
    (each checked to be a plain file name)."""
    from runyard.images import ImageError

    try:
        data = json.loads(omni.read_text(encoding="utf-8"))
        names = [data.get("raw_file"), *data.get("additional_pixels_filenames", [])]
    except (ValueError, AttributeError, TypeError):
        raise ImageError(omni, "not OMNI metadata: not a JSON object") from None
    for name in names:
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ImageError(omni, f"pixel file {name!r} must be a plain file name like 'scan.raw'")
    return names
