"""``runyard job``: show a job, follow its log, abort it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console
from runyard.errors import InvalidInput

job_app = typer.Typer(
    help="Show jobs, follow their logs; abort, restart, rename them; submit a user's values.",
    no_args_is_help=True,
)

Serial = Annotated[int, typer.Argument(help="The job's serial number.", metavar="SERIAL")]
FINISHED = ("Done", "Failed", "Aborted", "Obsolete")


@job_app.command("show")
def show(
    serial: Serial,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON.")] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Show a job: state, attempt, worker, inputs, outputs, error, timings.

    Example: runyard job show 42
    """
    with ctx.client(data_dir, server, token) as client:
        job: dict[str, Any] = client.get(f"/api/jobs/{serial}")
    if as_json:
        console.print_json(json.dumps(job))
        return
    console.print(
        f"job {serial}: task {job['task']}, run {job['run']['name']} ({job['run']['id']})",
        highlight=False,
        markup=False,
    )
    fields = ("state", "attempt", "worker", "created_at", "started_at", "finished_at")
    for key in fields:
        shown = job.get(key)
        if key == "state" and job.get("claimed"):
            shown = f"{shown} (claimed: its worker has not started the script yet)"
        console.print(f"{key:12} {shown}", highlight=False, markup=False)
    # The last progress report of a job that is no longer running would mislead ("50 %").
    running = job["state"] == "Running"
    for key in ("inputs", "outputs", "progress") if running else ("inputs", "outputs"):
        console.print(f"{key:12} {json.dumps(job.get(key))}", highlight=False, markup=False)
    if job.get("workdir"):
        console.print(f"{'workdir':12} {job['workdir']}", highlight=False, markup=False)
    if job.get("error"):
        console.print(f"error\n{job['error']}", highlight=False, markup=False)
    if job.get("stale"):
        console.print(f"{'stale':12} {job['stale']}", highlight=False, markup=False)
    if job.get("held_back"):  # a reduce job whose next one waits for runs
        console.print(f"{'next job':12} {job['held_back']}", highlight=False, markup=False)
    made = job["provenance"]
    console.print(
        f"{'computed by':12} {made['task_type']['name']} {made['task_type']['version']} "
        f"(configuration {made['configuration']})",
        highlight=False,
        markup=False,
    )


@job_app.command("log")
def log(
    serial: Serial,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output until the job ends.")
    ] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Print a job's log (what its script wrote to stdout and stderr).

    Example: runyard job log 42 --follow
    """
    offset = 0
    with ctx.client(data_dir, server, token) as client:
        while True:
            state = client.get(f"/api/jobs/{serial}")["state"] if follow else None
            text = client.get(f"/api/jobs/{serial}/log", params={"offset": offset})
            chunk = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
            sys.stdout.write(chunk)
            sys.stdout.flush()
            offset += len(chunk)
            if not follow or state in FINISHED:
                return
            time.sleep(1.0)


@job_app.command("abort")
def abort(
    serial: Serial,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Abort a job: its script is killed on the worker (within about a second).

    Example: runyard job abort 42
    """
    with ctx.client(data_dir, server, token) as client:
        job = client.post(f"/api/jobs/{serial}/state", {"state": "Aborted"})
    console.print(f"job {serial}: {job['state']}")


