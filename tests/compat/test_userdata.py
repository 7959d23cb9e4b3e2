"""User Data from a XamFlow script, as the documentation's search script reads it:
``get_xf_userdata_token(connection, [("list", vp)])``, ``network.
list_files_and_folders_on_filestorage(token)``, ``virtualpath_join_file``,
``virtualpath_join_folder``, ``get_virtualpath_dirname``, and ``download_input_file`` of a
``ForeignFile`` in User Data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import Lab

WORKFLOW = "Compat ListFolder"
TREE = {
    "top.txt": "top\n",
    "a/one.txt": "one one\n",
    "a/b/two.csv": "x,y\n1,2\n",
    "a/b/c/three.AIM;1": "not really an AIM\n",
    "d/four.txt": "",
}


@pytest.fixture(scope="module")
def listed(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """TREE mapped at /Lab/ and listed from /Lab/; the List job's outputs."""
    root = tmp_path_factory.mktemp("userdata") / "lab"
    for relative, content in TREE.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    with lab.feature("list"):
        lab.installation.cli("userdata", "map", "/Lab/", str(root))
        for name in ("Compat.ListFolder", "Workflow.ListFolder"):
            lab.import_package(name)
        lab.start_workflow(WORKFLOW)
        folder = {"type": "Folder", "source": "userdata", "virtualpath": "/Lab/"}
        lab.new_run(WORKFLOW, "Folder", "lab", {"folder": folder})
        lab.wait()
        return lab.done(lab.runs(WORKFLOW)["lab"].get("List"), "List")
    return {}


def test_listing_recursively_gives_every_file_with_its_virtual_path_and_size(
    lab: Lab, listed: dict[str, Any]
) -> None:
    lab.check("list")
    assert json.loads(listed["files"]) == sorted(
        [f"/Lab/{relative}", len(content.encode())] for relative, content in TREE.items()
    )


def test_virtualpath_join_folder_gives_folder_paths_ending_in_a_slash(
    lab: Lab, listed: dict[str, Any]
) -> None:
    lab.check("list")
    assert json.loads(listed["folders"]) == ["/Lab/a/", "/Lab/a/b/", "/Lab/a/b/c/", "/Lab/d/"]


def test_get_virtualpath_dirname_is_the_folder_of_a_file(lab: Lab, listed: dict[str, Any]) -> None:
    lab.check("list")
    assert json.loads(listed["dirnames"]) == sorted(
        "/Lab/" + (f"{Path(relative).parent}/" if "/" in relative else "") for relative in TREE
    )


def test_download_input_file_of_a_user_data_foreign_file(lab: Lab, listed: dict[str, Any]) -> None:
    lab.check("list")
    first = min(TREE)  # by virtual path
    assert listed["first_file"] == TREE[first]
