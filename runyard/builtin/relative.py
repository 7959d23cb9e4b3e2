"""``Lucid.Util.RelativeUserDataImage``: the User Data image that a template names relative to
an input file's virtual path: a scan's segmentation beside it (``{folder}{stem}_SEG.AIM``) or
in a folder of its own (``{folder}../Segmentations/{stem}_SEG.AIM``).

Inputs: ``input_image`` (an ``Image`` value) or ``input_file`` (a ``ForeignFile`` value), a
User Data file either way; ``template`` (a ``String``). The output ``image`` is the ``Image``
value of the file found, with its size read from its header by the server (the file is not
fetched), as ``Lucid.Util.SearchFolderFilesBySuffix`` makes them.

The template's placeholders (``PLACEHOLDERS``) are taken from the input's virtual path; a
placeholder may be sliced like a Python string (``{stem[:-5]}``). A template that does not
start with ``/`` (once expanded) is relative to the input's folder. ``.`` and ``..`` are
resolved before anything is looked up, and ``..`` may not climb out of the input's mapped
User Data root. The file is matched as OpenVMS would (Scanco scanners write such names): case
does not matter (an exact match wins), and a name without a version (``C0001_SEG.AIM``) means
its highest version (``C0001_SEG.AIM;2``). docs/builtin.md describes it for users.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from runyard import task
from runyard.client import RemoteError
from runyard.errors import RunyardError
from runyard.task import userdata, virtualpath

IMAGE_SUFFIXES = (".omni", ".aim", ".isq")
INPUTS = {"input_image": "Image", "input_file": "ForeignFile"}
# What each placeholder gives for the input /Scans/2026/P01/C0001_SCAN.ISQ;1.
PLACEHOLDERS = {
    "folder": "/Scans/2026/P01/",
    "name": "C0001_SCAN.ISQ;1",
    "stem": "C0001_SCAN",
    "suffix": ".ISQ",
    "version": ";1",
    "parent": "P01",
    "parent2": "2026",
}
_VERSION = re.compile(r";\d*$")  # an OpenVMS version: SCAN.ISQ;1 (SCAN.ISQ; is the newest)
_FIELD = re.compile(r"(?P<key>[a-z]+)(?P<level>[1-9]\d*)?(?:\[(?P<slice>[^\]]*)\])?")
_SLICE = re.compile(r"(?P<start>-?\d+)?(?P<colon>:(?P<stop>-?\d+)?)?")


class RelativeImageError(ValueError):
    """The input, the template or what it names does not do (the message says why)."""


# -- the template -----------------------------------------------------------------------------


def input_path(value: Any, key: str) -> str:
    """The virtual path of the User Data file value ``value`` (of the input ``key``)."""
    if not isinstance(value, dict) or value.get("source") != "userdata":
        shown = value.get("source") if isinstance(value, dict) else value
        raise RelativeImageError(
            f"input {key} must be a User Data {INPUTS[key]} value like {{'source': 'userdata', "
            f"'virtualpath': '/Scans/s1/SCAN.ISQ;1'}}: only a file in User Data has a folder "
            f"to look in; got {shown!r}"
        )
    where = value.get("virtualpath")
    try:
        if isinstance(where, str) and where.endswith("/"):  # the folder, with filename
            return virtualpath.join_file(where, str(value.get("filename") or ""))
        return virtualpath.check_path(str(where))
    except virtualpath.InvalidVirtualPath as exc:
        raise RelativeImageError(f"input {key} has no usable virtual path: {exc}") from None


def split_version(name: str) -> tuple[str, str]:
    """``("SCAN.ISQ", ";1")`` for ``SCAN.ISQ;1``; the version is ``""`` if there is none."""
    match = _VERSION.search(name)
    return (name[: match.start()], match.group()) if match else (name, "")


def placeholder(key: str, path: str) -> str:
    """The value of the placeholder ``key`` (without a slice) for the file ``path``."""
    folder, name = virtualpath.folder_of(path), path.rsplit("/", 1)[1]
    plain, version = split_version(name)
    values = {
        "folder": folder,
        "name": name,
        "stem": PurePosixPath(plain).stem,
        "suffix": PurePosixPath(plain).suffix,
        "version": version,
    }
    if key in values:
        return values[key]
    match = _FIELD.fullmatch(key)
    if match is None or match["key"] != "parent" or match["slice"] is not None:
        raise RelativeImageError(f"unknown placeholder {{{key}}}; {_known()}")
    level = int(match["level"] or 1)
    folders = folder.strip("/").split("/") if folder != "/" else []
    if level > len(folders):
        raise RelativeImageError(
            f"placeholder {{{key}}} names the folder {level} levels up, but {path} lies in "
            f"{len(folders)} folder{'s' if len(folders) != 1 else ''}"
        )
    return folders[-level]


def _known() -> str:
    return "use " + ", ".join(f"{{{k}}}" for k in PLACEHOLDERS) + " (and {parent3}, ...)"


def _sliced(field: str, path: str) -> str:
    """The placeholder ``field`` (``stem``, ``stem[:-5]``, ``parent2``) for ``path``."""
    match = _FIELD.fullmatch(field)
    if match is None:
        raise RelativeImageError(f"unknown placeholder {{{field}}}; {_known()}")
    value = placeholder(match["key"] + (match["level"] or ""), path)
    if match["slice"] is None:
        return value
    bounds = _SLICE.fullmatch(match["slice"])
    if bounds is None or not match["slice"]:
        raise RelativeImageError(
            f"placeholder {{{field}}}: [{match['slice']}] is not a slice like [:-5], [2:] or [0]"
        )
    start = int(bounds["start"]) if bounds["start"] else None
    if bounds["colon"]:
        stop = int(bounds["stop"]) if bounds["stop"] else None
        return value[start:stop]
    if start is None or not -len(value) <= start < len(value):
        raise RelativeImageError(
            f"placeholder {{{field}}}: {value!r} has no character {match['slice']}"
        )
    return value[start]


def expand(template: str, path: str) -> str:
    """``template`` with its placeholders filled in from the file ``path``; ``{{`` and
    ``}}`` are literal braces."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RelativeImageError(
            f"template {template!r} is malformed ({exc}); write braces as {{{{ and }}}}"
        ) from None
    out = []
    for literal, field, spec, conversion in parts:
        out.append(literal)
        if field is None:
            continue
        if spec or conversion:
            raise RelativeImageError(
                f"placeholder {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} of template {template!r}: placeholders take "
                "no format or conversion; slice them instead, like {stem[:-5]}"
            )
        try:
            out.append(_sliced(field, path))
        except RelativeImageError as exc:
            raise RelativeImageError(f"template {template!r}: {exc}") from None
    return "".join(out)


