"""The task-script library: what a script running as a Runyard job uses.

    from runyard import task

    job = task.current_job()
    scan = job.download(job.inputs["scan"])          # a ForeignFile input -> local Path
    job.progress(0.5, "thresholding")
    table = job.working_dir / "table.csv"
    ...
    task.finish({"table": job.upload(table), "count": 42})

The worker starts the script in a fresh working folder with the job's context in environment
variables (``RUNYARD_SERVER``, ``RUNYARD_JOB_SERIAL``, ``RUNYARD_JOB_TOKEN``,
``RUNYARD_JOB_FILE``, ``RUNYARD_RESULT_FILE``). What the script prints (stdout and stderr)
becomes the job log. ``finish`` and ``fail`` end the script; the worker then reports the
outcome to the server under the job's lease. A script that ends without calling either is
Done with no outputs if it exits with status 0, and Failed otherwise.

Virtual paths of User Data (``/Scans/2026/scan.aim``) are built and checked with
``runyard.task.virtualpath``; its files are listed, read and written with
``runyard.task.userdata``. The XamFlow modules (``xfworkerutil``, ...) are facades over
this library: see ``runyard.compat``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # imported when first used: a script that only computes starts faster
    from runyard.client import Client
    from runyard.images import Image
from runyard.task import virtualpath

ACTIVITY_LEVELS = ("debug", "info", "warning", "error")
# The types of output values that are files in the file store (``upload``'s ``value_type``):
# a file as it is, a table, a picture (PNG, JPEG), contours of an image, a surface mesh, a page.
FILE_VALUE_TYPES = ("ForeignFile", "CSV", "Bitmap", "Contours", "Mesh", "HTMLDocument")


class NotInAJob(RuntimeError):
    """The code runs outside a Runyard job (the worker's variables are missing)."""


class TaskError(RuntimeError):
    """A task-script call was used wrongly (e.g. a parameter that is not a file)."""


@dataclass(frozen=True, kw_only=True)
class CurrentJob:
    """The job this script runs as: its inputs, and the calls it may make to the server."""

    serial: int
    inputs: dict[str, Any]
    metadata: dict[str, Any]
    server: str
    token: str
    working_dir: Path

    @property
    def runs(self) -> list[dict[str, Any]]:
        """For a reduce job: the runs whose results its list inputs hold, in the same order
        (run sort order): ``[{"id", "name", "entity"}]``. Empty for other jobs."""
        runs: list[dict[str, Any]] = self.metadata.get("runs", [])
        return runs

    def client(self) -> Client:
        """A client of the server, authenticated as this job (shared by the calls below)."""
        return self._shared_client

    @cached_property
    def _shared_client(self) -> Client:
        return job_client(self.server, self.token)

    def download(self, file: dict[str, Any], target_dir: Path | None = None) -> Path:
        """Fetch a file input (a ``ForeignFile`` value of the file store, or of User Data:
        ``{"source": "userdata", "virtualpath": ..., "filename": ...}``) into the working
        folder (or ``target_dir``); its local path. The checksum is verified. An ``Image``
        value gives its ``.omni`` file with the ``.raw`` beside it (or its AIM / ISQ file)."""
        if not isinstance(file, dict) or "source" not in file:
            raise TaskError(
                f"download needs a file value like {{'type': 'ForeignFile', 'source': "
                f"'filestore', 'file_id': ...}}; got {file!r}"
            )
        if file.get("type") == "Image":  # an .omni and its .raw, or an AIM / ISQ file
            from runyard.task import images

            folder = Path(target_dir) if target_dir is not None else self.working_dir
            folder.mkdir(parents=True, exist_ok=True)
            return images.download(self, file, folder)
        if file["source"] == "filestore":
            file_id = file.get("file_id")
            if not isinstance(file_id, str) or not file_id:
                raise TaskError(f"the file value has no 'file_id'; got {file!r}")
            folder = Path(target_dir) if target_dir is not None else self.working_dir
            folder.mkdir(parents=True, exist_ok=True)
            return self.client().download(file_id, folder / _local_name(file, file_id))
        if file["source"] == "userdata":
            from runyard.task import userdata

            folder = Path(target_dir) if target_dir is not None else self.working_dir
            folder.mkdir(parents=True, exist_ok=True)
            return userdata.download(self, file, folder)
        raise TaskError(
            f"files from source {file['source']!r} cannot be downloaded by this Runyard "
            "version; supported: 'filestore', 'userdata'"
        )

    def upload(
        self, path: Path | str, filename: str | None = None, *, value_type: str = "ForeignFile"
    ) -> dict[str, Any]:
        """Store a local file in the server's file store; the value to put in the outputs:
        a ``ForeignFile`` value, or with ``value_type`` a value of another file type
        (``FILE_VALUE_TYPES``: ``"CSV"``, ``"Bitmap"``, ...)."""
        if value_type not in FILE_VALUE_TYPES:
            raise TaskError(
                f"upload value_type must be one of {', '.join(FILE_VALUE_TYPES)}; "
                f"got {value_type!r}"
            )
        return self.client().upload(Path(path), filename) | {"type": value_type}

    def upload_contours(
        self, path: Path | str, image: Image | dict[str, Any], filename: str | None = None
    ) -> dict[str, Any]:
        """Store a contours file drawn on ``image`` (a ``runyard.images.Image`` or an
        ``Image`` value); its ``Contours`` value, which carries the image's geometry
        (``axes``, ``size``, ``spacing``, ``origin``) and, for an ``Image`` value, the image."""
        return self.upload(path, filename, value_type="Contours") | {
            "image": _image_geometry(image)
        }

    def download_image(self, value: dict[str, Any], target_dir: Path | None = None) -> Image:
        """The image of an ``Image`` input (``runyard.images.Image``), fetched like
        ``download``: OMNI loaded, AIM / ISQ imported, pixels memory-mapped."""
        from runyard.task import images

        return images.download_image(self, value, target_dir)

    def upload_image(self, image: Image, filename: str | None = None) -> dict[str, Any]:
        """Store an image (saved as OMNI first if it has no files); its ``Image`` value."""
        from runyard.task import images

        return images.upload_image(self, image, filename)

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report how far the job is (``fraction`` from 0 to 1, or None), shown in the UI."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise TaskError(f"progress fraction must be between 0 and 1; got {fraction}")
        self.client().post(
            f"/api/jobs/{self.serial}/progress",
            {"fraction": fraction, "message": message},
            idempotent=True,  # it sets the job's progress: the same again changes nothing
        )

    def activity(self, message: str, level: str = "info") -> None:
        """Write an entry in the activity log (seen by every user of the workflow)."""
        if level not in ACTIVITY_LEVELS:
            raise TaskError(f"activity level must be one of {', '.join(ACTIVITY_LEVELS)}")
        # Tried again while the server is away: an answer lost on the way may leave the
        # entry twice in the activity log, which is better than a Failed job.
        self.client().post(
            f"/api/jobs/{self.serial}/activity",
            {"message": message, "level": level},
            idempotent=True,
        )


def _image_geometry(image: Image | dict[str, Any]) -> dict[str, Any]:
    """What a contours value keeps of its image: its geometry, and the image value's files."""
    keys = ("axes", "size", "spacing", "origin")
    if isinstance(image, dict):
        if image.get("type") != "Image":
            raise TaskError(f"contours are drawn on an image; got {image!r}")
        files = ("source", "file_id", "filename", "virtualpath")
        return {k: image[k] for k in (*keys, *files) if k in image}
    if not hasattr(image, "size"):
        raise TaskError(f"contours are drawn on an image; got {type(image).__name__}")
    found = {k: getattr(image, k, None) for k in keys}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in found.items() if v is not None}


