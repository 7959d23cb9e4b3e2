"""``runyard demo``: the imaging demo, end to end, on SQLite (docs/demo.md).

It makes a User Data folder of synthetic scans in the data directory (once), starts the
server and a local worker, maps the folder as ``/Demo/``, imports the two demo workflows
(``runyard/examples/imaging``), starts one search run in each, adds the tasks that follow
the spawned image tasks (threshold, statistics, the study table), waits with a progress bar,
and downloads each study's CSV into the data directory. Running it again in the same
directory reuses everything made before and shows the results.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runyard.cli.context import console, errors, name_path
from runyard.cli.serve import Server, run_up
from runyard.client import Client
from runyard.errors import RunyardError
from runyard.packages import folder_zip_bytes
from runyard.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "imaging"
ROOT = "/Demo/"
PAIRS = 6
FINAL = ("Done", "Failed", "Aborted")


def _output(task: str, key: str) -> dict[str, Any]:
    return {"mode": "output", "task": task, "key": key}


def _fixed(value: Any) -> dict[str, Any]:
    return {"mode": "fixed", "fixed_value": value}


def _table_inputs(filename: str) -> list[dict[str, Any]]:
    keys = ("tv", "bv", "bv_tv", "mean", "min", "max", "unit")
    return [{"key": k, "source": _output("Statistics", k)} for k in keys] + [
        {"key": "filename", "source": _fixed(filename)}
    ]


@dataclass(frozen=True)
class DemoWorkflow:
    """A demo workflow: its package, the folder its search run searches, and the tasks the
    demo adds once the search has spawned the tasks they follow."""

    name: str
    package: str
    folder: str
    followers: tuple[tuple[str, str, list[dict[str, Any]]], ...]
    csv: str


SCANS = DemoWorkflow(
    name="Demo-Scans",
    package="Scans",
    folder=ROOT + "scans/",
    followers=(
        ("Threshold", "Runyard.Image.Threshold", [
            {"key": "image", "source": _output("Spawned Image", "image")},
            {"key": "lower", "source": _fixed(450.0)},
            {"key": "calibration", "source": _fixed("density")}]),
        ("Statistics", "Runyard.Image.Statistics", [
            {"key": "image", "source": _output("Spawned Image", "image")},
            {"key": "segmentation", "source": _output("Threshold", "segmentation")},
            {"key": "calibration", "source": _fixed("density")}]),
        ("Table", "Runyard.Image.StudyTable", _table_inputs("scans.csv")),
    ),
    csv="scans.csv",
)  # fmt: skip
PAIRED = DemoWorkflow(
    name="Demo-Pairs",
    package="Pairs",
    folder=ROOT + "pairs/",
    followers=(
        ("Statistics", "Runyard.Image.Statistics", [
            {"key": "image", "source": _output(r"(?<!_SEG)\.AIM", "image")},
            {"key": "segmentation", "source": _output("_SEG.AIM", "image")},
            {"key": "calibration", "source": _fixed("density")}]),
        ("Table", "Runyard.Image.StudyTable", _table_inputs("pairs.csv")),
    ),
    csv="pairs.csv",
)  # fmt: skip
WORKFLOWS = (SCANS, PAIRED)


def run_demo(
    folder: Path, settings: Settings, scans: int, max_jobs: int, exit_when_done: bool
) -> None:
    """The demo in ``folder``: scans in ``userdata/``, Runyard's data directory as
    ``settings.data_dir``, the study tables as ``*.csv``."""
    from runyard.examples.phantoms import write_demo_data

    userdata = folder / "userdata"
    console.print(f"Runyard demo in {folder}", highlight=False)
    if userdata.exists():
        console.print(f"Using the scans made before in {userdata}", highlight=False)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        made = write_demo_data(userdata, scans, PAIRS)
        console.print(
            f"Made {len(made)} synthetic scans in {userdata} ({scans} single scans in AIM, ISQ "
            f"and OMNI; {PAIRS} pairs NAME.AIM + NAME_SEG.AIM; truth in phantoms.csv)",
            highlight=False,
        )

    def drive(server: Server) -> None:
        with Client(server.url, server.local_token()) as client:
            statuses = _run(client, userdata)
        failed = _report(statuses, folder, settings, server)
        if exit_when_done:
            server.exit_code = 1 if failed else 0
            server.stop()
        else:
            console.print("Serving until Ctrl-C.")

    run_up(settings, max_jobs=max_jobs, after_start=drive)


def _run(client: Client, userdata: Path) -> dict[str, dict[str, Any]]:
    """Set up and run both workflows; their final status."""
    client.put("/api/userdata/mappings", {"root": ROOT, "folder": str(userdata)})
    existing = {w["name"]: w for w in client.get("/api/workflows")}
    for demo in WORKFLOWS:
        if demo.name not in existing:
            client.post("/api/packages", content=folder_zip_bytes(EXAMPLES / demo.package))
        if existing.get(demo.name, {}).get("state") != "Started":
            client.post(f"/api/workflows/{name_path(demo.name)}/start")
        status = client.get(f"/api/workflows/{name_path(demo.name)}/status")
        if not any("Folder" in run["jobs"] for run in status["runs"]):
            folder = {"type": "Folder", "source": "userdata", "virtualpath": demo.folder}
            client.post(
                f"/api/workflows/{name_path(demo.name)}/runs",
                {"task": "Folder", "outputs": {"folder": folder}, "name": f"search {demo.folder}"},
            )
    for demo in WORKFLOWS:
        _add_followers(client, demo, _searched(client, demo))
    return _wait(client)


def _searched(client: Client, demo: DemoWorkflow) -> dict[str, Any]:
    """The workflow's status once its search job is over (an error if it failed)."""
    with console.status(f"{demo.name}: searching {demo.folder}"):
        while True:
            status: dict[str, Any] = client.get(f"/api/workflows/{name_path(demo.name)}/status")
            searches = [r["jobs"]["Search"] for r in status["runs"] if "Search" in r["jobs"]]
            for search in searches:
                if search["state"] in FINAL and search["state"] != "Done":
                    raise RunyardError(
                        f"{demo.name}: the search job {search['serial']} is {search['state']}: "
                        f"{search['error']} (see: runyard job log {search['serial']})"
                    )
            if searches and all(s["state"] == "Done" for s in searches):
                return status
            time.sleep(0.1)