@dataclass(frozen=True)
class Target:
    """The file a template names: its virtual path, and ``top``, the highest folder its
    ``..`` climbed to (its own folder when it has no ``..``): it must lie in a mapped root."""

    path: str
    top: str
    climbs: bool


def resolve(expanded: str, folder: str) -> Target:
    """The file that the expanded template ``expanded`` names, relative to ``folder`` unless it
    starts with ``/``; ``.`` and ``..`` resolved, ``//`` read as ``/``."""
    text = expanded if expanded.startswith("/") else folder + expanded
    names: list[str] = []
    top: int | None = None
    for name in text.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if not names:
                raise RelativeImageError(
                    f"{text} climbs above / with '..', out of the mapped User Data roots"
                )
            names.pop()
            top = len(names) if top is None else min(top, len(names))
        else:
            names.append(name)
    if not names or text.endswith(("/", "/.", "/..")):
        raise RelativeImageError(f"{expanded!r} names a folder, not a file: end it with a name")
    path = "/" + "/".join(names)
    try:
        virtualpath.check_path(path)
    except virtualpath.InvalidVirtualPath as exc:
        raise RelativeImageError(str(exc)) from None
    climbed = top is not None
    top_folder = "/" + "".join(n + "/" for n in names[:top]) if climbed else folder_of(path)
    return Target(path=path, top=top_folder, climbs=climbed)


def folder_of(path: str) -> str:
    return virtualpath.folder_of(path)


def check_format(path: str) -> None:
    """Refuse a file that is not an OMNI, AIM or ISQ image by its name."""
    plain, _ = split_version(path.rsplit("/", 1)[1])
    if not plain.lower().endswith(IMAGE_SUFFIXES):
        raise RelativeImageError(
            f"{path} is not an OMNI, AIM or ISQ image: the name must end in .omni, .aim or "
            ".isq (any case, with or without an OpenVMS version like ;1)"
        )


# -- matching names ---------------------------------------------------------------------------


def _version_number(version: str) -> int:
    """``;3`` -> 3; no version (or ``;``) counts as 0."""
    return int(version[1:]) if len(version) > 1 else 0


def match_file(wanted: str, names: Sequence[str]) -> str | None:
    """The name among ``names`` (of one folder) that stands for ``wanted``, as OpenVMS reads
    names: the same name; else one that differs only by case; a name without a version
    (``A.AIM``, or ``A.AIM;``) means the highest version there is (``A.AIM;3``), and one with
    a version that version (``;1`` or ``;01``). None if there is none; two candidates that
    differ only by case are refused."""
    if wanted in names:
        return wanted
    plain, version = split_version(wanted)
    key = plain.casefold()
    found = [n for n in names if split_version(n)[0].casefold() == key]
    if len(version) > 1:
        found = [n for n in found if _version_number(split_version(n)[1]) == int(version[1:])]
    if not found:
        return None
    best = max(_version_number(split_version(n)[1]) for n in found)
    found = [n for n in found if _version_number(split_version(n)[1]) == best]
    if len(found) > 1:
        raise RelativeImageError(
            f"{wanted} is ambiguous: {', '.join(sorted(found))} differ only by case"
        )
    return found[0]


def match_folder(wanted: str, names: Sequence[str]) -> str | None:
    """The folder among ``names`` that stands for ``wanted``: the same name, else the one that
    differs only by case."""
    if wanted in names:
        return wanted
    found = [n for n in names if n.casefold() == wanted.casefold()]
    if len(found) > 1:
        raise RelativeImageError(
            f"folder {wanted} is ambiguous: {', '.join(sorted(found))} differ only by case"
        )
    return found[0] if found else None


