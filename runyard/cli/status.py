"""``runyard status``: the runs x tasks table of a workflow, with run ids and job serials;
``--wait`` follows it until nothing more can run and sums up the Failed jobs."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.cli.workflows import WorkflowName, held_message
from runyard.client import Client

# The exit status of ``status --wait`` when jobs of the workflow are Failed (docs/cli.md).
FAILED_EXIT = 3
# How many Failed jobs the summary names, each with its error's last line.
FAILED_SHOWN = 5


def status(
    workflow: WorkflowName,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the jobs with a progress bar until nothing more can run (none is "
            "Running, and no Queued one can start: says why they wait). Exits with status "
            f"{FAILED_EXIT} if jobs are Failed then, after a summary of them.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Show the runs x tasks table of a workflow.

    A row per run (with its id, for 'runyard run ...'), a column per task, each cell the
    state and serial of the run's job of that task (Done #42, for 'runyard job ...'); the
    jobs of reduce tasks (one per workflow) below the table.

    Example: runyard status Study --wait
    """
    with ctx.client(data_dir, server, token) as client:
        data = _wait(client, workflow, quiet=as_json) if wait else _status(client, workflow)
    if wait and data.get("held"):
        ctx.errors.print(held_message(data), highlight=False, soft_wrap=True)
    if as_json:
        keys = ("workflow", "tasks", "runs", "reduce", "reduce_held")
        print(json.dumps({k: data[k] for k in keys}, indent=2))
    else:
        print_status_table(data)
    failed = _failed(data)
    if wait and failed:
        ctx.errors.print(failed_summary(failed), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(FAILED_EXIT)


def _status(client: Client, workflow: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"/api/workflows/{name_path(workflow)}/status")
    return data


def _cell(job: dict[str, Any]) -> str:
    if not job:
        return ""
    # A Running job whose script has not started yet (claimed ahead by its worker).
    state = "Claimed" if job.get("claimed") else job["state"]
    return f"{state} #{job['serial']}" + (" (stale)" if "stale" in job else "")


def print_status_table(data: dict[str, Any]) -> None:
    held = data.get("reduce_held", {})  # why a reduce task has no job queued now
    per_run = [t for t in data["tasks"] if t not in data["reduce"] and t not in held]
    table = Table("Run", "Id", *per_run, title=f"{data['workflow']} ({data['state']})")
    stale = sum("stale" in job for job in data["reduce"].values())
    for run in data["runs"]:
        jobs = [run["jobs"].get(task, {}) for task in per_run]
        stale += sum("stale" in job for job in jobs)
        table.add_row(run["name"], str(run["id"]), *map(_cell, jobs))
    console.print(table)
    for task in dict.fromkeys([*data["reduce"], *held]):
        job, why = _cell(data["reduce"].get(task, {})), held.get(task)
        shown = f"{job}; next: {why}" if job and why else job or why or ""
        console.print(f"reduce {task}: {shown}", highlight=False, markup=False)
    if stale:
        console.print(
            f"{stale} stale jobs (computed with an older configuration); see 'runyard job show' "
            f"and re-run them with 'runyard workflow rerun-stale {data['workflow']}'",
            highlight=False,
            markup=False,
        )


def _failed(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The workflow's Failed jobs as (task, job), by serial."""
    cells = [(t, j) for r in data["runs"] for t, j in r["jobs"].items()]
    cells += list(data["reduce"].items())
    return sorted(
        ((t, j) for t, j in cells if j["state"] == "Failed"), key=lambda c: c[1]["serial"]
    )


def failed_summary(failed: list[tuple[str, dict[str, Any]]]) -> str:
    """How many jobs Failed, per task; the first few with their error's last line and the
    command that shows the log."""
    counts = Counter(task for task, _ in failed)
    per_task = ", ".join(f"{task}: {n}" for task, n in sorted(counts.items()))
    jobs = "job" if len(failed) == 1 else "jobs"
    lines = [f"{len(failed)} {jobs} Failed ({per_task})"]
    for task, job in failed[:FAILED_SHOWN]:
        error = (job.get("error") or "").strip().splitlines() or ["(no error message)"]
        lines.append(f"  #{job['serial']} {task}: {error[-1]}  (runyard job log {job['serial']})")
    if len(failed) > FAILED_SHOWN:
        lines.append(f"  ... and {len(failed) - FAILED_SHOWN} more ('runyard status --json')")
    return "\n".join(lines)


def _wait(client: Client, workflow: str, *, quiet: bool) -> dict[str, Any]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=ctx.errors,
        disable=quiet,
        transient=False,
    ) as progress:
        bar = progress.add_task(f"{workflow}: jobs finished", total=None)
        while True:
            data = _status(client, workflow)
            states = [j["state"] for r in data["runs"] for j in r["jobs"].values()]
            finished = sum(s not in ("Queued", "Running") for s in states)
            progress.update(bar, total=len(states), completed=finished)
            if data["idle"]:
                return data
            time.sleep(0.2)
