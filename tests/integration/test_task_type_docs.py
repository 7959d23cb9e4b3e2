"""Task type packages with every metadata field XamFlow documents, through the HTTP API on
SQLite and PostgreSQL: their documentation files (description, CITATION.cff, readme.txt),
remarks and author are kept with the task type and given by GET /api/task-types/NAME; the
exported package imports elsewhere with the same documentation; a file named by a field that
is not in the package refuses the import, naming the field, and nothing stays behind; a
workflow package's documented fields (display name, summary, author, documentation files,
remarks, dependencies, version) are kept with the workflow and written back by its export; the
parameter types of XamFlow's Core.Type.Base connect output to input as the server checks."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.packages import WorkflowPackage, parse_package, read_package_bytes
from runyard.server.app import create_app
from runyard.settings import Settings
from tests.integration.conftest import Server

AUTHOR = {"name": "Ada Lab", "email": "ada@lab.org", "website": "https://lab.org/ada"}
DESCRIPTION = "# Threshold\n\nSplits **bone** from background.\n"
CITATION = 'cff-version: 1.2.0\ntitle: "Threshold"\n'
README = "Threshold\n=========\nRead me first.\n"


def package(files: dict[str, Any]) -> bytes:
    """An .xfp zip of ``files`` (JSON for dicts, text for strings)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            data = content if isinstance(content, str) else json.dumps(content)
            archive.writestr(name, data)
    return buffer.getvalue()


def documented(name: str = "Lab.Threshold", **changes: Any) -> dict[str, Any]:
    """A task type package with every metadata field XamFlow documents, and a readme.txt."""
    metadata = {
        "package_format": "XFP-TT1.0",
        "name": name,
        "version": "1.2.0.0",
        "display_name": "Threshold",
        "summary": "Binarises an image.",
        "description_filename": "docs/description.md",
        "citation_cff_filename": "CITATION.cff",
        "remarks": "Written for the *bone* study.",
        "author": AUTHOR,
        "dependencies": [{"name": "Core.Python.numpy", "version": "1.0.0.0"}],
    } | changes
    interface = {"inputs": [{"key": "value", "type": "Int"}], "outputs": []}
    return {
        "metadata.json": metadata,
        "interface.json": interface,
        "main.py": "print('hi')\n",
        "docs/description.md": DESCRIPTION,
        "CITATION.cff": CITATION,
        "readme.txt": README,
    }


def import_package(client: TestClient, files: dict[str, Any]) -> Any:
    return client.post("/api/packages", content=package(files))


def counts(ry: Runyard) -> dict[str, int]:
    with ry.store.read() as conn:
        return {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("task_types", "workflows", "tasks")
        }


EXPECTED_DOCUMENTATION = {
    "remarks": "Written for the *bone* study.",
    "author": AUTHOR,
    "description": {"filename": "docs/description.md", "text": DESCRIPTION},
    "citation_cff": {"filename": "CITATION.cff", "text": CITATION},
    "readme": {"filename": "readme.txt", "text": README},
}


def test_a_task_type_with_every_documented_field_gives_its_documentation(server: Server) -> None:
    answer = import_package(server.client, documented())
    assert answer.status_code == 200, answer.text
    assert answer.json()["task_type"]["author"] == "Ada Lab"

    [found] = server.client.get("/api/task-types/Lab.Threshold").json()

    assert found["documentation"] == EXPECTED_DOCUMENTATION
    assert (found["display_name"], found["summary"]) == ("Threshold", "Binarises an image.")
    assert found["dependencies"] == [{"name": "Core.Python.numpy", "version": "1.0.0.0"}]
    assert found["interface"]["kind"] == "processing"  # interface.json has no kind


def test_a_task_type_without_documentation_files_gives_an_empty_documentation(
    server: Server,
) -> None:
    files = documented(description_filename=None, citation_cff_filename=None, author="Lab")
    files["metadata.json"] = {k: v for k, v in files["metadata.json"].items() if v is not None}
    del files["readme.txt"]
    assert import_package(server.client, files).status_code == 200

    [found] = server.client.get("/api/task-types/Lab.Threshold").json()

    assert found["author"] == "Lab"
    assert found["documentation"] == {
        "remarks": "Written for the *bone* study.",
        "author": {"name": "Lab", "email": "", "website": ""},
        "description": None,
        "citation_cff": None,
        "readme": None,
    }


