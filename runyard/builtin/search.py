"""``Lucid.Util.SearchFolderFilesBySuffix``: one run per file, or per group of files, found in a
User Data folder and its subfolders.

Inputs: ``folder`` (a ``Folder`` value), ``suffixes`` (``|``-separated, case-insensitive),
``mode`` and ``typename``. The modes:

- ``standalone``: one run per file whose name ends with any of the suffixes.
- ``filename``: a group is a file ending with the first suffix plus, for each later suffix, the
  file with the same name stem (``A_SCAN.AIM`` with ``A_SEG.AIM`` for ``_SCAN.AIM|_SEG.AIM``);
  files are matched by name wherever they are (of two files with one name, the last found
  counts). The run is named after the stem (``A``).
- ``dirname``: as ``filename``, but by virtual path, so a group's files are in one folder; the
  run is named after that folder (``/Scans/s1/``).
- ``suffix_regex``: the first suffix is a regular expression matched at the end of file names
  (``C(\\d+)_SCAN\\.AIM``); each later one is a template that may use its groups
  (``C\\1_SEG.AIM``) and names a file in the same folder. The run is named by the group
  ``(?P<run>...)`` if there is one, else by the part of the name before the match, else by the
  first group.

A group missing a file is skipped (logged). The first file of a group starts a run in the task
``XF.Data.SelectForeignFile`` (or ``XF.Data.SelectImage`` for ``typename`` ``Image``) that the
search spawns: ``Spawned ForeignFile`` in mode ``standalone``, else a task named after the
first suffix; each later file is added to the run by a job of an ``XF.Data.AddForeignFile``
(``AddImage``) task named after its suffix. As in XamFlow's script of the same name, whose
behaviour this follows. Spawning is idempotent: a retried search job gets its runs back.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from runyard import task
from runyard.errors import RunyardError
from runyard.task import spawn, userdata, virtualpath

MODES = ("standalone", "filename", "dirname", "suffix_regex")


@dataclass(frozen=True)
class Kind:
    """The task types and keys of runs of files or of images."""

    select: str
    add: str
    template: str
    output: str


KINDS = {
    "ForeignFile": Kind(
        "XF.Data.SelectForeignFile", "XF.Data.AddForeignFile", "foreign_file_template",
        "foreign_file",
    ),
    "Image": Kind("XF.Data.SelectImage", "XF.Data.AddImage", "image_template", "image"),
}  # fmt: skip


class SearchError(ValueError):
    """The search's inputs do not make sense (the message says why)."""


@dataclass(frozen=True)
class FoundFile:
    name: str
    virtualpath: str  # the file's own path: /Scans/s1/scan.aim


@dataclass(frozen=True)
class Group:
    """The files of one run: the first starts it, one more per later suffix."""

    name: str
    files: tuple[FoundFile, ...]


# -- finding ----------------------------------------------------------------------------------


def parse_suffixes(text: str, mode: str) -> list[str]:
    """The suffixes of ``text`` (``".AIM|.ISQ"``): upper case, or as written (a regular
    expression and templates) in mode ``suffix_regex``."""
    if mode not in MODES:
        raise SearchError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    parts = text.split("|")
    if any(not part.strip() for part in parts):
        raise SearchError(
            f"suffixes {text!r} has an empty suffix; separate suffixes by '|', like '.AIM|.ISQ'"
        )
    if mode != "suffix_regex":
        return [part.upper() for part in parts]
    try:
        re.compile(parts[0])
    except re.error as exc:
        raise SearchError(f"the first suffix {parts[0]!r} is not a regular expression: {exc}")
    return parts


class Tokens:
    """The search's User Data token, asked for again before it expires (tokens last 15
    minutes; a search of a big tree can take longer)."""

    RENEW_SECONDS = 600.0

    def __init__(self, scopes: list[tuple[str, str]]) -> None:
        self.scopes = scopes
        self._token = ""
        self._since = 0.0

    def __call__(self) -> str:
        if not self._token or time.monotonic() - self._since > self.RENEW_SECONDS:
            self._token = userdata.userdata_token(self.scopes)
            self._since = time.monotonic()
        return self._token


