"""Dependency packages (``XFP-DEP1.0``) through the HTTP API on SQLite and PostgreSQL: one with
an ``install`` command and a "virtual marker" without one import, are listed by GET
/api/dependency-packages and keep their files in the data directory; several versions
coexist; the same version imported again is harmless with the same files and refused with
others; a bad package is refused naming the field, and nothing of it stays. Task types
needing them import as before, and a worker still says what it has with ``--provides``:
importing a package does not put it on any worker. ``runyard import`` says what it imported."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from runyard.cli import app
from runyard.packages import folder_zip_bytes
from runyard.store import dependency_packages as dependency_rows
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import Server

AUTHOR = {"name": "Ada Lab", "email": "ada@lab.org", "website": "https://lab.org/ada"}


def package(files: dict[str, Any]) -> bytes:
    """An .xfp zip of ``files`` (JSON for dicts and lists, text for strings)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content if isinstance(content, str) else json.dumps(content))
    return buffer.getvalue()


def dependency(name: str = "Core.Python.numpy", **changes: Any) -> dict[str, Any]:
    """The metadata.json of a dependency package (a key changed to None is left out)."""
    metadata = {
        "package_format": "XFP-DEP1.0",
        "name": name,
        "version": "1.0.0.0",
        "display_name": "numpy",
        "summary": "numpy in the task type's Python environment.",
        "install": "%xfpip% install numpy",
        "dependencies": [{"name": "Core.Host.Python3", "version": "3.11.0.0"}],
        "author": AUTHOR,
        "remarks": "Pinned by the *bone* study.",
    } | changes
    return {k: v for k, v in metadata.items() if v is not None}


def marker(**changes: Any) -> dict[str, Any]:
    """A "virtual marker": no install command, it only flags workers that have Python 3."""
    return dependency(
        "Core.Host.Python3",
        version="3.11.0.0",
        display_name="Python 3",
        summary="A worker with Python 3.",
        install=None,
        dependencies=[],
        author=None,
        remarks=None,
        **changes,
    )


def import_package(server: Server, metadata: dict[str, Any], **files: str) -> Any:
    return server.client.post(
        "/api/packages", content=package({"metadata.json": metadata, **files})
    )


def rows(server: Server) -> int:
    with server.ry.store.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM dependency_packages")).scalar_one())


def kept(server: Server) -> Path:
    return server.ry.settings.data_dir / "dependency-packages"


def kept_files(server: Server) -> set[str]:
    folder = kept(server)
    if not folder.exists():
        return set()
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# -- importing ----------------------------------------------------------------------------------


