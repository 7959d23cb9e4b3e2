"""Acceptance: dependency packages installed on a real worker (``runyard worker
--install-dependencies``) into an environment of their own, made with uv.

The dependency package ``Test.Dep.Mini`` ships a wheel of a tiny module ``mini`` and installs
it with ``%xfpip% install --offline ...`` (no index needed); ``Test.Dep.Broken``'s install
command fails. Shown:

- a worker that may install claims the job, makes the environment once (Installing, then
  Ready with its log on the server), runs every job of the task type in it (``mini`` imports,
  and the script's Python is the environment's), from the environment's own fork server;
- a worker that may not install (no flag, or forbidden by an admin) claims none of them, and
  the job shows ``Worker missing [names]``;
- a failed install leaves no environment behind, is Failed with its log on the server, and the
  job goes back to the queue (not Failed) with ``Worker missing``;
- ``runyard worker install`` makes an environment beforehand, for a worker without the flag.

SQLite only: the environments are the worker's; the database plays no part."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    Installation,
    start_server,
    start_worker,
    stop,
    wait_for,
)
from tests.conftest import TASK_TYPES

WORKFLOW = "Mini"
WHEEL = "mini-1.0-py3-none-any.whl"


def mini_wheel() -> bytes:
    """A wheel of the module ``mini`` (VALUE = 42), as a build backend would make it."""
    files = {
        "mini/__init__.py": b"VALUE = 42\n",
        "mini-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: mini\nVersion: 1.0\n",
        "mini-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: runyard-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("mini-1.0.dist-info/RECORD,,")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("mini-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return buffer.getvalue()


def write_packages(root: Path) -> list[Path]:
    """The dependency packages, a task type needing each, and a workflow using both."""
    mini = root / "Test.Dep.Mini"
    mini.mkdir(parents=True)
    (mini / WHEEL).write_bytes(mini_wheel())
    broken = root / "Test.Dep.Broken"
    broken.mkdir()
    for folder, install in ((mini, f"%xfpip% install --offline {WHEEL}"), (broken, "exit 3")):
        metadata = {
            "package_format": "XFP-DEP1.0",
            "name": folder.name,
            "version": "1.0.0.0",
            "display_name": folder.name,
            "summary": "A dependency package of the tests.",
            "install": install,
            "dependencies": [{"name": "Core.Host.Python3", "version": "3.11.0.0"}],
        }
        (folder / "metadata.json").write_text(json.dumps(metadata))
    task_types = []
    for name, needs in (("Test.UsesMini", mini.name), ("Test.UsesBroken", broken.name)):
        folder = root / name
        folder.mkdir()
        (folder / "metadata.json").write_text(
            json.dumps(
                {
                    "package_format": "XFP-TT1.0",
                    "name": name,
                    "version": "1.0.0.0",
                    "display_name": name,
                    "summary": "Imports what its dependency package installs.",
                    "author": "Runyard tests",
                    "dependencies": [{"name": needs, "version": "1.0.0.0"}],
                }
            )
        )
        (folder / "interface.json").write_text(
            json.dumps(
                {
                    "kind": "processing",
                    "inputs": [{"key": "value", "type": "Int", "supported_modes": ["output"]}],
                    "outputs": [
                        {"key": "value", "type": "Int"},
                        {"key": "python", "type": "String"},
                    ],
                }
            )
        )
        (folder / "main.py").write_text(
            "import sys\n"
            "from runyard import task\n"
            "job = task.current_job()\n"
            "import mini\n"
            "task.finish({'value': job.inputs['value'] + mini.VALUE, 'python': sys.prefix})\n"
        )
        task_types.append(folder)
    workflow = root / WORKFLOW
    workflow.mkdir()
    (workflow / "metadata.json").write_text(
        json.dumps(
            {
                "package_format": "XFP-WF1.0",
                "name": WORKFLOW,
                "version": "1.0.0.0",
                "display_name": WORKFLOW,
                "summary": "Runs with dependency packages.",
                "author": "Runyard tests",
            }
        )
    )
    source = {"mode": "output", "task": 0, "key": "value"}
    (workflow / "tasks.json").write_text(
        json.dumps(
            {
                "tasks": [
                    {"name": "Source", "task_type": {"name": "Test.Source"}, "inputs": []},
                    {
                        "name": "Mini",
                        "task_type": {"name": "Test.UsesMini"},
                        "inputs": [{"key": "value", "source": source}],
                    },
                    {
                        "name": "Broken",
                        "task_type": {"name": "Test.UsesBroken"},
                        "inputs": [{"key": "value", "source": source}],
                    },
                ]
            }
        )
    )
    return [mini, broken, TASK_TYPES / "Source", *task_types, workflow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("deps")
    server = start_server(root / "server")
    try:
        server.cli("import", *[str(p) for p in write_packages(root / "packages")])
        server.api("POST", f"/api/workflows/{WORKFLOW}/start")
        yield server
    finally:
        stop(server)


def new_runs(server: Installation, values: list[int]) -> list[str]:
    names = [f"value-{value}" for value in values]
    for name, value in zip(names, values, strict=True):
        server.api(
            "POST",
            f"/api/workflows/{WORKFLOW}/runs",
            {"task": "Source", "outputs": {"value": value}, "name": name},
        )
    return names


def cells(server: Installation, task: str) -> dict[str, dict[str, object]]:
    page = server.api("GET", f"/api/workflows/{WORKFLOW}/runs?limit=1000")
    return {run["name"]: run["jobs"].get(task, {}) for run in page["runs"]}


def test_a_worker_that_may_install_makes_the_environment_once_and_runs_the_jobs_in_it(
    server: Installation, tmp_path: Path
) -> None:
    names = new_runs(server, [1, 2, 3])
    # No worker may install yet: the jobs wait, naming what is missing.
    plain = start_worker(server, "plain", tmp_path / "plain", "--max-jobs", "1", "--burst")
    assert plain.wait(timeout=60) == 0, plain.log()
    waiting = cells(server, "Mini")
    assert {waiting[n]["state"] for n in names} == {"Queued"}
    assert {tuple(waiting[n]["worker_missing"]) for n in names} == {("Test.Dep.Mini",)}

    worker = start_worker(
        server, "installer", tmp_path / "w", "--max-jobs", "2", "--install-dependencies"
    )
    try:
        wait_for(
            lambda: all(cells(server, "Mini")[n].get("state") == "Done" for n in names),
            "the Mini jobs done",
            timeout=120,
            alive=worker.process,
        )
        done = cells(server, "Mini")
        jobs = [server.job(int(str(done[n]["serial"]))) for n in names]
        assert sorted(j["outputs"]["value"] for j in jobs) == [43, 44, 45]
        prefixes = {j["outputs"]["python"] for j in jobs}
        environments = server.api("GET", "/api/workers/installer/environments")
        mini = [e for e in environments if e["packages"][0]["name"] == "Test.Dep.Mini"]
        assert len(mini) == 1 and mini[0]["state"] == "Ready", environments
        assert "install --offline" in mini[0]["log"]
        folder = tmp_path / "w" / "workers" / "installer" / "environments" / mini[0]["key"]
        assert prefixes == {str(folder)}, "every job ran in the one environment"
        assert (folder / ".runyard-ready").is_file()
        assert list(folder.glob("lib/python*/site-packages/mini/__pycache__/*.pyc")), (
            "compiled when installed, not by each job"
        )

        # The broken one: Failed on the worker, nothing of it left, its jobs back in the queue.
        wait_for(
            lambda: any(
                e["state"] == "Failed"
                for e in server.api("GET", "/api/workers/installer/environments")
            ),
            "the broken environment Failed",
            timeout=60,
            alive=worker.process,
        )
        failed = next(
            e
            for e in server.api("GET", "/api/workers/installer/environments")
            if e["state"] == "Failed"
        )
        assert "exited with status 3" in failed["log"]
        assert not (folder.parent / failed["key"]).exists(), "nothing half-installed stays"
        wait_for(
            lambda: all(
                cells(server, "Broken")[n].get("worker_missing") == ["Test.Dep.Broken"]
                for n in names
            ),
            "the Broken jobs waiting for a worker",
            timeout=30,
        )
        broken = cells(server, "Broken")
        assert {broken[n]["state"] for n in names} == {"Queued"}, "given back, not Failed"
        job = server.job(int(str(broken[names[0]]["serial"])))
        assert job["worker_missing"] == ["Test.Dep.Broken"]
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=60)


def test_an_admin_forbids_installs_and_runyard_worker_install_makes_one_beforehand(
    server: Installation, tmp_path: Path
) -> None:
    server.api("POST", "/api/workers/register", {"name": "later", "max_jobs": 1})
    server.cli("workers", "installs", "later", "--forbid")
    names = new_runs(server, [10])
    worker = start_worker(
        server, "later", tmp_path, "--max-jobs", "1", "--install-dependencies", "--burst"
    )
    assert worker.wait(timeout=60) == 0, worker.log()
    assert cells(server, "Mini")[names[0]]["state"] == "Queued", "forbidden: not claimed"

    token = server.cli("token", "create-worker", "later").stdout.strip()
    installed = server.cli(
        "worker", "install", "Test.Dep.Mini", "--name", "later", "--data-dir", str(tmp_path),
        "--server", server.url, "--token", token,
    )  # fmt: skip
    assert "is Ready on later" in installed.stdout
    refused = server.cli(
        "worker", "install", "No.Such.Package", "--name", "later",
        "--data-dir", str(tmp_path), "--server", server.url, "--token", token, check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "No.Such.Package" in refused.stdout + refused.stderr

    worker = start_worker(server, "later", tmp_path, "--max-jobs", "1", "--burst")
    assert worker.wait(timeout=60) == 0, worker.log()
    done = cells(server, "Mini")[names[0]]
    assert done["state"] == "Done", worker.log()
    assert server.job(int(str(done["serial"])))["outputs"]["value"] == 52


def test_an_admin_asks_a_running_worker_to_install_a_dependency_package(
    server: Installation, tmp_path: Path
) -> None:
    """Workers > Install dependency package (and ``runyard workers install``): the request
    waits on the server until the worker's next heartbeat, which makes the environment (even
    on a worker that does not install on demand); its jobs then run there."""
    names = new_runs(server, [20])
    worker = start_worker(server, "asked", tmp_path, "--max-jobs", "1")
    try:
        wait_for(
            lambda: any(w["name"] == "asked" for w in server.api("GET", "/api/workers")),
            "the worker registered",
            timeout=30,
            alive=worker.process,
        )
        assert cells(server, "Mini")[names[0]]["state"] == "Queued", "it may not install"

        refused = server.api(
            "POST",
            "/api/workers/asked/environments",
            {"packages": [{"name": "No.Such.Package", "version": ""}]},
            expect=404,
        )
        assert "No.Such.Package" in refused["error"]["message"]
        marker = server.api(
            "POST",
            "/api/workers/asked/environments",
            {"packages": [{"name": "Core.Host.Python3", "version": ""}]},
            expect=422,
        )
        assert "provides" in marker["error"]["message"]
        server.api(
            "POST",
            "/api/workers/nobody/environments",
            {"packages": [{"name": "Test.Dep.Mini", "version": "1.0.0.0"}]},
            expect=404,
        )

        asked = server.cli("workers", "install", "asked", "Test.Dep.Mini==1.0.0.0")
        assert "Requested" in asked.stdout, asked.stdout
        wait_for(
            lambda: (
                [e["state"] for e in server.api("GET", "/api/workers/asked/environments")]
                == ["Ready"]
            ),
            "the environment made at the admin's request",
            timeout=120,
            alive=worker.process,
        )
        assert (tmp_path / "workers" / "asked" / "environments").is_dir()
        wait_for(
            lambda: cells(server, "Mini")[names[0]]["state"] == "Done",
            "the job run in the new environment",
            timeout=60,
            alive=worker.process,
        )
        again = server.api(
            "POST",
            "/api/workers/asked/environments",
            {"packages": [{"name": "Test.Dep.Mini", "version": "1.0.0.0"}]},
        )
        assert again["state"] == "Ready", "nothing to do: it is Ready already"
    finally:
        worker.process.terminate()
        worker.process.wait(timeout=60)