# -- finding the file -------------------------------------------------------------------------

# A folder's file names and subfolder names, or None if there is no such folder (or it cannot
# be listed, being outside the mapped roots).
Lister = Callable[[str], tuple[list[str], list[str]] | None]


def _real_folder(folder: str, lister: Lister) -> tuple[str, tuple[list[str], list[str]]] | None:
    """The folder that stands for ``folder`` (names that differ only by case are followed
    where the exact one does not exist) and its listing; None if there is none."""
    listing = lister(folder)
    if listing is not None:
        return folder, listing
    if folder == "/":
        return None
    parent_path, name = folder[:-1].rsplit("/", 1)
    parent = _real_folder(parent_path + "/", lister)
    if parent is None:
        return None
    actual = match_folder(name, parent[1][1])
    if actual is None:
        return None
    real = virtualpath.join_folder(parent[0], actual)
    if real == folder:  # it is there, but cannot be listed
        return None
    listing = lister(real)
    return (real, listing) if listing is not None else None


def find(path: str, lister: Lister) -> str | None:
    """The virtual path of the file that stands for ``path`` (by ``match_file``, in the
    folder found by ``match_folder`` for each name), or None."""
    folder = _real_folder(folder_of(path), lister)
    if folder is None:
        return None
    name = match_file(path.rsplit("/", 1)[1], folder[1][0])
    return virtualpath.join_file(folder[0], name) if name is not None else None


class Tokens:
    """User Data tokens: one to list and read below ``base``, another for a folder above it
    (only if a folder's name has to be matched by case there)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._tokens: dict[str, str] = {}

    def token(self, folder: str) -> str | None:
        """A token that lists and reads ``folder``; None if it lies in no mapped root."""
        where = self.base if folder.startswith(self.base) else folder
        if where not in self._tokens:
            try:
                self._tokens[where] = userdata.userdata_token([("list", where), ("read", where)])
            except RemoteError as exc:
                if exc.status_code != 404:
                    raise
                return None
        return self._tokens[where]

    def list(self, folder: str) -> tuple[list[str], list[str]] | None:
        token = self.token(folder)
        if token is None:
            return None
        try:
            listing = userdata.list_folder(token, folder)
        except RemoteError as exc:
            if exc.status_code in (404, 422):  # no such folder, or it is a file
                return None
            raise
        return [f.name for f in listing.files], [f.name for f in listing.folders]


# -- the script -------------------------------------------------------------------------------


def input_of(inputs: dict[str, Any]) -> str:
    """The virtual path of the one input file given (``input_image`` or ``input_file``)."""
    given = [key for key in INPUTS if inputs.get(key) is not None]
    if len(given) != 1:
        raise RelativeImageError(
            "connect exactly one of the inputs input_image (an Image) and input_file (a "
            f"ForeignFile) and leave the other none; {len(given)} given"
        )
    return input_path(inputs[given[0]], given[0])


def relative_image(inputs: dict[str, Any], log: Callable[[str], None] = print) -> dict[str, Any]:
    """The ``Image`` value of the file that ``inputs["template"]`` names relative to the
    input file."""
    source = input_of(inputs)
    template = inputs.get("template")
    if not isinstance(template, str) or not template.strip():
        raise RelativeImageError(
            "input template must be a path like '{folder}../Segmentations/{stem}_SEG.AIM'; "
            f"got {template!r}"
        )
    target = resolve(expand(template, source), folder_of(source))
    log(f"template {template!r} on {source} names {target.path}")
    check_format(target.path)
    if target.climbs and target.top == "/":
        raise RelativeImageError(_leaves(template, source, target))
    tokens = Tokens(target.top)
    if tokens.token(target.top) is None:
        if target.climbs:
            raise RelativeImageError(_leaves(template, source, target))
        raise RelativeImageError(
            f"{target.path} lies in no mapped User Data root (template {template!r} of {source})"
        )
    found = find(target.path, tokens.list)
    if found is None:
        raise RelativeImageError(
            f"not found: {target.path} (looked for in any case and OpenVMS version; template "
            f"{template!r} of {source})"
        )
    if found != target.path:
        log(f"found {found}")
    token = tokens.token(folder_of(found))
    assert token is not None  # its folder was listed with it
    header = userdata.image_header(token, found)
    name = found.rsplit("/", 1)[1]
    return {
        "type": "Image",
        "source": "userdata",
        "virtualpath": found,
        "filename": name,
        "size": header["size"],
    }


def _leaves(template: str, source: str, target: Target) -> str:
    return (
        f"template {template!r} leaves the mapped User Data root of {source}: '..' climbs "
        f"to {target.top} (for {target.path}); name a file of another root by its full path, "
        "like '/Segmentations/{stem}_SEG.AIM'"
    )


def main() -> None:
    job = task.current_job()
    try:
        image = relative_image(job.inputs)
    except (RelativeImageError, task.TaskError, RunyardError) as exc:
        task.fail(str(exc))
    print(f"image {image['virtualpath']}: size {image['size']}")
    task.finish({"image": image})
