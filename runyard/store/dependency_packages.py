"""Statements on dependency packages (every imported version of every name), and their record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from runyard.models import Dependency
from runyard.store.schema import dependency_packages


@dataclass(frozen=True, kw_only=True)
class ImportedDependencyPackage:
    """A dependency package version as imported: ``install`` None is a "virtual marker" (it
    only flags workers that have some software already); ``path`` is the folder that keeps
    the package's files."""

    id: int = 0
    name: str
    version: str
    display_name: str = ""
    summary: str = ""
    install: str | None = None
    dependencies: tuple[Dependency, ...] = ()
    author: dict[str, str] = field(default_factory=dict)  # {"name", "email", "website"}
    metadata: dict[str, Any] = field(default_factory=dict)  # metadata.json as imported
    path: str = ""
    imported_at: datetime | None = None


def from_row(row: Row[Any]) -> ImportedDependencyPackage:
    m = row._mapping
    return ImportedDependencyPackage(
        id=m["id"],
        name=m["name"],
        version=m["version"],
        display_name=m["display_name"],
        summary=m["summary"],
        install=m["install"],
        dependencies=tuple(Dependency(**d) for d in m["dependencies"]),
        author=dict(m["author"]),
        metadata=dict(m["metadata"]),
        path=m["path"],
        imported_at=m["imported_at"],
    )


def insert_dependency_package(
    conn: Connection, pkg: ImportedDependencyPackage, version_key: str
) -> int:
    result = conn.execute(
        insert(dependency_packages).values(
            name=pkg.name,
            version=pkg.version,
            version_key=version_key,
            display_name=pkg.display_name,
            summary=pkg.summary,
            install=pkg.install,
            dependencies=[{"name": d.name, "version": d.version} for d in pkg.dependencies],
            author=pkg.author,
            metadata=pkg.metadata,
            path=pkg.path,
            imported_at=pkg.imported_at,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def find(
    conn: Connection, name: str, version: str | None = None
) -> list[ImportedDependencyPackage]:
    """Imported versions of ``name``, newest first (just ``version`` if given)."""
    query = select(dependency_packages).where(dependency_packages.c.name == name)
    if version is not None:
        query = query.where(dependency_packages.c.version == version)
    rows = conn.execute(query.order_by(dependency_packages.c.version_key.desc()))
    return [from_row(r) for r in rows]


def list_all(conn: Connection) -> list[ImportedDependencyPackage]:
    """Every imported version, by name, the newest version of each first."""
    rows = conn.execute(
        select(dependency_packages).order_by(
            dependency_packages.c.name, dependency_packages.c.version_key.desc()
        )
    )
    return [from_row(r) for r in rows]
