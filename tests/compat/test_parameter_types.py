"""The parameter types of XamFlow's ``Core.Type.Base`` (``Bitmap``, ``ChartReport``,
``ChartReportConfig``, ``Contours``, ``CSV``, ``Entity``, ``ForeignFile``, ``GIResult``,
``HTMLDocument``, ``Image``, ``ImagePairList``, ``ImageVOI``, ``Mesh``, besides ``Int``,
``Float``, ``String``, ``Bool``, ``Folder``) are accepted as input and output types of an
interface, and values pass from outputs to inputs of the same type."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import PACKAGES, SOURCE, Lab

TYPES = ["Bitmap", "ChartReport", "ChartReportConfig", "Contours", "CSV", "Entity",
         "ForeignFile", "GIResult", "HTMLDocument", "Image", "ImagePairList", "ImageVOI",
         "Mesh", "Int", "Float", "String", "Bool", "Folder"]  # fmt: skip
WORKFLOW = "Compat Types"


def one_type_package(folder: Path, type_name: str) -> Path:
    """Compat.Types cut down to one input and one output of ``type_name``."""
    package = folder / type_name
    shutil.copytree(PACKAGES / "Compat.Types", package)
    metadata = json.loads((package / "metadata.json").read_text())
    metadata["name"] = f"Compat.Type.{type_name}"
    (package / "metadata.json").write_text(json.dumps(metadata))
    key = f"value_{type_name.lower()}"
    interface = {
        "kind": "processing",
        "inputs": [{"key": key, "type": type_name, "supported_modes": ["output", "none"]}],
        "outputs": [{"key": key, "type": type_name}],
    }
    (package / "interface.json").write_text(json.dumps(interface))
    return package


@pytest.mark.parametrize("type_name", TYPES)
def test_a_core_type_base_type_is_accepted_as_an_input_and_output_type(
    lab: Lab, tmp_path: Path, type_name: str
) -> None:
    lab.import_package(one_type_package(tmp_path, type_name))
    [task_type] = lab.api("GET", f"/api/task-types/Compat.Type.{type_name}")
    interface = task_type["interface"]
    assert [i["type"] for i in interface["inputs"]] == [type_name]
    assert [o["type"] for o in interface["outputs"]] == [type_name]


@pytest.fixture(scope="module")
def passed_on(lab: Lab) -> dict[str, Any]:
    with lab.feature("types"):
        for name in (SOURCE, "Compat.TypesProducer", "Compat.Types", "Workflow.Types"):
            lab.import_package(name)
        lab.start_workflow(WORKFLOW)
        lab.new_run(WORKFLOW, "Source", "five", {"value": 5})
        lab.wait()
    return lab.runs(WORKFLOW)["five"] if "types" not in lab.problems else {}


def test_values_of_every_type_pass_from_outputs_to_inputs(
    lab: Lab, passed_on: dict[str, Any]
) -> None:
    """The producer gives primitives, an Entity and a CSV, and null for the other types."""
    lab.check("types")
    produced = lab.done(passed_on.get("Produce"), "Produce")
    assert produced["value_entity"] == {"type": "Entity", "uuid": "types-5", "name": "Types 5"}
    received = json.loads(lab.done(passed_on.get("Consume"), "Consume")["received"])
    assert received == {
        f"value_{t.lower()}": {"Int": "int", "Float": "float", "String": "str", "Bool": "bool",
                               "Entity": "dict", "CSV": "dict"}.get(t, "NoneType")
        for t in TYPES
    }  # fmt: skip