def test_a_dependency_package_with_an_install_command_is_recorded_and_its_files_kept(
    server: Server,
) -> None:
    answer = import_package(server, dependency(), **{"readme.txt": "numpy for the lab\n"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["kind"], body["installed"]) == ("dependency", True)
    expected = {
        "name": "Core.Python.numpy",
        "version": "1.0.0.0",
        "display_name": "numpy",
        "summary": "numpy in the task type's Python environment.",
        "install": "%xfpip% install numpy",
        "virtual_marker": False,
        "dependencies": [{"name": "Core.Host.Python3", "version": "3.11.0.0"}],
        "author": AUTHOR,
        "remarks": "Pinned by the *bone* study.",
    }
    assert body["dependency_package"] | {"imported_at": None} == expected | {"imported_at": None}
    [listed] = server.client.get("/api/dependency-packages").json()
    assert listed == body["dependency_package"]
    assert kept_files(server) == {
        "Core.Python.numpy/1.0.0.0/metadata.json",
        "Core.Python.numpy/1.0.0.0/readme.txt",
    }
    folder = kept(server) / "Core.Python.numpy" / "1.0.0.0"
    assert json.loads((folder / "metadata.json").read_text()) == dependency()
    activity = server.client.get("/api/activity").json()
    assert any(
        e["action"] == "dependency_package.import" and "Core.Python.numpy 1.0.0.0" in e["message"]
        for e in activity
    )


def test_a_virtual_marker_without_an_install_command_is_recorded_with_install_null(
    server: Server,
) -> None:
    answer = import_package(server, marker())

    assert answer.status_code == 200, answer.text
    imported = answer.json()["dependency_package"]
    assert (imported["name"], imported["install"], imported["virtual_marker"]) == (
        "Core.Host.Python3",
        None,
        True,
    )
    assert imported["author"] == {"name": "", "email": "", "website": ""}
    with server.ry.store.read() as conn:
        [record] = dependency_rows.find(conn, "Core.Host.Python3")
    assert record.install is None
    assert record.metadata == marker()
    assert Path(record.path) == kept(server) / "Core.Host.Python3" / "3.11.0.0"


def test_several_versions_of_a_dependency_package_coexist_newest_first(server: Server) -> None:
    for version in ("1.2.0.0", "1.10.0.0", "1.9.0.0"):
        install = f"%xfpip% install numpy=={version}"
        assert import_package(server, dependency(version=version, install=install)).is_success
    assert import_package(server, marker()).is_success

    listed = server.client.get("/api/dependency-packages").json()

    assert [(p["name"], p["version"]) for p in listed] == [
        ("Core.Host.Python3", "3.11.0.0"),
        ("Core.Python.numpy", "1.10.0.0"),
        ("Core.Python.numpy", "1.9.0.0"),
        ("Core.Python.numpy", "1.2.0.0"),
    ]
    assert listed[1]["install"] == "%xfpip% install numpy==1.10.0.0"


def test_importing_the_same_version_with_the_same_files_again_changes_nothing(
    server: Server,
) -> None:
    first = import_package(server, dependency()).json()

    again = import_package(server, dependency())

    assert again.status_code == 200, again.text
    assert again.json() == first | {"installed": False}
    assert rows(server) == 1
    imports = [
        e
        for e in server.client.get("/api/activity").json()
        if e["action"] == "dependency_package.import"
    ]
    assert len(imports) == 1


def test_the_same_version_with_other_files_is_refused_and_the_first_stays(
    server: Server,
) -> None:
    assert import_package(server, dependency()).status_code == 200

    answer = import_package(server, dependency(install="%xfpip% install numpy==2.1.0"))

    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"] == (
        "dependency package Core.Python.numpy 1.0.0.0 is imported already with other files; "
        "give the package a new version number"
    )
    [listed] = server.client.get("/api/dependency-packages").json()
    assert listed["install"] == "%xfpip% install numpy"
    folder = kept(server) / "Core.Python.numpy" / "1.0.0.0"
    assert json.loads((folder / "metadata.json").read_text()) == dependency()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "num py"}, "name", "letters, digits, dots, dashes and underscores"),
        ({"name": ""}, "name", "letters, digits, dots, dashes and underscores"),
        ({"version": "1.0"}, "version", "four whole numbers"),
        ({"version": "1.02.0.0"}, "version", "no leading zeros"),
        ({"install": 5}, "install", "must be a string"),
        ({"install": ["%xfpip%", "install", "numpy"]}, "install", "must be a string"),
        ({"install": "   "}, "install", "a command like"),
        ({"dependencies": "Core.Host.Python3"}, "dependencies", "must be a list"),
        ({"dependencies": [{"name": "Core.Host.Python3"}]}, "dependencies[0].version", "missing"),
        ({"dependencies": [{"name": "x y", "version": "1.0.0.0"}]}, "dependencies[0].name", ""),
        (
            {"dependencies": [{"name": "Core.Host.Python3", "version": "3"}]},
            "dependencies[0].version",
            "four whole numbers",
        ),
        (
            {
                "dependencies": [
                    {"name": "Core.Host.Python3", "version": "3.11.0.0"},
                    {"name": "Core.Host.Python3", "version": "3.12.0.0"},
                ]
            },
            "dependencies[1].name",
            "a second time",
        ),
        (
            {"dependencies": [{"name": "Core.Python.numpy", "version": "1.0.0.0"}]},
            "dependencies[0].name",
            "cannot need itself",
        ),
        ({"author": 7}, "author", ""),
        ({"instal": "%xfpip% install numpy"}, "instal", "not a known field"),
    ],
)
def test_a_bad_dependency_package_is_refused_naming_the_field_and_nothing_stays(
    server: Server, changes: dict[str, Any], field: str, words: str
) -> None:
    answer = import_package(server, dependency(**changes))

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_package"
    assert error["details"] == {"file": "metadata.json", "field": field}
    assert error["message"].startswith(f"metadata.json: {field}: ")
    assert words in error["message"]
    assert rows(server) == 0
    assert kept_files(server) == set()
    assert server.client.get("/api/dependency-packages").json() == []


