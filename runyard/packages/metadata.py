"""``metadata.json``, which every package has, and the dependency package, which is only that."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import InvalidInput, InvalidPackage
from runyard.models import Dependency
from runyard.packages import schemas
from runyard.packages.documentation import Documentation, author_of, documentation_of
from runyard.packages.documents import read_json, shown, validate

METADATA = "metadata.json"


@dataclass(frozen=True, kw_only=True)
class DependencyPackage:
    """Software that task types need on a worker, installed by the ``install`` command."""

    name: str
    version: str
    display_name: str = ""
    summary: str = ""
    author: str = ""
    install: str = ""  # empty: a "virtual marker" that flags workers with some software
    dependencies: tuple[Dependency, ...] = ()
    files: Mapping[str, bytes]
    documentation: Documentation = field(default_factory=Documentation)


def version_key(version: str) -> str:
    """A string that sorts like the version: each of the four numbers padded to 10 digits."""
    parts = version.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 10 for p in parts):
        raise InvalidInput(
            f'version {shown(version)} must be four whole numbers separated by dots, like "1.2.0.0"'
        )
    return ".".join(p.zfill(10) for p in parts)


def read_metadata(files: Mapping[str, bytes], schema: schemas.Schema) -> dict[str, Any]:
    """``metadata.json`` checked against ``schema`` (which fixes the package format)."""
    metadata: dict[str, Any] = read_json(
        files, METADATA, what="every package needs a metadata.json at its top level"
    )
    validate(metadata, schema, METADATA)
    return metadata


def read_package_format(files: Mapping[str, bytes]) -> str:
    """The ``package_format`` of ``metadata.json``, one of the known formats."""
    metadata = read_json(
        files, METADATA, what="every package needs a metadata.json at its top level"
    )
    validate(metadata, schemas.PACKAGE_FORMAT, METADATA)
    package_format: str = metadata["package_format"]
    return package_format


def dependencies(metadata: Mapping[str, Any]) -> tuple[Dependency, ...]:
    """The ``dependencies`` of checked metadata; each name may appear only once."""
    result: list[Dependency] = []
    for index, item in enumerate(metadata.get("dependencies", ())):
        if any(d.name == item["name"] for d in result):
            raise InvalidPackage(
                f"names dependency package {shown(item['name'])} a second time; "
                "list each dependency package once, with the version you need",
                file=METADATA,
                field=f"dependencies[{index}].name",
            )
        result.append(Dependency(name=item["name"], version=item["version"]))
    return tuple(result)


def parse_dependency_package(files: Mapping[str, bytes]) -> DependencyPackage:
    metadata = read_metadata(files, schemas.DEPENDENCY_METADATA)
    return DependencyPackage(
        name=metadata["name"],
        version=metadata["version"],
        display_name=metadata.get("display_name", ""),
        summary=metadata.get("summary", ""),
        author=str(author_of(metadata)),
        install=metadata.get("install", ""),
        dependencies=dependencies(metadata),
        files=files,
        documentation=documentation_of(metadata, files),
    )
