"""Inputs as XamFlow documents them: every primitive type with ``minimum``/``maximum``/
``multipleOf``/``enum``/``format``/``default``, arriving in ``job["inputs"]`` as plain Python
values; and the input sources of a workflow package: ``define_on_first`` with template null as
the only value a job asks for (the first job's answer is used by that job and every later
one), ``ui`` (asked for each job), ``fixed``, ``output`` and ``none``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import PACKAGES, SOURCE, Lab

INPUTS, DEFINE, SOURCES = "Compat Inputs", "Compat DefineOnFirst", "Compat Sources"


def submit(lab: Lab, serial: int, inputs: dict[str, Any]) -> Any:
    """A user's answer through the CLI: ``runyard job submit N --inputs JSON``."""
    return lab.installation.cli("job", "submit", str(serial), "--inputs", json.dumps(inputs))


@pytest.fixture(scope="module")
def steps(lab: Lab) -> dict[str, Any]:
    """Start the three workflows, answer the Waiting jobs in turn; what the tables were."""
    seen: dict[str, Any] = {}
    with lab.feature("inputs"):
        for name in (SOURCE, "Compat.Inputs", "Workflow.Inputs"):
            lab.import_package(name)
        lab.start_workflow(INPUTS)
        lab.new_run(INPUTS, "Source", "r", {"value": 4})
    with lab.feature("define_on_first"):
        for name in (SOURCE, "Compat.Scale", "Workflow.DefineOnFirst"):
            lab.import_package(name)
        lab.start_workflow(DEFINE)
        for name, value in (("first", 2), ("second", 3), ("third", 4)):
            lab.new_run(DEFINE, "Source", name, {"value": value})
    with lab.feature("sources"):
        for name in (SOURCE, "Compat.Sources", "Workflow.Sources"):
            lab.import_package(name)
        lab.start_workflow(SOURCES)
        for name, value in (("one", 1), ("two", 2)):
            lab.new_run(SOURCES, "Source", name, {"value": value})
    lab.wait()

    with lab.feature("inputs"):
        serial = lab.runs(INPUTS)["r"]["Inputs"]["serial"]
        seen["inputs waiting"] = lab.job(serial)["state"]
        seen["ask 12"] = lab.installation.cli(
            "job", "submit", str(serial), "--inputs", '{"ask": 12}', check=False
        )
        submit(lab, serial, {"ask": 3})
    with lab.feature("define_on_first"):
        seen["define before"] = lab.runs(DEFINE)
        first = seen["define before"]["first"]["Scale"]["serial"]
        seen["define submitted"] = submit(lab, first, {"factor": 2.5}).stdout
    with lab.feature("sources"):
        seen["sources before"] = lab.runs(SOURCES)
        submit(lab, seen["sources before"]["one"]["Sources"]["serial"], {"label": "first"})
    lab.wait()

    with lab.feature("define_on_first"):
        seen["define after"] = lab.runs(DEFINE)
        lab.new_run(DEFINE, "Source", "fourth", {"value": 5})
    with lab.feature("sources"):
        seen["sources after one"] = lab.runs(SOURCES)
        submit(lab, seen["sources before"]["two"]["Sources"]["serial"], {"label": "second"})
    lab.wait()
    with lab.feature("define_on_first"):
        seen["define later"] = lab.runs(DEFINE)
    return seen


# -- primitive inputs ---------------------------------------------------------------------


def test_primitive_inputs_arrive_as_python_values_with_fixed_values_and_defaults(
    lab: Lab, steps: dict[str, Any]
) -> None:
    lab.check("inputs")
    outputs = lab.done(lab.runs(INPUTS)["r"].get("Inputs"), "Inputs")
    assert json.loads(outputs["echo"]) == {
        "value": 4,
        "count": 7,
        "level": -5,
        "ratio": 0.5,
        "scale": 2.5,
        "mode": "exact",
        "notes": "line 1\nline 2",
        "text": "# Title\n\n*emphasis*",
        "when": "2026-11-26T10:11:12Z",
        "verbose": True,
        "strict": False,
        "ask": 3,
    }
    assert json.loads(outputs["types"]) == {
        "value": "int",
        "count": "int",
        "level": "int",
        "ratio": "float",
        "scale": "float",
        "mode": "str",
        "notes": "str",
        "text": "str",
        "when": "str",
        "verbose": "bool",
        "strict": "bool",
        "ask": "int",
    }
    assert outputs["product"] == 10.0


