"""Installing task types from packages, and finding them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from runyard.builtin import package_folders
from runyard.errors import Conflict, InvalidPackage, NotFound
from runyard.models import TaskType
from runyard.operations.base import Operations
from runyard.packages import (
    Documentation,
    TaskTypePackage,
    load_package,
    placed_files,
    read_documentation,
    same_files,
    version_key,
)
from runyard.store import task_types as task_type_rows


class TaskTypeManager(Operations):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_id: dict[int, TaskType] = {}
        self._documentation: dict[int, Documentation] = {}

    def install(self, package: TaskTypePackage, *, actor: str = "system") -> tuple[TaskType, bool]:
        """Install a task type version; (task type, False) if the same files are installed.

        The files are written to a temporary folder and moved into place in the same
        transaction that records the task type, so nothing half-installed stays behind.
        """
        tt = package.task_type
        root = self.settings.task_types_dir
        final = root / tt.name / tt.version
        with self.store.write() as conn:
            existing = task_type_rows.find(conn, tt.name, tt.version)
            if existing:
                if same_files(final, package.files):
                    return existing[0], False
                raise Conflict(
                    f"task type {tt.name} {tt.version} is installed already with other files; "
                    "give the package a new version number",
                    name=tt.name,
                    version=tt.version,
                )
            with placed_files(final, package.files) as staging:
                if not (staging / tt.entry_point).is_file():
                    raise InvalidPackage(
                        f"entry point {tt.entry_point!r} is not in the package",
                        file="metadata.json",
                        field="entry_point",
                    )
                installed = replace(tt, path=str(final))
                new_id = task_type_rows.insert_task_type(
                    conn, installed, version_key(tt.version), self.now()
                )
                self._log(conn, actor, "task_type.install", f"installed {tt.name} {tt.version}")
        return replace(installed, id=new_id), True

    def install_builtin(self) -> list[TaskType]:
        """Install the task types that ship with Runyard (``runyard.builtin``) if they are
        not installed yet; all of them. Safe to call by several servers at once."""
        installed = []
        for folder in package_folders():
            package = load_package(folder)
            assert isinstance(package, TaskTypePackage), folder
            try:
                tt, _ = self.install(package, actor="runyard")
            except IntegrityError:  # another server installed it just now
                tt, _ = self.install(package, actor="runyard")
            installed.append(tt)
        return installed

    def list_all(self) -> list[TaskType]:
        with self.store.read() as conn:
            return task_type_rows.list_all(conn)

    def get_by_id(self, task_type_id: int) -> TaskType:
        """An installed task type version (they never change, so each is read once)."""
        cached = self._by_id.get(task_type_id)
        if cached is not None:
            return cached
        with self.store.read() as conn:
            found = task_type_rows.get(conn, task_type_id)
        if found is None:
            raise NotFound(f"no task type with id {task_type_id}")
        self._by_id[task_type_id] = found
        return found

    def find(self, name: str, version: str | None = None) -> list[TaskType]:
        with self.store.read() as conn:
            return task_type_rows.find(conn, name, version)

    def documentation(self, task_type: TaskType) -> Documentation:
        """The remarks, the author and the documentation files (description, CITATION.cff,
        readme) of an installed task type, read from its installed package (checked when it
        was imported; installed versions never change, so each is read once)."""
        cached = self._documentation.get(task_type.id)
        if cached is not None:
            return cached
        folder = Path(task_type.path)
        found = read_documentation(folder)
        if folder.is_dir():
            self._documentation[task_type.id] = found
        return found
