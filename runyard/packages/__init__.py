"""Packages (``.xfp``): reading a folder or zip safely, and checking it fully.

A package is a task type (``XFP-TT1.0``), a workflow (``XFP-WF1.0``) or a dependency package
(``XFP-DEP1.0``). Every problem raises :class:`runyard.errors.InvalidPackage` naming the file,
the field and what to do; nothing is written anywhere.
"""

from __future__ import annotations

from pathlib import Path

from runyard.packages.archive import (
    PackageFiles,
    read_package,
    read_package_bytes,
    read_package_stream,
)
from runyard.packages.bundle import (
    folder_zip,
    folder_zip_bytes,
    placed_files,
    same_files,
    write_files,
)
from runyard.packages.documentation import (
    Author,
    Documentation,
    DocumentFile,
    read_documentation,
)
from runyard.packages.export import workflow_package_bytes
from runyard.packages.metadata import (
    DependencyPackage,
    parse_dependency_package,
    read_package_format,
    version_key,
)
from runyard.packages.parameters import check_value
from runyard.packages.schemas import DEPENDENCY_FORMAT, TASK_TYPE_FORMAT
from runyard.packages.task_types import TaskTypePackage, parse_task_type
from runyard.packages.workflows import (
    WorkflowPackage,
    WorkflowTaskSpec,
    parse_workflow,
    resolve_workflow,
)

Package = TaskTypePackage | WorkflowPackage | DependencyPackage


def parse_package(package: PackageFiles) -> Package:
    """Check the files of a package and return its record."""
    package_format = read_package_format(package.files)
    if package_format == TASK_TYPE_FORMAT:
        return parse_task_type(package.files)
    if package_format == DEPENDENCY_FORMAT:
        return parse_dependency_package(package.files)
    return parse_workflow(package.files)


def load_package(path: Path) -> Package:
    """Read and check the package folder or ``.xfp`` zip at ``path``."""
    return parse_package(read_package(path))


__all__ = [
    "Author",
    "DependencyPackage",
    "DocumentFile",
    "Documentation",
    "Package",
    "PackageFiles",
    "TaskTypePackage",
    "WorkflowPackage",
    "WorkflowTaskSpec",
    "check_value",
    "folder_zip",
    "folder_zip_bytes",
    "load_package",
    "parse_package",
    "placed_files",
    "read_documentation",
    "read_package",
    "read_package_bytes",
    "read_package_stream",
    "resolve_workflow",
    "same_files",
    "version_key",
    "workflow_package_bytes",
    "write_files",
]