def _add_followers(client: Client, demo: DemoWorkflow, status: dict[str, Any]) -> None:
    for name, task_type, inputs in demo.followers:
        if name not in status["tasks"]:
            client.post(
                f"/api/workflows/{name_path(demo.name)}/tasks",
                {"name": name, "task_type": {"name": task_type}, "inputs": inputs},
            )


def _wait(client: Client) -> dict[str, dict[str, Any]]:
    """Wait with a progress bar per workflow until every job and the table are over."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
    ) as progress:
        bars = {
            d.name: progress.add_task(f"{d.name}: jobs finished", total=None) for d in WORKFLOWS
        }
        while True:
            statuses = {
                d.name: client.get(f"/api/workflows/{name_path(d.name)}/status") for d in WORKFLOWS
            }
            over = True
            for name, status in statuses.items():
                jobs = [j for r in status["runs"] for j in r["jobs"].values()]
                jobs += list(status["reduce"].values())
                finished = sum(j["state"] in FINAL for j in jobs)
                progress.update(bars[name], total=len(jobs), completed=finished)
                table = status["reduce"].get("Table", {})
                over = over and finished == len(jobs) and table.get("state") in FINAL
            if over:
                return statuses
            time.sleep(0.2)


def _report(
    statuses: dict[str, dict[str, Any]], folder: Path, settings: Settings, server: Server
) -> bool:
    """Download and show the tables, say where everything is; whether a job failed."""
    failed = False
    with Client(server.url, server.local_token()) as client:
        for demo in WORKFLOWS:
            status = statuses[demo.name]
            bad = [
                (run["name"], task, job)
                for run in status["runs"]
                for task, job in run["jobs"].items()
                if job["state"] != "Done"
            ]
            table_job = status["reduce"]["Table"]
            if table_job["state"] != "Done":
                bad.append(("study", "Table", table_job))
            for run, task, job in bad:
                errors.print(
                    f"[red]{demo.name}: {run} / {task}: job {job['serial']} {job['state']}"
                    f"[/red] {job.get('error') or ''}",
                    highlight=False,
                )
            failed = failed or bool(bad)
            if table_job["state"] != "Done":
                continue
            path = folder / demo.csv
            client.download(table_job["outputs"]["table"]["file_id"], path)
            _show(demo.name, path)
    console.print(
        f"\nWeb UI: {server.url}/ui/  (Use a token instead: the admin token in "
        f"{settings.admin_token_file})\nAPI: {server.url}/docs",
        highlight=False,
        soft_wrap=True,
    )
    return failed


def _show(name: str, path: Path) -> None:
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    shown = f"first 8 of {path}" if len(rows) > 8 else str(path)
    table = Table(*header, title=f"{name}: {len(rows)} runs ({shown})")
    for row in rows[:8]:
        table.add_row(*(_short(v) for v in row))
    console.print(table)
    console.print(f"CSV: {path}", highlight=False, soft_wrap=True)


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}"
