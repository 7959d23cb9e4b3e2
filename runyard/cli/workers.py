"""``runyard workers``: list the workers; limit how many jobs one runs at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console

workers_app = typer.Typer(
    help="List the workers; limit a worker's concurrent jobs (admins).", no_args_is_help=True
)


@workers_app.command("list")
def workers_list(
    data_dir: Path | None = DataDir, server: str | None = ServerUrl, token: str | None = Token
) -> None:
    """List the workers: what they provide, their job slots and limit, their Running jobs.

    Example: runyard workers list
    """
    with ctx.client(data_dir, server, token) as client:
        rows = client.get("/api/workers")
    table = Table("Worker", "Provides", "Max jobs", "Limit", "Running", "Last seen")
    for w in rows:
        limit = "" if w["max_jobs_limit"] is None else str(w["max_jobs_limit"])
        running = ", ".join(str(s) for s in w["running"])
        table.add_row(
            w["name"], ", ".join(w["provides"]), str(w["max_jobs"]), limit, running,
            w["last_seen"] or "",
        )  # fmt: skip
    console.print(table)


@workers_app.command("limit")
def workers_limit(
    name: Annotated[str, typer.Argument(help="The worker's name.")],
    max_jobs: Annotated[
        int | None,
        typer.Argument(help="At most this many jobs at once (0: none); leave out to lift it."),
    ] = None,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Limit how many jobs a worker runs at once, below the slots it registered with; the
    worker's running jobs go on, it claims no more than that (within a few seconds).

    Example: runyard workers limit imaging-pc-2 1
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.put(f"/api/workers/{name}/max-jobs", {"max_jobs": max_jobs})
    shown = answer["max_jobs_limit"]
    console.print(
        f"worker {name}: " + ("no limit" if shown is None else f"at most {shown} jobs at once"),
        highlight=False,
        markup=False,
    )
