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
"""

from __future__ import annotations

import json
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
            raw_value = {"virtualpath": virtualpath.join_file(base, _raw_file_name(path))}
            userdata.download(job, raw_value, folder)
        return path
    raise _task.TaskError(
        f"Image values from source {source!r} cannot be downloaded; supported: 'filestore', "
        "'userdata'"
    )


def download_image(
    job: _task.CurrentJob, value: dict[str, Any], target_dir: Path | None = None
) -> Image:
    """The image of an ``Image`` value, fetched into the working folder (or ``target_dir``):
    an OMNI image loaded, an AIM or ISQ file imported with its pixels (memory-mapped)."""
    from runyard import images

    if not isinstance(value, dict) or value.get("type") != "Image":
        raise _task.TaskError(
            f"download_image needs an Image value like {{'type': 'Image', 'source': "
            f"'filestore', 'file_id': ..., 'raw_file_id': ...}}; got {value!r}"
        )
    return images.open_image(job.download(value, target_dir))


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
    from runyard.images import ImageError

    try:
        name = json.loads(omni.read_text(encoding="utf-8")).get("raw_file")
    except (ValueError, AttributeError):
        raise ImageError(omni, "not OMNI metadata: not a JSON object") from None
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise ImageError(omni, "'raw_file' must be a plain file name like 'scan.raw'")
    return name
