"""Importing dependency packages (``XFP-DEP1.0``), and listing them.

An imported version is recorded (its install command, dependencies, author and
``metadata.json``) and its files are kept in ``dependency-packages/NAME/VERSION/`` in the data
directory, as a task type's are. Workers do not install them from there yet: a worker says
which dependency packages it has with ``runyard worker --provides NAME``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

from runyard.errors import Conflict, InvalidPackage
from runyard.operations.base import Operations
from runyard.packages import DependencyPackage, placed_files, same_files, version_key
from runyard.packages.documents import read_json, shown
from runyard.store import dependency_packages as dependency_rows
from runyard.store.dependency_packages import ImportedDependencyPackage

FOLDER = "dependency-packages"  # in the data directory
METADATA = "metadata.json"


class DependencyPackageManager(Operations):
    @property
    def folder(self) -> Path:
        """Where the files of imported dependency packages are kept (``NAME/VERSION/``)."""
        return self.settings.data_dir / FOLDER

    def import_package(
        self, package: DependencyPackage, *, actor: str = "system"
    ) -> tuple[ImportedDependencyPackage, bool]:
        """Record a dependency package version and keep its files; (package, False) if the
        same version with the same files is imported already. Another version of the same
        name is imported beside it; the same version with other files is refused.

        The files are written to a temporary folder and moved into place in the same
        transaction that records the package, so nothing half-imported stays behind.
        """
        _refuse_self_dependency(package)
        final = self.folder / package.name / package.version
        with self.store.write() as conn:
            existing = dependency_rows.find(conn, package.name, package.version)
            if existing:
                if same_files(final, package.files):
                    return existing[0], False
                raise Conflict(
                    f"dependency package {package.name} {package.version} is imported already "
                    "with other files; give the package a new version number",
                    name=package.name,
                    version=package.version,
                )
            record = _record(package, path=final, imported_at=self.now())
            with placed_files(final, package.files):
                new_id = dependency_rows.insert_dependency_package(
                    conn, record, version_key(package.version)
                )
                what = "virtual marker" if record.install is None else repr(record.install)
                self._log(
                    conn,
                    actor,
                    "dependency_package.import",
                    f"imported dependency package {package.name} {package.version} ({what})",
                )
        return replace(record, id=new_id), True

    def list_all(self) -> list[ImportedDependencyPackage]:
        """Every imported version, by name, the newest version of each first."""
        with self.store.read() as conn:
            return dependency_rows.list_all(conn)

    def find(self, name: str, version: str | None = None) -> list[ImportedDependencyPackage]:
        """The imported versions of ``name``, newest first (just ``version`` if given)."""
        with self.store.read() as conn:
            return dependency_rows.find(conn, name, version)


def _refuse_self_dependency(package: DependencyPackage) -> None:
    """A dependency package may not need itself."""
    for index, dependency in enumerate(package.dependencies):
        if dependency.name == package.name:
            raise InvalidPackage(
                f"names {shown(dependency.name)}, the package itself; a dependency package "
                "cannot need itself, remove this entry",
                file=METADATA,
                field=f"dependencies[{index}].name",
            )


def _record(
    package: DependencyPackage, *, path: Path, imported_at: datetime
) -> ImportedDependencyPackage:
    metadata = read_json(package.files, METADATA, what="every package needs a metadata.json")
    return ImportedDependencyPackage(
        name=package.name,
        version=package.version,
        display_name=package.display_name,
        summary=package.summary,
        install=package.install or None,
        dependencies=package.dependencies,
        author=asdict(package.documentation.author),
        metadata=metadata,
        path=str(path),
        imported_at=imported_at,
    )