def walk(token: Callable[[], str], folder: str) -> list[FoundFile]:
    """The files of ``folder`` (by name), then those of each subfolder (by name), depth first."""
    listing = userdata.list_folder(token(), folder)
    found = [FoundFile(f.name, virtualpath.join_file(folder, f.name)) for f in listing.files]
    for sub in listing.folders:
        found.extend(walk(token, virtualpath.join_folder(folder, sub.virtual_name)))
    return found


def find_groups(
    files: Sequence[FoundFile],
    suffixes: Sequence[str],
    mode: str,
    log: Callable[[str], None] = print,
) -> list[Group]:
    """The runs to spawn for the ``files`` found, in the order found."""
    if mode == "standalone":
        return [
            Group(f.name, (f,)) for f in files if any(f.name.upper().endswith(s) for s in suffixes)
        ]
    if mode == "suffix_regex":
        return _regex_groups(files, suffixes, log)
    return _suffix_groups(files, suffixes, mode, log)


def _suffix_groups(
    files: Sequence[FoundFile], suffixes: Sequence[str], mode: str, log: Callable[[str], None]
) -> list[Group]:
    by_key: dict[str, FoundFile] = {}
    for f in files:
        key = f.name.upper() if mode == "filename" else f.virtualpath.upper()
        if key in by_key:
            log(f"{f.virtualpath} has the name of {by_key[key].virtualpath}; using the former")
        by_key[key] = f
    first, *later = suffixes
    groups = []
    for key, f in by_key.items():
        if not key.endswith(first):
            continue
        stem = key[: -len(first)]
        others = [by_key.get(stem + suffix) for suffix in later]
        missing = [stem + suffix for suffix, other in zip(later, others) if other is None]
        if missing:
            log(f"skipping {f.virtualpath}: not found: {', '.join(missing)}")
            continue
        if mode == "filename":
            name = f.name[: -len(first)] or f.name
        else:
            name = virtualpath.folder_of(f.virtualpath)
        groups.append(Group(name, (f, *(o for o in others if o is not None))))
    return groups


def _regex_groups(
    files: Sequence[FoundFile], suffixes: Sequence[str], log: Callable[[str], None]
) -> list[Group]:
    pattern = re.compile(f"(?:{suffixes[0]})$", re.IGNORECASE)
    by_path = {f.virtualpath.upper(): f for f in files}
    groups = []
    for f in files:
        match = pattern.search(f.name)
        if match is None:
            continue
        folder, stem = virtualpath.folder_of(f.virtualpath), f.name[: match.start()]
        others: list[FoundFile] = []
        missing: list[str] = []
        for template in suffixes[1:]:
            try:
                wanted = stem + match.expand(template)
            except (re.error, IndexError) as exc:
                raise SearchError(f"suffix {template!r} does not fit {suffixes[0]!r}: {exc}")
            other = by_path.get((folder + wanted).upper())
            if other is None:
                missing.append(wanted)
            else:
                others.append(other)
        if missing:
            log(f"skipping {f.virtualpath}: not found: {', '.join(missing)}")
            continue
        named = match.groupdict().get("run")
        first_group = match.group(1) if pattern.groups else None
        groups.append(Group(named or stem or first_group or f.name, (f, *others)))
    return groups


# -- spawning ---------------------------------------------------------------------------------


def file_value(found: FoundFile) -> dict[str, Any]:
    return {
        "type": "ForeignFile",
        "source": "userdata",
        "virtualpath": found.virtualpath,
        "filename": found.name,
    }


def image_value(token: Callable[[], str], found: FoundFile) -> dict[str, Any]:
    """An ``Image`` value of a User Data image, with its size from the file's header, which
    the server reads (the file is not fetched: scans are gigabytes)."""
    suffix = PurePosixPath(found.name.split(";")[0]).suffix.lower()  # SCAN.ISQ;1: OpenVMS
    if suffix not in (".omni", ".aim", ".isq"):
        raise SearchError(f"{found.virtualpath} is not an OMNI, AIM or ISQ image")
    header = userdata.image_header(token(), found.virtualpath)
    return file_value(found) | {"type": "Image", "size": header["size"]}


