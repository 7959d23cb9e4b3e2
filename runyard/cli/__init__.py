"""The ``runyard`` command line: server, worker, packages, workflows, runs and status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from runyard.cli import context as ctx
from runyard.cli.access import activity, share, shares, unshare
from runyard.cli.accounts import group_app, user_app
from runyard.cli.context import DataDir, ServerUrl, Token, console, name_path
from runyard.cli.jobs import job_app
from runyard.cli.login import login, logout, whoami
from runyard.cli.purge import purge
from runyard.cli.runs import run_app
from runyard.cli.status import status
from runyard.cli.tasks import task_app
from runyard.cli.tokens import token_app
from runyard.cli.userdata import userdata_app
from runyard.cli.worker import worker_app
from runyard.cli.workers import workers_app
from runyard.cli.workflows import WorkflowName, workflow_app
from runyard.errors import InvalidInput, RunyardError

app = typer.Typer(
    help="Runyard: batch processing of scientific data. The words (workflow, task, run, job, "
    "worker, User Data) are defined in docs/glossary.md.\n\n"
    "First time: runyard demo   (the imaging demo, end to end; docs/demo.md)\n\n"
    "Example: runyard up --data-dir ./lab   (server and a local worker)",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
export_app = typer.Typer(help="Export packages.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
app.add_typer(task_app, name="task")
app.add_typer(run_app, name="run")
app.add_typer(token_app, name="token")
app.add_typer(export_app, name="export")
app.add_typer(userdata_app, name="userdata")
app.add_typer(job_app, name="job")
app.add_typer(workers_app, name="workers")
app.add_typer(worker_app, name="worker")
app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")

Host = typer.Option(None, "--host", help="Address to listen on [env: RUNYARD_HOST].")
Port = typer.Option(None, "--port", help="Port (0: any free one) [env: RUNYARD_PORT].")
DatabaseUrl = typer.Option(
    None,
    "--database-url",
    help="The database, sqlite:///PATH or postgresql://USER@HOST/DB (default: SQLite in the data "
    "directory) [env: RUNYARD_DATABASE_URL].",
)
ServerDataDir = typer.Option(
    None,
    "--data-dir",
    help="Data directory: the SQLite database, the admin token, the file store (default: "
    "$XDG_DATA_HOME/runyard or ~/.local/share/runyard) [env: RUNYARD_DATA_DIR].",
)
SecretFile = typer.Option(
    None,
    "--secret-file",
    help="The owner-only file of the secret that signs job, User Data and CSRF tokens "
    "(default: the data directory's secret; made if missing); every server on one database "
    "needs the same one [env: RUNYARD_SECRET_FILE].",
)
LOCAL_MAX_JOBS = "Jobs the local worker runs at once (its max concurrent jobs)."


@app.command()
def up(
    data_dir: Path | None = ServerDataDir,
    host: str | None = Host,
    port: int | None = Port,
    max_jobs: Annotated[int, typer.Option("--max-jobs", help=LOCAL_MAX_JOBS)] = 2,
    database_url: str | None = DatabaseUrl,
    secret_file: Path | None = SecretFile,
) -> None:
    """Start the server and one local worker.

    Example: runyard up --data-dir ./lab --port 8765
    """
    from runyard.cli.serve import run_up

    settings = ctx.settings(
        data_dir=data_dir, host=host, port=port, database_url=database_url, secret_file=secret_file
    )
    run_up(settings, max_jobs)


@app.command()
def demo(
    folder: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="The demo's folder: its scans (userdata/), the Runyard data directory "
            "(runyard/) and the study tables (*.csv).",
        ),
    ] = Path("runyard-demo"),
    scans: Annotated[
        int,
        typer.Option(
            "--scans",
            min=1,
            max=500,
            help="How many single scans to make in a new demo folder (a folder that has "
            "its scans already keeps them).",
        ),
    ] = 30,
    max_jobs: Annotated[int, typer.Option("--max-jobs", min=1, help=LOCAL_MAX_JOBS)] = 4,
    exit_when_done: Annotated[
        bool, typer.Option("--exit", help="Stop when the study tables are written.")
    ] = False,
    port: int | None = Port,
) -> None:
    """Run the imaging demo end to end on SQLite (server and local worker).

    Makes synthetic micro-CT scans (AIM, ISQ, OMNI) as User Data, searches them (one run per
    scan), thresholds them, measures BV/TV and density, and writes one CSV per study into
    its folder. Running it again in the same folder shows the same study (docs/demo.md).

    Example: runyard demo --exit
    """
    from runyard.cli.demo import run_demo

    settings = ctx.settings(port=port).with_overrides(
        data_dir=folder.resolve() / "runyard", database_url=""
    )
    run_demo(folder.resolve(), settings, scans, max_jobs, exit_when_done)


@app.command()
def server(
    data_dir: Path | None = ServerDataDir,
    database_url: str | None = DatabaseUrl,
    host: str | None = Host,
    port: int | None = Port,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            help="Server processes serving the one port (default 1; more need PostgreSQL) "
            "[env: RUNYARD_PROCESSES].",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Addresses of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
            "headers are trusted, comma-separated, * for any (default 127.0.0.1) "
            "[env: RUNYARD_FORWARDED_ALLOW_IPS].",
        ),
    ] = None,
    secret_file: Path | None = SecretFile,
) -> None:
    """Start the server alone (workers connect to it).

    Several server processes (--processes N, or servers on other machines) share one
    PostgreSQL database and the data directory's files: docs/deployment.md.

    Example: runyard server --database-url postgresql://runyard@db/runyard --processes 4
    """
    from runyard.cli.serve import run_server

    run_server(
        ctx.settings(
            data_dir=data_dir,
            host=host,
            port=port,
            database_url=database_url,
            processes=processes,
            forwarded_allow_ips=forwarded_allow_ips,
            secret_file=secret_file,
        )
    )


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="Package folders or .xfp files.")],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Import task type, workflow or dependency packages (folders or .xfp files), in order.

    Example: runyard import ./deps/Core.Python.numpy ./task-types/Threshold ./Study.xfp
    """
    with ctx.client(data_dir, server, token) as client:
        for path in paths:
            content = _package_bytes(path)
            answer = client.post("/api/packages", content=content, params={"filename": path.name})
            console.print(_imported(answer), markup=False, highlight=False, soft_wrap=True)


