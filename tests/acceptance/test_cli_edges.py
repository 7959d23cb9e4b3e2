"""Acceptance, through the real ``runyard`` CLI against a real server (SQLite): editing one
input of a task keeps the others and refuses to leave an input without a source unless
forced; ``status`` shows run ids and job serials; ``status --wait`` fails (exit 3) with a
summary when jobs Failed; names with ``#``, ``?``, ``%`` and spaces work in every command."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Installation, start_server, start_up, stop
from tests.conftest import TASK_TYPES, WORKFLOWS

ODD_NAMES = ("Mouse study #2 (50% dose)", "Odd?")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Installation]:
    """A server alone with Tuned (Source -> Add(value, offset 10) -> Double) and Weighing
    (Source -> Weigh, whose input measured is asked for in a form: mode ui), stopped."""
    installation = start_server(tmp_path / "server")
    try:
        tasks = [str(TASK_TYPES / t) for t in ("Source", "Add", "Double", "Weigh")]
        installation.cli("import", *tasks, str(WORKFLOWS / "Tuned"), str(WORKFLOWS / "Weighing"))
        yield installation
    finally:
        stop(installation)


def sources(server: Installation, task: str, workflow: str = "Tuned") -> dict[str, Any]:
    """The input sources of a task, by key."""
    workflow = server.api("GET", f"/api/workflows/{workflow}")
    (found,) = [t for t in workflow["tasks"] if t["name"] == task]
    return {i["key"]: i["source"] for i in found["inputs"]}


def test_task_edit_input_changes_only_the_named_input(server: Installation) -> None:
    before = sources(server, "Add")
    result = server.cli(
        "task", "edit", "Tuned", "Add", "--input", 'offset={"mode": "fixed", "fixed_value": 20}'
    )
    after = sources(server, "Add")
    assert after["offset"] == {"mode": "fixed", "fixed_value": 20}
    assert after["value"] == before["value"] and after["value"]["mode"] == "output"
    assert "offset" in result.stdout


def test_task_edit_inputs_json_merges_the_named_keys_and_keeps_the_others(
    server: Installation,
) -> None:
    before = sources(server, "Add")
    edit = [{"key": "offset", "source": {"mode": "fixed", "fixed_value": 30}}]
    server.cli("task", "edit", "Tuned", "Add", "--inputs", json.dumps(edit))
    after = sources(server, "Add")
    assert after == before | {"offset": {"mode": "fixed", "fixed_value": 30}}


def test_task_edit_refuses_to_leave_an_input_without_a_source_unless_forced(
    server: Installation,
) -> None:
    before = sources(server, "Weigh", "Weighing")
    edit = ("task", "edit", "Weighing", "Weigh", "--input", 'measured={"mode": "none"}')
    refused = server.cli(*edit, check=False)
    assert refused.returncode != 0
    assert "measured" in refused.stderr and "--force" in refused.stderr, refused.stderr
    assert sources(server, "Weigh", "Weighing") == before, "nothing changed"

    forced = server.cli(*edit, "--force")
    assert sources(server, "Weigh", "Weighing") == before | {"measured": {"mode": "none"}}
    assert "measured" in forced.stderr, "it still warns"


def test_task_edit_names_a_badly_written_input(server: Installation) -> None:
    for bad, problem in (("offset", "KEY=JSON"), ("offset={", "offset")):
        result = server.cli("task", "edit", "Tuned", "Add", "--input", bad, check=False)
        assert result.returncode != 0 and problem in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    result = server.cli("task", "edit", "Tuned", "Add", "--input", 'nope={"mode": "none"}',
                        check=False)  # fmt: skip
    assert result.returncode != 0 and "nope" in result.stderr, result.stderr


def test_status_shows_run_ids_and_job_serials(server: Installation) -> None:
    server.cli("workflow", "start", "Tuned")
    server.cli("run", "new", "Tuned", "Source", "--outputs", '{"value": 1}', "--name", "s1")
    data = server.status("Tuned")
    (run,) = data["runs"]
    assert isinstance(run["id"], int)
    serials = {task: job["serial"] for task, job in run["jobs"].items()}
    assert set(serials) == {"Source", "Add"}
    shown = server.cli("status", "Tuned").stdout
    assert f"Done #{serials['Source']}" in shown, shown
    assert f"Queued #{serials['Add']}" in shown, shown
    row = next(line for line in shown.splitlines() if "s1" in line)
    assert str(run["id"]) in row, shown


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Installation]:
    """``runyard up`` (a server and its local worker) with Linear (Source -> Double -> Add)."""
    installation = start_up(tmp_path / "lab")
    try:
        tasks = [str(TASK_TYPES / t) for t in ("Source", "Double", "Add")]
        installation.cli("import", *tasks, str(WORKFLOWS / "Linear"))
        installation.cli("workflow", "start", "Linear")
        yield installation
    finally:
        stop(installation)


def test_status_wait_exits_3_and_summarises_failed_jobs(lab: Installation) -> None:
    """Add fails for a negative value (its input is Double's output: -12, -14)."""
    for value in (-6, -7, 1):
        lab.cli("run", "new", "Linear", "Source", "--outputs", json.dumps({"value": value}))
    result = lab.cli("status", "Linear", "--wait", check=False, timeout=120)
    assert result.returncode == 3, result.stderr
    data = lab.status("Linear")
    failed = sorted(
        (r["jobs"]["Add"]["serial"], r["jobs"]["Add"]["error"])
        for r in data["runs"]
        if r["jobs"]["Add"]["state"] == "Failed"
    )
    assert len(failed) == 2
    (first, error), _ = failed
    summary = result.stderr
    assert "2 jobs Failed" in summary and "Add: 2" in summary, summary
    assert f"#{first}" in summary and error.splitlines()[-1] in summary, summary
    assert "negative value" in summary, summary
    assert f"runyard job log {first}" in summary, summary

    as_json = lab.cli("status", "Linear", "--wait", "--json", check=False, timeout=120)
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["workflow"] == "Linear"


def test_status_wait_exits_0_when_no_job_failed(lab: Installation) -> None:
    lab.cli("run", "new", "Linear", "Source", "--outputs", '{"value": 1}')
    result = lab.cli("status", "Linear", "--wait", timeout=120)
    assert "Failed" not in result.stderr


def renamed_workflow(tmp_path: Path, name: str) -> Path:
    """The Linear workflow package, renamed ``name``."""
    folder = tmp_path / "packages" / str(ODD_NAMES.index(name))
    shutil.copytree(WORKFLOWS / "Linear", folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(metadata | {"name": name}))
    return folder


@pytest.mark.parametrize("name", ODD_NAMES)
def test_names_with_url_characters_work_in_every_command(
    lab: Installation, tmp_path: Path, name: str
) -> None:
    lab.cli("import", str(renamed_workflow(tmp_path, name)))
    lab.cli("workflow", "start", name)
    lab.cli("run", "new", name, "Source", "--outputs", '{"value": 1}')
    data = lab.status(name, "--wait")
    assert data["workflow"] == name
    assert [r["jobs"]["Add"]["state"] for r in data["runs"]] == ["Done"]
    assert name in lab.cli("status", name).stdout
    exported = tmp_path / "export.xfp"
    lab.cli("export", "workflow", name, "-o", str(exported))
    assert exported.stat().st_size > 0

    lab.cli("workflow", "stop", name)
    lab.cli("task", "edit", name, "Add", "--input", 'offset={"mode": "fixed", "fixed_value": 5}')
    lab.cli("task", "add", name, "Again", "--type", "Test.Double", "--inputs",
            json.dumps([{"key": "value", "source": {"mode": "output", "task": "Add",
                                                     "key": "value"}}]))  # fmt: skip
    lab.cli("task", "delete", name, "Again")
    lab.cli("workflow", "start", name)
    assert "re-run" in lab.cli("workflow", "rerun-stale", name).stdout
    lab.cli("status", name, "--wait")

    lab.cli("user", "add", "alice", "--no-password")
    lab.cli("share", name, "--user", "alice", "--level", "view")
    assert "alice" in lab.cli("shares", name).stdout
    lab.cli("unshare", name, "--user", "alice")
    lab.cli("workflow", "obsolete", name)


def test_task_edit_version_keeps_the_sources_and_warns_of_a_new_input_without_one(
    server: Installation, tmp_path: Path
) -> None:
    """Test.Add 2.0.0.0 has an input more, ``note``, with no default."""
    folder = tmp_path / "Add2"
    shutil.copytree(TASK_TYPES / "Add", folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(metadata | {"version": "2.0.0.0"}))
    interface = json.loads((folder / "interface.json").read_text())
    interface["inputs"].append({"key": "note", "type": "String"})
    (folder / "interface.json").write_text(json.dumps(interface))
    server.cli("import", str(folder))
    before = sources(server, "Add")

    result = server.cli("task", "edit", "Tuned", "Add", "--version", "2.0.0.0")
    assert sources(server, "Add") == before | {"note": {"mode": "none"}}
    assert "note" in result.stderr and "--input note=JSON" in result.stderr, result.stderr