def spawn_runs(
    groups: Sequence[Group],
    values: dict[FoundFile, dict[str, Any]],
    suffixes: Sequence[str],
    mode: str,
    kind: Kind,
) -> list[dict[str, Any]]:
    """Spawn the tasks (once per search task) and one run per group; the runs' first jobs."""
    select_type = _newest(kind.select)
    if mode == "standalone":
        typename = "Image" if kind is KINDS["Image"] else "ForeignFile"
        select_task = spawn.spawn_task(select_type, f"Spawned {typename}", spawn_key="file")
        add_tasks = []
    else:
        select_task = spawn.spawn_task(select_type, suffixes[0], spawn_key=suffixes[0])
        add_type = _newest(kind.add) if len(suffixes) > 1 else {}
        none = [{"key": kind.template, "source": {"mode": "none"}}]
        add_tasks = [
            spawn.spawn_task(add_type, suffix, spawn_key=suffix, inputs=none)
            for suffix in suffixes[1:]
        ]
    orders = spawn.new_sort_orders(len(groups))
    # With files to add, a run's first job is created Obsolete and made Done once the run has
    # all its jobs, so that no follower starts on half a run.
    state = "Obsolete" if add_tasks else "Done"
    firsts = spawn.spawn_jobs(
        [
            spawn.job_spec(
                select_task,
                outputs={kind.output: values[group.files[0]]},
                state=state,
                sort_order=order,
                metadata=_metadata(group.name),
            )
            for group, order in zip(groups, orders, strict=True)
        ]
    )
    if add_tasks:
        spawn.spawn_jobs(
            [
                spawn.job_spec(
                    add_task,
                    inputs={kind.template: None},
                    outputs={kind.output: values[found]},
                    source_job_serial=first["serial"],
                )
                for group, first in zip(groups, firsts, strict=True)
                for add_task, found in zip(add_tasks, group.files[1:], strict=True)
            ]
        )
        spawn.set_job_states([f["serial"] for f in firsts if f["state"] != "Done"], "Done")
    return firsts


def _newest(name: str) -> dict[str, Any]:
    found = spawn.find_task_types(name)
    if not found:
        raise SearchError(f"task type {name} is not installed (it ships with Runyard)")
    return found[0]


def _metadata(name: str) -> dict[str, Any]:
    entity = {"type": "Entity", "uuid": str(uuid.uuid4()), "name": name}
    return {"run_display_name": name, "display_name": name, "run_entity": entity}


# -- the script -------------------------------------------------------------------------------


def search(job: task.CurrentJob) -> int:
    """Run the search of ``job``; how many runs it found."""
    folder, text = job.inputs.get("folder"), job.inputs.get("suffixes")
    mode, typename = job.inputs.get("mode"), job.inputs.get("typename")
    if not isinstance(folder, dict) or not isinstance(folder.get("virtualpath"), str):
        raise SearchError(f"input folder must be a Folder value; got {folder!r}")
    if not isinstance(text, str):
        raise SearchError(f"input suffixes must be a string like '.AIM|.ISQ'; got {text!r}")
    if typename not in KINDS:
        raise SearchError(f"unknown typename {typename!r}; use one of {', '.join(KINDS)}")
    suffixes = parse_suffixes(text, str(mode))
    root = virtualpath.check_folder(folder["virtualpath"])
    scopes = [("list", root), ("read", root)] if typename == "Image" else [("list", root)]
    token = Tokens(scopes)
    files = walk(token, root)
    groups = find_groups(files, suffixes, str(mode))
    print(f"found {len(files)} files in {root}: {len(groups)} runs")
    job.progress(0.2, f"{len(groups)} runs found")
    kind = KINDS[typename]
    wanted = {found for group in groups for found in group.files}
    values = {
        found: image_value(token, found) if typename == "Image" else file_value(found)
        for found in wanted
    }
    job.progress(0.5, f"spawning {len(groups)} runs")
    spawn_runs(groups, values, suffixes, str(mode), kind)
    job.activity(f"searched {root} for {text} ({mode}): {len(groups)} runs")
    return len(groups)


def main() -> None:
    job = task.current_job()
    try:
        runs = search(job)
    except (SearchError, task.TaskError, RunyardError) as exc:
        task.fail(str(exc))
    task.finish({"runs": runs})
