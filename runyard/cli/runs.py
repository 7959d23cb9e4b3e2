"""``runyard run``: start, rename, copy, obsolete, restore runs and set their priority."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.cli.workflows import WorkflowName

run_app = typer.Typer(
    help="Start runs; rename, copy, obsolete, restore them; set their priority.",
    no_args_is_help=True,
)

RunId = Annotated[int, typer.Argument(help="The run's id (see 'runyard status --json').")]


def _show(run: dict[str, Any], what: str) -> None:
    console.print(f"run {run['id']} ({run['name']}): {what}", highlight=False, markup=False)


@run_app.command("new")
def run_new(
    workflow: WorkflowName,
    task: Annotated[str, typer.Argument(help="The source task where the run starts.")],
    outputs: Annotated[
        str | None,
        typer.Option(
            "--outputs",
            help="The source job's outputs (JSON, by its task type's output keys): it is Done "
            "at once. Without them it waits for a worker or a user.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Run name.")] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Start a new run at a source task.

    Example: runyard run new Study Select --outputs '{"value": 3}' --name sample-1

    A User Data folder as the output "folder": --outputs '{"folder": {"type": "Folder",
    "source": "userdata", "virtualpath": "/Scans/2026/"}}'
    """
    body: dict[str, Any] = {"task": task, "name": name}
    if outputs is not None:
        body["outputs"] = ctx.json_option(outputs, "--outputs")
    with ctx.client(data_dir, server, token) as client:
        job = client.post(f"/api/workflows/{name_path(workflow)}/runs", body)
    console.print(f"run {job['run_id']}: job {job['serial']} {job['state']}")


@run_app.command("rename")
def run_rename(
    run: RunId,
    name: Annotated[str, typer.Argument(help="The new name.")],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Rename a run.

    Example: runyard run rename 12 "femur 7 left"
    """
    with ctx.client(data_dir, server, token) as client:
        _show(client.put(f"/api/runs/{run}/name", {"name": name}), "renamed")


@run_app.command("copy")
def run_copy(
    run: RunId,
    name: Annotated[str | None, typer.Option("--name", help="The copy's name.")] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Copy a run: a new run with the same source outputs (processed again from there).

    Example: runyard run copy 12 --name "femur 7 again"
    """
    with ctx.client(data_dir, server, token) as client:
        _show(client.post(f"/api/runs/{run}/copy", {"name": name}), "created")


@run_app.command("obsolete")
def run_obsolete(
    run: RunId,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Obsolete a run: it leaves the table, its running jobs stop, reduces leave it out.

    The scripts of its running jobs are killed within seconds and those jobs are Queued
    again (the attempt not counted); none of its jobs starts until it is restored.

    Example: runyard run obsolete 12
    """
    with ctx.client(data_dir, server, token) as client:
        _show(client.post(f"/api/runs/{run}/obsolete"), "obsolete")


@run_app.command("restore")
def run_restore(
    run: RunId,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Restore an obsolete run as it was: the jobs stopped by obsoleting it run again.

    Example: runyard run restore 12
    """
    with ctx.client(data_dir, server, token) as client:
        _show(client.post(f"/api/runs/{run}/restore"), "restored")


@run_app.command("priority")
def run_priority(
    run: RunId,
    priority: Annotated[str, typer.Argument(help="paused, normal or high.")],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Set a run's priority: paused (no job starts), normal, or high (its jobs go first).

    Example: runyard run priority 12 high
    """
    with ctx.client(data_dir, server, token) as client:
        client.put(f"/api/runs/{run}/priority", {"priority": priority})
    console.print(f"run {run}: priority {priority}")
