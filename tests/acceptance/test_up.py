"""Acceptance: ``runyard up``, packages imported with the CLI, 50 runs processed by a worker."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import RUNYARD, Installation
from tests.conftest import TASK_TYPES, WORKFLOWS


def test_twenty_runs_of_a_linear_workflow_are_processed_once_each(up: Installation) -> None:
    task_types = [str(p) for p in sorted(TASK_TYPES.iterdir())]
    up.cli("import", *task_types, str(WORKFLOWS / "Linear"))
    up.cli("workflow", "start", "Linear")
    for i in range(20):
        up.cli(
            "run",
            "new",
            "Linear",
            "Source",
            "--outputs",
            f'{{"value": {i}}}',
            "--name",
            f"sample-{i:02d}",
        )
    status = up.status("Linear", "--wait")
    assert status["tasks"] == ["Source", "Double", "Add"]
    assert [r["name"] for r in status["runs"]] == [f"sample-{i:02d}" for i in range(20)]
    for i, run in enumerate(status["runs"]):
        assert {t: j["state"] for t, j in run["jobs"].items()} == {
            "Source": "Done",
            "Double": "Done",
            "Add": "Done",
        }
        assert run["jobs"]["Add"]["outputs"] == {"value": 2 * i + 10}
    serials = [j["serial"] for r in status["runs"] for j in r["jobs"].values()]
    assert len(serials) == len(set(serials)) == 60


def test_export_and_reimport_under_another_name(up: Installation) -> None:
    up.cli("import", *[str(p) for p in sorted(TASK_TYPES.iterdir())], str(WORKFLOWS / "Linear"))
    exported = up.data_dir / "linear.xfp"
    up.cli("export", "workflow", "Linear", "-o", str(exported))
    again = up.cli("import", str(exported), check=False)
    assert again.returncode == 1 and "exists already" in again.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("status", "Nope"),
        ("run", "new", "Linear", "Nope"),
        ("workflow", "start", "Nope"),
        ("import", "/no/such/package"),
    ],
)
def test_cli_errors_are_one_clear_line(up: Installation, args: tuple[str, ...]) -> None:
    result = up.cli(*args, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--database-url", "mysql://lab/db"), "unsupported database URL 'mysql://lab/db'"),
        (("--database-url", "postgresql://nobody@127.0.0.1:1/x"), "cannot open the database"),
    ],
)
def test_a_server_with_a_bad_setting_stops_with_a_clear_error(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = subprocess.run(
        [*RUNYARD, "server", "--data-dir", str(tmp_path), "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_a_server_on_a_busy_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = subprocess.run(
            [*RUNYARD, "server", "--data-dir", str(tmp_path), "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1 and "Address already in use" in result.stderr


def test_job_show_log_and_abort_from_the_cli(up: Installation) -> None:
    up.cli("import", *[str(p) for p in sorted(TASK_TYPES.iterdir())], str(WORKFLOWS / "Linear"))
    up.cli("workflow", "start", "Linear")
    up.cli("run", "new", "Linear", "Source", "--outputs", '{"value": 21}', "--name", "r")
    status = up.status("Linear", "--wait")
    double = status["runs"][0]["jobs"]["Double"]["serial"]
    assert up.cli("job", "log", str(double), "--follow").stdout == "doubling 21\n"
    shown = json.loads(up.cli("job", "show", str(double), "--json").stdout)
    assert (shown["state"], shown["outputs"]) == ("Done", {"value": 42})
    refused = up.cli("job", "abort", str(double), check=False)
    assert refused.returncode == 1 and "cannot go from Done to Aborted" in refused.stderr
