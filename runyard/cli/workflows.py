"""``runyard workflow``: list, start, stop, obsolete and lock workflows; re-run their stale
jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path

workflow_app = typer.Typer(
    help="List, start, stop, obsolete and lock workflows.", no_args_is_help=True
)

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
        answer = client.post(f"/api/workflows/{name_path(name)}/{action}")
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
        answer = client.post(f"/api/workflows/{name_path(workflow)}/rerun-stale", {"task": task})
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