def _imported(answer: dict[str, Any]) -> str:
    """What ``POST /api/packages`` imported, in one line."""
    kind = answer["kind"]
    if kind == "workflow":
        return f"imported workflow {answer['workflow']['name']}"
    if kind == "dependency":
        pkg = answer["dependency_package"]
        what = "virtual marker" if pkg["install"] is None else f"install: {pkg['install']}"
        verb = "imported" if answer["installed"] else "already imported:"
        return f"{verb} dependency package {pkg['name']} {pkg['version']} ({what})"
    tt = answer["task_type"]
    verb = "installed" if answer["installed"] else "already installed:"
    return f"{verb} task type {tt['name']} {tt['version']}"


def _package_bytes(path: Path) -> bytes:
    if path.is_dir():
        from runyard.packages import folder_zip_bytes  # jsonschema & co: not for every command

        return folder_zip_bytes(path)
    if path.is_file():
        return path.read_bytes()
    raise InvalidInput(f"{path}: no such package folder or file")


@export_app.command("workflow")
def export_workflow(
    name: WorkflowName,
    output: Annotated[Path, typer.Option("-o", "--output", help="The .xfp file to write.")],
    data_dir: Path | None = DataDir,
    server: str | None = ServerUrl,
    token: str | None = Token,
) -> None:
    """Export a workflow as a workflow package.

    Example: runyard export workflow Study -o study.xfp
    """
    with ctx.client(data_dir, server, token) as client:
        data = client.get(f"/api/workflows/{name_path(name)}/export")
    output.write_bytes(data)
    console.print(f"wrote {output}")


app.command()(status)
for _command in (login, logout, whoami, share, unshare, shares, activity, purge):
    app.command()(_command)


def main() -> None:
    try:
        app()
    except RunyardError as exc:
        raise SystemExit(ctx.fail(exc).exit_code) from None
