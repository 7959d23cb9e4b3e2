"""``runyard workers``: list the workers; limit how many jobs one runs at once; allow
installs, ask one to install dependency packages, and read its environments (admins)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from runyard.cli import context as ctx
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.errors import InvalidInput

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
        answer = client.put(f"/api/workers/{name_path(name)}/max-jobs", {"max_jobs": max_jobs})
    shown = answer["max_jobs_limit"]
    console.print(
        f"worker {name}: " + ("no limit" if shown is None else f"at most {shown} jobs at once"),
        highlight=False,
        markup=False,
    )


@workers_app.command("installs")
def workers_installs(
    name: Annotated[str, typer.Argument(help="The worker's name.")],
    allow: Annotated[
        bool,
        typer.Option(
            "--allow/--forbid",
            help="Let it install dependency packages its jobs need (if it was started with "
            "--install-dependencies), or forbid it.",
        ),
    ],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Allow or forbid a worker to install dependency packages (admins).

    Example: runyard workers installs imaging-pc-2 --forbid
    """
    with ctx.client(data_dir, server, token) as client:
        answer = client.put(f"/api/workers/{name_path(name)}/installs", {"allowed": allow})
    what = "may" if answer["installs_allowed"] else "may not"
    asked = "" if answer["installs"] else " (it was not started with --install-dependencies)"
    console.print(
        f"worker {name} {what} install dependency packages{asked}", highlight=False, markup=False
    )


@workers_app.command("install")
def workers_install(
    name: Annotated[str, typer.Argument(help="The worker's name.")],
    packages: Annotated[
        list[str],
        typer.Argument(help="Dependency packages: NAME (the newest imported) or NAME==VERSION."),
    ],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Ask a running worker to make the environment of these dependency packages (admins):
    it does at its next heartbeat, also if it does not install on demand. Follow it with
    'runyard workers environments NAME'. On the worker's own machine, 'runyard worker
    install' makes it at once.

    Example: runyard workers install imaging-pc-2 scikit-image==0.25.0.0
    """
    body = {"packages": [package_name(text) for text in packages]}
    with ctx.client(data_dir, server, token) as client:
        answer = client.post(f"/api/workers/{name_path(name)}/environments", body)
    console.print(
        f"environment {answer['key']} on worker {name}: {answer['state']}",
        highlight=False,
        markup=False,
    )


def package_name(text: str) -> dict[str, str]:
    """``NAME`` or ``NAME==VERSION`` as the API names a dependency package."""
    name, _, version = text.partition("==")
    if not name.strip():
        raise InvalidInput(f"name a dependency package as NAME or NAME==VERSION, not {text!r}")
    return {"name": name.strip(), "version": version.strip()}


@workers_app.command("environments")
def workers_environments(
    name: Annotated[str, typer.Argument(help="The worker's name.")],
    log: Annotated[bool, typer.Option("--log", help="Print each install log.")] = False,
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """A worker's environments of dependency packages: Installing, Ready or Failed.

    Example: runyard workers environments imaging-pc-2 --log
    """
    with ctx.client(data_dir, server, token) as client:
        rows = client.get(f"/api/workers/{name_path(name)}/environments")
    table = Table("Environment", "Packages", "State", "Updated")
    for env in rows:
        packages = ", ".join(f"{p['name']} {p['version']}" for p in env["packages"])
        table.add_row(env["key"], packages, env["state"], env["updated_at"])
    console.print(table)
    if log:
        for env in rows:
            console.rule(f"{env['key']} ({env['state']})")
            console.print(env["log"], highlight=False, markup=False)
