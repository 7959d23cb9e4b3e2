"""A task type package with every field XamFlow documents for ``metadata.json``
(``description_filename`` with a Markdown file, ``citation_cff_filename`` with a CITATION.cff,
``remarks``, ``author`` as ``{name, email, website}``, ``dependencies``, a ``readme.txt``)
imports and runs; its ``interface.json`` has no ``kind``, so it is a processing task.

Its dependency (``Compat.Python.numpy``) is on a worker that says it has it (``runyard worker
--provides Compat.Python.numpy --burst``), which runs the job. The dependency packages
themselves (``XFP-DEP1.0``: one with ``install: "%xfpip% install numpy"``, one "virtual
marker" with nothing to install) import too."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.acceptance.conftest import start_worker
from tests.compat.conftest import SOURCE, Lab

WORKFLOW = "Compat Metadata"


@pytest.fixture(scope="module")
def metadata_lab(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    with lab.feature("metadata"):
        for name in (SOURCE, "Compat.Metadata", "Workflow.Metadata"):
            lab.import_package(name)
        lab.start_workflow(WORKFLOW)
        lab.new_run(WORKFLOW, "Source", "seven", {"value": 7})
        folder = tmp_path_factory.mktemp("numpy-worker")
        worker = start_worker(
            lab.installation, "numpy", folder, "--provides", "Compat.Python.numpy", "--burst"
        )
        try:
            worker.wait(timeout=90)
        finally:
            worker.kill()  # only if it did not exit by itself
        lab.wait()
    return lab


def test_a_package_with_every_metadata_field_imports_and_its_job_runs(metadata_lab: Lab) -> None:
    metadata_lab.check("metadata")
    jobs = metadata_lab.runs(WORKFLOW)["seven"]
    assert metadata_lab.done(jobs.get("Showcase"), "Showcase") == {"result": 8}
    log = metadata_lab.log(jobs["Showcase"]["serial"])
    assert "adding one to 7" in log


def test_an_interface_without_kind_is_a_processing_task(metadata_lab: Lab) -> None:
    metadata_lab.check("metadata")
    [task_type] = metadata_lab.api("GET", "/api/task-types/Compat.Metadata")
    assert task_type["interface"].get("kind", "processing") == "processing"
    job = metadata_lab.runs(WORKFLOW)["seven"]["Showcase"]
    assert job["state"] == "Done"
    assert metadata_lab.job(job["serial"])["worker"], "a worker ran it"


def test_the_documentation_files_and_the_author_are_shown_with_the_task_type(
    metadata_lab: Lab,
) -> None:
    """The Markdown description, the CITATION.cff, the remarks and the author's name, e-mail
    and website are shown with the task type (the UI is built on this JSON)."""
    metadata_lab.check("metadata")
    [task_type] = metadata_lab.api("GET", "/api/task-types/Compat.Metadata")
    shown = json.dumps(task_type)
    missing = [
        what
        for what, text in [
            ("description.md", "Adds **one** to its input."),
            ("CITATION.cff", "Compat metadata showcase"),
            ("remarks", "Remarks of the compat package"),
            ("author name", "Ada Compat"),
            ("author email", "ada.compat@example.org"),
            ("author website", "https://example.org/compat"),
        ]
        if json.dumps(text)[1:-1] not in shown
    ]
    assert not missing, f"not shown with the task type: {missing}; the API gives {shown[:800]}"


def test_the_dependency_is_recorded_with_the_task_type(metadata_lab: Lab) -> None:
    metadata_lab.check("metadata")
    [task_type] = metadata_lab.api("GET", "/api/task-types/Compat.Metadata")
    dependencies = task_type["dependencies"]
    names = [d["name"] if isinstance(d, dict) else d for d in dependencies]
    assert names == ["Compat.Python.numpy"], dependencies


def test_the_package_files_are_kept(metadata_lab: Lab, tmp_path: Path) -> None:
    """The exported package holds the documentation files and readme.txt as imported."""
    metadata_lab.check("metadata")
    response = metadata_lab.http.get("/api/task-types/Compat.Metadata/1.2.0.0/package")
    assert response.status_code == 200, response.text
    xfp = tmp_path / "Compat.Metadata.xfp"
    xfp.write_bytes(response.content)
    with zipfile.ZipFile(xfp) as archive:
        names = {Path(n).name for n in archive.namelist()}
    assert {"description.md", "CITATION.cff", "readme.txt", "metadata.json"} <= names, names


def test_a_dependency_package_with_an_install_command_imports(metadata_lab: Lab) -> None:
    metadata_lab.import_package("Compat.Python.numpy")


def test_a_virtual_marker_dependency_package_without_an_install_command_imports(
    metadata_lab: Lab,
) -> None:
    """``Compat.Marker`` only flags workers that already have some software: nothing to
    install, so its ``metadata.json`` has no ``install``."""
    metadata_lab.import_package("Compat.Marker")