def _local_name(file: dict[str, Any], file_id: str) -> str:
    """The name a downloaded file is saved under: its own name without any folder part, or
    its id when that name is unusable."""
    name = Path(str(file.get("filename") or "")).name
    return name if name not in ("", ".", "..") else file_id


def job_client(server: str, token: str) -> Client:
    """A client of the server for a job's calls: each tried again while the server is away
    (restarting, its database stopped) for up to ``RUNYARD_RETRY_SECONDS`` (default 120),
    with a line in the job log when an outage starts and ends. A call given up makes the
    job go back to the queue (``_give_back_on_failure``) rather than end Failed."""
    from runyard.client import Client
    from runyard.retries import RetryPolicy, retry_seconds

    policy = RetryPolicy(
        seconds=retry_seconds(os.environ), notify=_say, on_give_up=_give_back_on_failure
    )
    return Client(server, token, retry=policy)


def _say(message: str) -> None:
    print(f"runyard: {message}", file=sys.stderr, flush=True)


def _give_back_on_failure(message: str) -> None:
    """The server stayed away longer than the retry time: if the script now fails (the
    error not caught), the worker gives the job back for another attempt instead of
    recording it Failed (``give_back`` in the result file, replaced by ``finish`` or
    ``fail``)."""
    _say(f"{message}; if the script fails now, the job goes back to the queue")
    if os.environ.get("RUNYARD_RESULT_FILE"):
        _write_result({"give_back": message})


def _variable(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise NotInAJob(f"{name} is not set: this script must be run by a Runyard worker")
    return value


_current: list[CurrentJob] = []


def current_job() -> CurrentJob:
    """The job this script runs as (read once from the worker's variables)."""
    serial = int(_variable("RUNYARD_JOB_SERIAL"))
    if _current and _current[0].serial == serial:
        return _current[0]
    job = json.loads(Path(_variable("RUNYARD_JOB_FILE")).read_text())
    _current[:] = [
        CurrentJob(
            serial=serial,
            inputs=job.get("inputs", {}),
            metadata=job.get("metadata", {}),
            server=_variable("RUNYARD_SERVER"),
            token=_variable("RUNYARD_JOB_TOKEN"),
            working_dir=Path.cwd(),
        )
    ]
    # The job log is what the script prints, not the HTTP client's line per request.
    for library in ("httpx", "httpcore"):
        logging.getLogger(library).setLevel(logging.WARNING)
    return _current[0]


def _write_result(result: dict[str, Any]) -> None:
    path = Path(_variable("RUNYARD_RESULT_FILE"))
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(result))
    staging.replace(path)


def finish(outputs: dict[str, Any] | None = None) -> NoReturn:
    """End the job as Done with these outputs (JSON values keyed by output key)."""
    _write_result({"outputs": outputs or {}})
    sys.stdout.flush()
    sys.exit(0)


def fail(message: str) -> NoReturn:
    """End the job as Failed with this message."""
    _write_result({"error": message})
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


__all__ = [
    "ACTIVITY_LEVELS",
    "FILE_VALUE_TYPES",
    "CurrentJob",
    "NotInAJob",
    "TaskError",
    "current_job",
    "fail",
    "finish",
    "job_client",
    "virtualpath",
]