def test_a_failure_while_recording_leaves_neither_a_row_nor_files(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(dependency_rows, "insert_dependency_package", broken)

    answer = import_package(server, dependency())

    assert answer.status_code == 500
    assert "the disk is full" in answer.json()["error"]["message"]
    assert rows(server) == 0
    assert list(kept(server).iterdir()) == []  # no staging folder either


def test_only_an_admin_imports_a_dependency_package(server: Server) -> None:
    token = server.client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"]

    answer = server.client.post(
        "/api/packages",
        content=package({"metadata.json": marker()}),
        headers=server.as_token(token),
    )

    assert answer.status_code == 403
    assert rows(server) == 0


# -- task types that need them, and workers -------------------------------------------------------


def needing(name: str, dependencies: list[dict[str, str]]) -> dict[str, Any]:
    metadata = {
        "package_format": "XFP-TT1.0",
        "name": name,
        "version": "1.0.0.0",
        "dependencies": dependencies,
    }
    interface = {"inputs": [{"key": "value", "type": "Int"}], "outputs": []}
    return {"metadata.json": metadata, "interface.json": interface, "main.py": "print(1)\n"}


def test_task_types_needing_an_imported_a_missing_or_a_virtual_marker_package_import(
    server: Server,
) -> None:
    assert import_package(server, dependency()).status_code == 200
    assert import_package(server, marker()).status_code == 200
    cases = {
        "Lab.Imported": [{"name": "Core.Python.numpy", "version": "1.0.0.0"}],
        "Lab.Missing": [{"name": "Core.Python.scipy", "version": "1.0.0.0"}],
        "Lab.Marker": [{"name": "Core.Host.Python3", "version": "3.11.0.0"}],
        "Lab.OtherVersion": [{"name": "Core.Python.numpy", "version": "9.0.0.0"}],
    }
    for name, dependencies in cases.items():
        answer = server.client.post("/api/packages", content=package(needing(name, dependencies)))
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["task_type"]["dependencies"] == dependencies


def test_an_imported_package_is_on_no_worker_until_a_worker_provides_it(server: Server) -> None:
    """Importing ``Tool.A`` records it; the job that needs it still shows ``Worker missing``
    until a worker registers saying it has it (``runyard worker --provides Tool.A``)."""
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Tools"]:
        server.client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    tool = dependency("Tool.A", install="%xfpip% install tool-a", dependencies=[])
    assert import_package(server, tool).status_code == 200
    server.client.post("/api/workflows/Tools/start").raise_for_status()
    server.client.post(
        "/api/workflows/Tools/runs", json={"task": "Source", "outputs": {"value": 1}}
    ).raise_for_status()
    token = server.client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"]

    def register(provides: list[str]) -> dict[str, Any]:
        server.client.post(
            "/api/workers/register",
            json={"name": "w1", "max_jobs": 1, "provides": provides},
            headers=server.as_token(token),
        ).raise_for_status()
        page: dict[str, Any] = server.client.get("/api/workflows/Tools/runs").json()
        return page

    page = register([])
    assert page["worker_missing"] == {"Tool": ["Tool.A"]}
    assert page["runs"][0]["jobs"]["Tool"]["worker_missing"] == ["Tool.A"]
    assert register(["Tool.A"])["worker_missing"] == {}


# -- runyard import -------------------------------------------------------------------------------


class InProcessClient:
    """What ``runyard import`` uses of ``runyard.client.Client``, on the in-process server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def post(self, path: str, **kwargs: Any) -> Any:
        answer = self.server.client.post(path, **kwargs)
        answer.raise_for_status()
        return answer.json()


def test_runyard_import_says_what_it_imported_for_every_kind_of_package(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("runyard.cli.context.client", lambda *args: InProcessClient(server))
    folders = []
    for name, metadata in (("numpy", dependency()), ("python", marker())):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "metadata.json").write_text(json.dumps(metadata))
        folders.append(str(folder))
    task_types = [str(TASK_TYPES / "Source"), str(TASK_TYPES / "XfScale")]
    packages = [*folders, *task_types, str(WORKFLOWS / "Compat"), folders[0], task_types[0]]

    result = CliRunner().invoke(app, ["import", *packages])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "imported dependency package Core.Python.numpy 1.0.0.0 (install: %xfpip% install numpy)",
        "imported dependency package Core.Host.Python3 3.11.0.0 (virtual marker)",
        "installed task type Test.Source 1.0.0.0",
        "installed task type Test.XfScale 1.0.0.0",
        "imported workflow Compat",
        "already imported: dependency package Core.Python.numpy 1.0.0.0 (install: %xfpip% "
        "install numpy)",
        "already installed: task type Test.Source 1.0.0.0",
    ]
