"""``runyard workflow`` and ``runyard task``: list, start, stop, obsolete and lock workflows;
add tasks to them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console

workflow_app = typer.Typer(
    help="List, start, stop, obsolete and lock workflows.", no_args_is_help=True
)
task_app = typer.Typer(help="Add, edit and delete the tasks of workflows.", no_args_is_help=True)

WorkflowName = Annotated[str, typer.Argument(help="The workflow's name.", show_default=False)]


@workflow_app.command("list")
def workflow_list(
    data_dir: Path | None = DataDir, server: str | None = ServerUrl, token: str | None = Token
) -> None:
    """List workflows with their runs and jobs by state.

    Example: runyard workflow list
    """
    with ctx.client(data_dir, server, token) as client:
        rows = client.get("/api/workflows")
    table = Table("Workflow", "State", "Locked", "Runs", "Jobs")
    for w in rows:
        jobs = ", ".join(f"{n} {state}" for state, n in sorted(w["jobs"].items()))
        table.add_row(w["name"], w["state"], "yes" if w["locked"] else "", str(w["runs"]), jobs)
    console.print(table)


def _workflow_action(
    action: str, name: str, data_dir: Path | None, server: str | None, token: str | None
) -> None:
    with ctx.client(data_dir, server, token) as client:
        answer = client.post(f"/api/workflows/{name}/{action}")
    locked = " (locked)" if answer["locked"] else ""
    console.print(f"workflow {answer['name']}: {answer['state']}{locked}")


WORKFLOW_ACTIONS = {
    "start": "Start a workflow: its jobs are processed.",
    "stop": "Stop a workflow (back to Draft): no new job starts. Jobs already Running "
    "finish (their followers wait for the start); meanwhile its tasks can be edited.",
    "obsolete": "Obsolete a workflow (soft delete): its Running jobs are stopped. Their "
    "scripts are killed and the jobs Queued again; starting the workflow again restores it "
    "and runs them.",
    "lock": "Lock a workflow: its state cannot change until it is unlocked (admins).",
    "unlock": "Unlock a locked workflow.",
}


def _add_workflow_action(action: str, summary: str) -> None:
    def command(
        name: WorkflowName,
        data_dir: Path | None = DataDir,
        server: str | None = ServerUrl,
        token: str | None = Token,
    ) -> None:
        _workflow_action(action, name, data_dir, server, token)

    command.__doc__ = f"{summary}\n\nExample: runyard workflow {action} Study"
    workflow_app.command(action)(command)


for _action, _summary in WORKFLOW_ACTIONS.items():
    _add_workflow_action(_action, _summary)


@task_app.command("add")
def task_add(
    workflow: WorkflowName,
    name: Annotated[str, typer.Argument(help="The new task's name.", show_default=False)],
    task_type: Annotated[
        str, typer.Option("--type", help="Its task type: NAME or NAME==VERSION (default: newest).")
    ],
    inputs: Annotated[
        str,
        typer.Option(
            "--inputs",
            help='Input sources (JSON): [{"key": K, "source": {"mode": "output", "task": T, '
            '"key": OUT}}, ...]; inputs left out get their default.',
        ),
    ] = "[]",
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Add a task at the end of a workflow; it gets a job in every run whose upstream jobs
    are Done (and in every later run).

    Example: runyard task add Study Measure --type Lab.Measure --inputs
    '[{"key": "scan", "source": {"mode": "output", "task": ".AIM", "key": "foreign_file"}}]'
    """
    sources = ctx.json_option(inputs, "--inputs")
    type_name, _, version = task_type.partition("==")
    body: dict[str, Any] = {
        "name": name,
        "task_type": {"name": type_name, "version": version or None},
        "inputs": sources,
    }
    with ctx.client(data_dir, server, token) as client:
        answer = client.post(f"/api/workflows/{workflow}/tasks", body)
    tt = answer["task_type"]
    console.print(
        f"added task {answer['name']} ({tt['name']} {tt['version']}) to {workflow}: "
        f"{answer['jobs_created']} jobs created"
    )


TaskName = Annotated[str, typer.Argument(help="The task's name.", show_default=False)]


@task_app.command("edit")
def task_edit(
    workflow: WorkflowName,
    task: TaskName,
    inputs: Annotated[
        str | None, typer.Option("--inputs", help="The new input sources (JSON, as for add).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Another installed version of its task type.")
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Change a task's input sources or task type version while the workflow is stopped; its
    Done jobs and their followers become stale.

    Example: runyard task edit Study Threshold --inputs
    '[{"key": "lower", "source": {"mode": "fixed", "fixed_value": 250}}]'
    """
    body: dict[str, Any] = {"task_type_version": version}
    if inputs is not None:
        body["inputs"] = ctx.json_option(inputs, "--inputs")
    with ctx.client(data_dir, server, token) as client:
        answer = client.put(f"/api/workflows/{workflow}/tasks/{task}", body)
    tt = answer["task_type"]
    console.print(f"task {task} edited ({tt['name']} {tt['version']})", highlight=False)


@task_app.command("delete")
def task_delete(
    workflow: WorkflowName,
    task: TaskName,
    followers: Annotated[
        bool, typer.Option("--followers", help="Delete the tasks that follow it too.")
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Delete a task and its jobs while the workflow is stopped.

    Example: runyard task delete Study Threshold --followers
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.delete(
            f"/api/workflows/{workflow}/tasks/{task}", params={"followers": followers}
        )
    console.print(f"deleted {', '.join(answer['deleted'])}", highlight=False, markup=False)


@workflow_app.command("rerun-stale")
def rerun_stale(
    workflow: WorkflowName,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's jobs.")] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Re-run the stale jobs (computed with an older configuration), in dependency order;
    nothing up to date re-runs.

    Example: runyard workflow rerun-stale Study --task Threshold
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.post(f"/api/workflows/{workflow}/rerun-stale", {"task": task})
    console.print(
        f"{answer['jobs']} stale jobs re-run ({len(answer['restarted'])} restarted, their "
        "followers made again)"
    )


def held_message(data: dict[str, Any]) -> str:
    """Why ``status --wait`` ended with Queued jobs left: nothing more can run until
    someone acts (``data``: the workflow's status, its ``held`` jobs by reason)."""
    name, held = data["workflow"], data["held"]

    def jobs(n: int) -> str:
        return f"{n} Queued job waits" if n == 1 else f"{n} Queued jobs wait"

    reasons = {
        "workflow": f"for the workflow, which is {data['state']}: runyard workflow start {name}",
        "obsolete_runs": "in obsolete runs: runyard run restore RUN",
        "paused_runs": "in paused runs: runyard run priority RUN normal",
    }
    lines = [f"{jobs(held[key])} {text}" for key, text in reasons.items() if held.get(key)]
    return "nothing more can run: " + "; ".join(lines)