@job_app.command("restart")
def restart(
    serials: Annotated[
        list[int] | None,
        typer.Argument(
            help="The serials of the jobs to restart.", metavar="SERIAL", show_default=False
        ),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option(
            "--workflow",
            "-w",
            help="Restart the jobs of this workflow that --state (and --task, --run) select.",
        ),
    ] = None,
    states: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            help="With --workflow: restart its jobs in this state "
            "(Failed, Aborted, Done, ...); repeat for several.",
            show_default=False,
        ),
    ] = None,
    tasks: Annotated[
        list[str] | None,
        typer.Option(
            "--task", help="With --workflow: only this task's jobs; repeatable.", show_default=False
        ),
    ] = None,
    runs: Annotated[
        list[int] | None,
        typer.Option(
            "--run",
            help="With --workflow: only this run's jobs (its id); repeatable.",
            show_default=False,
        ),
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Restart jobs as new jobs with their tasks' current configuration; each and its
    followers in its run become Obsolete (the followers are made again). One by its serial,
    several by serials (runyard job restart 42 43 44), or a workflow's jobs by --state (and
    --task, --run): in one transaction, at most 10,000 a call; a job that cannot be
    restarted is skipped, with why.

    Example: runyard job restart --workflow Study --state Failed --task Threshold
    """
    serials = serials or []
    _check_restart_choice(serials, workflow, bool(states), bool(tasks or runs))
    with ctx.client(data_dir, server, token) as client:
        if len(serials) == 1:
            job = client.post(f"/api/jobs/{serials[0]}/restart")
            console.print(f"job {serials[0]} restarted as job {job['serial']} ({job['state']})")
            return
        if workflow is not None:
            chosen = {"states": states, "tasks": tasks or [], "runs": runs or []}
            answers = [_restart_many(client, workflow, {"filter": chosen})]
        else:
            answers = [
                _restart_many(client, name, {"serials": chosen})
                for name, chosen in _by_workflow(client, serials).items()
            ]
    _print_restarts(answers)


def _check_restart_choice(
    serials: list[int], workflow: str | None, states: bool, narrowed: bool
) -> None:
    """Serials, or --workflow with --state (--task, --run narrow it); never an empty filter."""
    if workflow is None and (states or narrowed):
        raise InvalidInput("--state, --task and --run need --workflow")
    if workflow is not None and serials:
        raise InvalidInput("give serials or --workflow with --state, not both")
    if workflow is not None and not states:
        raise InvalidInput(
            "--workflow needs --state (e.g. --state Failed): every job of a workflow is not "
            "restarted by accident"
        )
    if workflow is None and not serials:
        raise InvalidInput("name the jobs: SERIAL..., or --workflow NAME --state STATE")


def _by_workflow(client: Any, serials: list[int]) -> dict[str, list[int]]:
    """The serials grouped by their jobs' workflows (each job is asked for)."""
    grouped: dict[str, list[int]] = {}
    for serial in dict.fromkeys(serials):
        grouped.setdefault(client.get(f"/api/jobs/{serial}")["workflow"], []).append(serial)
    return grouped


def _restart_many(client: Any, workflow: str, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.post(
        f"/api/workflows/{ctx.name_path(workflow)}/jobs/restart", body
    )
    return answer


def _print_restarts(answers: list[dict[str, Any]]) -> None:
    restarted = [item for answer in answers for item in answer["restarted"]]
    skipped = [item for answer in answers for item in answer["skipped"]]
    for item in restarted:
        console.print(f"job {item['serial']} -> job {item['new_serial']} ({item['state']})")
    for item in skipped:
        console.print(
            f"job {item['serial']} skipped: {item['reason']}", highlight=False, markup=False
        )
    console.print(f"{len(restarted)} job(s) restarted, {len(skipped)} skipped")


@job_app.command("rename")
def rename(
    serial: Serial,
    name: Annotated[str, typer.Argument(help="The job's new display name.")],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Give a job a display name.

    Example: runyard job rename 42 "threshold, second try"
    """
    with ctx.client(data_dir, server, token) as client:
        client.put(f"/api/jobs/{serial}/name", {"name": name})
    console.print(f"job {serial}: {name}", highlight=False, markup=False)


@job_app.command("submit")
def submit(
    serial: Serial,
    inputs: Annotated[
        str | None, typer.Option("--inputs", help="The values of the inputs it asks for (JSON).")
    ] = None,
    outputs: Annotated[
        str | None, typer.Option("--outputs", help="An interactive job's outputs (JSON).")
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Answer a Waiting job: the inputs a user enters (it is then Queued), or the outputs of
    an interactive job (it is then Done). Every value is checked against the interface.

    Example: runyard job submit 42 --inputs '{"threshold": 220.5, "unit": "mg HA/ccm"}'
    """
    body: dict[str, Any] = {}
    if inputs is not None:
        body["inputs"] = ctx.json_option(inputs, "--inputs")
    if outputs is not None:
        body["outputs"] = ctx.json_option(outputs, "--outputs")
    with ctx.client(data_dir, server, token) as client:
        job = client.post(f"/api/jobs/{serial}/submit", body)
    console.print(f"job {serial}: {job['state']}")