def test_an_exported_task_type_imports_elsewhere_with_the_same_documentation(
    server: Server, tmp_path: Path
) -> None:
    assert import_package(server.client, documented()).status_code == 200
    exported = server.client.get("/api/task-types/Lab.Threshold/1.2.0.0/package")
    assert exported.status_code == 200

    other = Runyard(
        Settings(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'o.db'}")
    ).open()
    try:
        token = other.auth.ensure_admin_token()
        with TestClient(create_app(other), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            again = client.post("/api/packages", content=exported.content)
            assert again.status_code == 200, again.text
            [found] = client.get("/api/task-types/Lab.Threshold").json()
    finally:
        other.close()

    assert found["documentation"] == EXPECTED_DOCUMENTATION
    metadata = parse_package(read_package_bytes(exported.content, "export.xfp"))
    assert metadata.documentation.author.website == "https://lab.org/ada"


def test_a_documentation_file_missing_from_the_package_refuses_it_and_nothing_stays(
    server: Server,
) -> None:
    before = counts(server.ry)
    files = documented()
    del files["CITATION.cff"]

    answer = import_package(server.client, files)

    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "invalid_package"
    assert error["details"] == {"file": "metadata.json", "field": "citation_cff_filename"}
    assert '"CITATION.cff", which is not in the package' in error["message"]
    assert counts(server.ry) == before
    assert not (server.ry.settings.task_types_dir / "Lab.Threshold").exists()
    assert server.client.get("/api/task-types/Lab.Threshold").json() == []


def test_a_documentation_file_outside_the_package_refuses_it(server: Server) -> None:
    answer = import_package(server.client, documented(description_filename="../etc/passwd"))

    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["field"] == "description_filename"
    assert "'..', which would leave the package" in answer.json()["error"]["message"]
    assert server.client.get("/api/task-types/Lab.Threshold").json() == []


def test_a_workflow_package_with_every_documented_field_imports(server: Server) -> None:
    assert import_package(server.client, documented()).status_code == 200
    metadata = {
        "package_format": "XFP-WF1.0",
        "name": "Bone study",
        "version": "1.0.0.0",
        "display_name": "Bone study",
        "summary": "Threshold every scan.",
        "description_filename": "about.md",
        "citation_cff_filename": "CITATION.cff",
        "remarks": "A workflow with *remarks*.",
        "author": AUTHOR,
        "dependencies": [],
    }
    tasks = {"tasks": [{"name": "T", "task_type": {"name": "Lab.Threshold"}}]}
    files = {"metadata.json": metadata, "tasks.json": tasks, "about.md": "# About\n"}
    files["CITATION.cff"] = CITATION

    answer = import_package(server.client, files)

    assert answer.status_code == 200, answer.text
    assert answer.json()["workflow"]["remarks"] == "A workflow with *remarks*."


def documented_workflow(name: str = "Bone study") -> dict[str, Any]:
    """A workflow package with every field XamFlow documents, and a readme.txt."""
    metadata = {
        "package_format": "XFP-WF1.0",
        "name": name,
        "version": "2.3.0.0",
        "display_name": "Bone study",
        "summary": "Threshold every scan.",
        "description_filename": "docs/about.md",
        "citation_cff_filename": "CITATION.cff",
        "remarks": "A workflow with *remarks*.",
        "author": AUTHOR,
        "dependencies": [{"name": "Core.Python.numpy", "version": "1.0.0.0"}],
    }
    source = {"mode": "fixed", "fixed_value": 3}
    tasks = {
        "tasks": [
            {
                "name": "T",
                "task_type": {"name": "Lab.Threshold", "version": "1.2.0.0"},
                "inputs": [{"key": "value", "source": source}],
            }
        ]
    }
    return {
        "metadata.json": metadata,
        "tasks.json": tasks,
        "docs/about.md": "# About\n\nThe *bone* study.\n",
        "CITATION.cff": CITATION,
        "readme.txt": README,
    }


@contextmanager
def elsewhere(tmp_path: Path) -> Iterator[TestClient]:
    """Another Runyard (SQLite), its API as its admin."""
    other = Runyard(
        Settings(data_dir=tmp_path / "other", database_url=f"sqlite:///{tmp_path / 'o.db'}")
    ).open()
    try:
        token = other.auth.ensure_admin_token()
        with TestClient(create_app(other), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client
    finally:
        other.close()


def metadata_of(xfp: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(xfp)) as archive:
        data: dict[str, Any] = json.loads(archive.read("metadata.json"))
        return data


def test_an_exported_workflow_imports_elsewhere_with_every_documented_field(
    server: Server, tmp_path: Path
) -> None:
    """Display name, summary, author, the description, CITATION.cff and readme files,
    remarks, dependencies and the package's version go out with the export and come back
    from an import elsewhere (and that server's export writes them again)."""
    files = documented_workflow()
    assert import_package(server.client, documented()).status_code == 200
    assert import_package(server.client, files).status_code == 200

    exported = server.client.get("/api/workflows/Bone study/export")

    assert exported.status_code == 200, exported.text
    imported = parse_package(read_package_bytes(package(files), "imported.xfp"))
    out = parse_package(read_package_bytes(exported.content, "exported.xfp"))
    assert isinstance(imported, WorkflowPackage) and isinstance(out, WorkflowPackage)
    assert out == replace(imported, tasks=out.tasks)
    assert out.tasks[0].inputs[0].source.fixed_value == 3
    assert metadata_of(exported.content) == files["metadata.json"]
    task_type = server.client.get("/api/task-types/Lab.Threshold/1.2.0.0/package").content
    with elsewhere(tmp_path) as client:
        assert client.post("/api/packages", content=task_type).status_code == 200
        again = client.post("/api/packages", content=exported.content)
        assert again.status_code == 200, again.text
        assert again.json()["workflow"]["remarks"] == "A workflow with *remarks*."
        exported_again = client.get("/api/workflows/Bone study/export").content
    assert parse_package(read_package_bytes(exported_again, "again.xfp")) == out
    assert metadata_of(exported_again) == files["metadata.json"]


def test_a_workflow_made_in_the_editor_exports_only_its_name_remarks_and_tasks(
    server: Server,
) -> None:
    assert import_package(server.client, documented()).status_code == 200
    made = server.client.post("/api/workflows", json={"name": "Fresh", "remarks": "*new*"})
    assert made.status_code == 200, made.text
    task = {"name": "T", "task_type": {"name": "Lab.Threshold"}}
    assert server.client.post("/api/workflows/Fresh/tasks", json=task).status_code == 200

    exported = server.client.get("/api/workflows/Fresh/export")

    assert exported.status_code == 200, exported.text
    assert metadata_of(exported.content) == {
        "package_format": "XFP-WF1.0",
        "name": "Fresh",
        "version": "1.0.0.0",
        "remarks": "*new*",
    }
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        assert sorted(archive.namelist()) == ["metadata.json", "tasks.json"]


# -- Core.Type.Base parameter types -------------------------------------------------------------


def typed(name: str, kind: str, inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
    metadata = {"package_format": "XFP-TT1.0", "name": name, "version": "1.0.0.0"}
    return {
        "metadata.json": metadata,
        "interface.json": {"kind": kind, "inputs": inputs, "outputs": outputs},
        "main.py": "print('hi')\n",
    }


def bitmap_lab(server: Server) -> None:
    """Task types: a source of a Bitmap, a CSV and a chart report; a task taking a Bitmap;
    a reduce task taking a list of Bitmaps; a task taking a Mesh."""
    client = server.client
    source_outputs = [
        {"key": "picture", "type": "Bitmap"},
        {"key": "table", "type": "CSV"},
        {"key": "chart", "type": "ChartReport"},
    ]
    for files in (
        typed("Lab.Source", "interactive", [], source_outputs),
        typed("Lab.Show", "processing", [{"key": "picture", "type": "Bitmap"}], []),
        typed("Lab.Album", "reduce", [{"key": "pictures", "type": "List[Bitmap]"}], []),
        typed("Lab.Surface", "processing", [{"key": "mesh", "type": "Mesh"}], []),
    ):
        assert import_package(client, files).status_code == 200
    assert client.post("/api/workflows", json={"name": "Pictures"}).status_code == 200
    source = {"name": "Source", "task_type": {"name": "Lab.Source"}}
    assert client.post("/api/workflows/Pictures/tasks", json=source).status_code == 200


def add(server: Server, name: str, task_type: str, key: str) -> Any:
    source = {"mode": "output", "task": "Source", "key": "picture"}
    body = {
        "name": name,
        "task_type": {"name": task_type},
        "inputs": [{"key": key, "source": source}],
    }
    return server.client.post("/api/workflows/Pictures/tasks", json=body)


def test_a_bitmap_output_connects_to_a_bitmap_input_and_a_reduce_list_of_bitmaps(
    server: Server,
) -> None:
    bitmap_lab(server)

    assert add(server, "Show", "Lab.Show", "picture").status_code == 200
    assert add(server, "Album", "Lab.Album", "pictures").status_code == 200

    tasks = server.client.get("/api/workflows/Pictures").json()["tasks"]
    assert [t["name"] for t in tasks] == ["Source", "Show", "Album"]


def test_a_bitmap_output_does_not_connect_to_a_mesh_input(server: Server) -> None:
    bitmap_lab(server)

    answer = add(server, "Surface", "Lab.Surface", "mesh")

    assert answer.status_code == 422, answer.text
    assert "needs an output of type Mesh" in answer.json()["error"]["message"]


def test_a_new_run_keeps_file_references_and_composite_values_of_core_types(
    server: Server,
) -> None:
    bitmap_lab(server)
    png = b"\x89PNG\r\n\x1a\n" + bytes(32)
    params = {"filename": "slice.png", "size": len(png), "sha256": hashlib.sha256(png).hexdigest()}
    stored = server.client.post("/api/files", params=params, content=png).json()
    outputs = {
        "picture": stored | {"type": "Bitmap"},
        "table": None,
        "chart": {"title": "Density", "series": [{"x": [1, 2], "y": [3.5, 4]}]},
    }

    answer = server.client.post(
        "/api/workflows/Pictures/runs", json={"task": "Source", "outputs": outputs}
    )

    assert answer.status_code == 200, answer.text
    job = server.client.get(f"/api/jobs/{answer.json()['serial']}").json()
    assert job["outputs"] == outputs
    refused = server.client.post(
        "/api/workflows/Pictures/runs", json={"task": "Source", "outputs": {"picture": "a.png"}}
    )
    assert refused.status_code == 422
    assert "an object or null (Bitmap)" in refused.json()["error"]["message"]
