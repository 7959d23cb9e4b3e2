"""What a package says about itself for people: its remarks, its author, and its
documentation files (the Markdown or text file named by ``description_filename``, the
``CITATION.cff`` named by ``citation_cff_filename``, and a top-level ``readme.txt``).

At import the files a field names are checked (in the package, inside it, text of at most
``MAX_DOCUMENT_BYTES``) and a problem refuses the package naming the field; an installed
package's documentation is read back from its folder, leniently (it was checked once).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard.errors import InvalidPackage
from runyard.packages.archive import path_problem
from runyard.packages.documents import shown

METADATA = "metadata.json"
MAX_DOCUMENT_BYTES = 1 << 20  # 1 MiB: a page of documentation is a few KiB
README_NAMES = ("readme.txt", "readme.md")  # top-level, any case
# Fields of metadata.json that name a documentation file of the package.
DOCUMENT_FIELDS = {"description": "description_filename", "citation_cff": "citation_cff_filename"}
_EXAMPLES = {"description_filename": "description.md", "citation_cff_filename": "CITATION.cff"}

ReadFile = Callable[[str], bytes | None]


@dataclass(frozen=True, kw_only=True)
class Author:
    """Who wrote a package: ``author`` as a name, or as ``{name, email, website}``."""

    name: str = ""
    email: str = ""
    website: str = ""

    def __str__(self) -> str:
        return self.name or self.email or self.website


@dataclass(frozen=True, kw_only=True)
class DocumentFile:
    """A documentation file of a package: its path in the package and its text."""

    filename: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Documentation:
    """The remarks, the author and the documentation files of a package."""

    remarks: str = ""
    author: Author = field(default_factory=Author)
    description: DocumentFile | None = None
    citation_cff: DocumentFile | None = None
    readme: DocumentFile | None = None


def author_of(metadata: Mapping[str, Any]) -> Author:
    """The ``author`` of checked metadata: a plain name, or an object."""
    value = metadata.get("author", "")
    if isinstance(value, str):
        return Author(name=value)
    return Author(**{k: str(value.get(k, "")) for k in ("name", "email", "website")})


def documentation_of(metadata: Mapping[str, Any], files: Mapping[str, bytes]) -> Documentation:
    """The documentation of a package being imported (``metadata`` checked against its
    schema); a file named by a field that is missing, outside the package, too large or not
    text refuses the package, naming the field."""
    return _documentation(metadata, files.get, _readme_name(files), strict=True)


def read_documentation(folder: Path) -> Documentation:
    """The documentation of the package installed in ``folder``; what cannot be read (a
    folder removed by hand) is left out."""

    def read(name: str) -> bytes | None:
        if path_problem(name):
            return None
        path = folder / name
        try:
            if path.is_symlink() or not path.is_file():
                return None
            if path.stat().st_size > MAX_DOCUMENT_BYTES:
                return None
            return path.read_bytes()
        except OSError:
            return None

    data = read(METADATA)
    try:
        metadata = json.loads(data.decode("utf-8-sig")) if data else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        metadata = {}
    if not isinstance(metadata, dict):
        metadata = {}
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        names = []
    return _documentation(metadata, read, _readme_name(names), strict=False)


def _documentation(
    metadata: Mapping[str, Any], read: ReadFile, readme: str | None, *, strict: bool
) -> Documentation:
    found: dict[str, DocumentFile | None] = {}
    for name, key in DOCUMENT_FIELDS.items():
        filename = metadata.get(key)
        found[name] = (
            _named_document(key, filename, read, strict) if isinstance(filename, str) else None
        )
    remarks = metadata.get("remarks", "")
    author = metadata.get("author", "")
    return Documentation(
        remarks=remarks if isinstance(remarks, str) else "",
        author=author_of(metadata) if isinstance(author, str | dict) else Author(),
        description=found["description"],
        citation_cff=found["citation_cff"],
        readme=_readme(readme, read, found.values()),
    )


class _NotADocument(ValueError):
    pass


def _named_document(key: str, filename: str, read: ReadFile, strict: bool) -> DocumentFile | None:
    """The file that field ``key`` names; a problem refuses the package if ``strict``."""
    try:
        return DocumentFile(filename=filename, text=_document_text(key, filename, read))
    except _NotADocument as e:
        if strict:
            raise InvalidPackage(str(e), file=METADATA, field=key) from None
        return None


def _document_text(key: str, filename: str, read: ReadFile) -> str:
    problem = path_problem(filename)
    if problem:
        raise _NotADocument(
            f'{problem}; give the file\'s path relative to the package, like "{_EXAMPLES[key]}"'
        )
    data = read(filename)
    if data is None:
        raise _NotADocument(
            f"is {shown(filename)}, which is not in the package; add the file or correct the name"
        )
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _NotADocument(
            f"names {shown(filename)}, which has {len(data)} bytes, more than "
            f"{MAX_DOCUMENT_BYTES} (1 MiB); shorten it"
        )
    text = document_text(data)
    if text is None:
        raise _NotADocument(
            f"names {shown(filename)}, which is not a text file; name a Markdown or plain text file"
        )
    return text


def _readme_name(names: Iterable[str]) -> str | None:
    """The top-level readme among ``names`` (``readme.txt`` before ``readme.md``)."""
    top = sorted(n for n in names if "/" not in n and n.lower() in README_NAMES)
    return min(top, key=lambda n: README_NAMES.index(n.lower()), default=None)


def _readme(
    name: str | None, read: ReadFile, named: Iterable[DocumentFile | None]
) -> DocumentFile | None:
    """The readme, unless it is missing, not text, too large or a file already named."""
    if name is None or any(d is not None and d.filename == name for d in named):
        return None
    data = read(name)
    if data is None or len(data) > MAX_DOCUMENT_BYTES:
        return None
    text = document_text(data)
    return None if text is None else DocumentFile(filename=name, text=text)


def document_text(data: bytes) -> str | None:
    """The text of a documentation file: UTF-8 (with or without a byte order mark), UTF-16
    with a byte order mark, else Windows-1252; None if it is not text (NUL characters)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", "replace")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace")
    if "\x00" in text:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")