def test_a_job_waits_for_its_ui_input_and_a_value_above_maximum_is_refused(
    lab: Lab, steps: dict[str, Any]
) -> None:
    lab.check("inputs")
    assert steps["inputs waiting"] == "Waiting"
    refused = steps["ask 12"]
    assert refused.returncode != 0, refused.stdout
    assert "ask" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [("level", 6), ("level", 1.5), ("scale", 0.75), ("mode", "slow"), ("strict", "yes")],
    ids=["above-maximum", "float-for-int", "not-multiple-of", "not-in-enum", "not-a-bool"],
)
def test_a_fixed_value_that_breaks_its_constraints_is_refused_at_import(
    lab: Lab, steps: dict[str, Any], tmp_path: Path, key: str, value: Any
) -> None:
    lab.check("inputs")
    package = tmp_path / "bad"
    shutil.copytree(PACKAGES / "Workflow.Inputs", package)
    tasks = json.loads((package / "tasks.json").read_text())
    sources = [i for i in tasks["tasks"][1]["inputs"] if i["key"] != key]
    sources.append({"key": key, "source": {"mode": "fixed", "fixed_value": value}})
    tasks["tasks"][1]["inputs"] = sources
    (package / "tasks.json").write_text(json.dumps(tasks))
    metadata = json.loads((package / "metadata.json").read_text())
    metadata["name"] = f"Compat Bad {key} {value}"
    (package / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(AssertionError, match=key):
        lab.import_package(package)


# -- define_on_first ----------------------------------------------------------------------


def test_define_on_first_as_the_only_value_asked_makes_every_job_wait_until_answered(
    lab: Lab, steps: dict[str, Any]
) -> None:
    lab.check("define_on_first")
    before = steps["define before"]
    states = {run: jobs["Scale"]["state"] for run, jobs in before.items() if "Scale" in jobs}
    assert states == {"first": "Waiting", "second": "Waiting", "third": "Waiting"}


def test_the_first_jobs_answer_runs_that_job_and_every_later_job_with_it(
    lab: Lab, steps: dict[str, Any]
) -> None:
    lab.check("define_on_first")
    after = steps["define after"]
    for run, value in (("first", 2), ("second", 3), ("third", 4)):
        job = after[run].get("Scale")
        assert lab.done(job, f"{run}: Scale") == {"scaled": value * 2.5}
        assert lab.job(job["serial"])["inputs"] == {"value": value, "factor": 2.5}


def test_a_run_started_after_the_answer_is_not_asked_again(lab: Lab, steps: dict[str, Any]) -> None:
    lab.check("define_on_first")
    job = steps["define later"]["fourth"].get("Scale")
    assert lab.done(job, "fourth: Scale") == {"scaled": 12.5}
    assert lab.job(job["serial"])["inputs"]["factor"] == 2.5


# -- ui, fixed, output, none --------------------------------------------------------------


def test_ui_is_asked_for_each_job_and_fixed_output_and_none_are_filled_in(
    lab: Lab, steps: dict[str, Any]
) -> None:
    lab.check("sources")
    before = steps["sources before"]
    assert [before[r]["Sources"]["state"] for r in ("one", "two")] == ["Waiting", "Waiting"]
    after_one = steps["sources after one"]
    assert after_one["two"]["Sources"]["state"] == "Waiting", "ui is asked again for each job"
    runs = lab.runs(SOURCES)
    assert lab.done(runs["one"]["Sources"], "one") == {"summary": "a=1 b=10 label=first extra=None"}
    assert lab.done(runs["two"]["Sources"], "two") == {
        "summary": "a=2 b=10 label=second extra=None"
    }
    assert lab.job(runs["two"]["Sources"]["serial"])["inputs"] == {
        "a": 2,
        "b": 10,
        "label": "second",
        "extra": None,
    }
