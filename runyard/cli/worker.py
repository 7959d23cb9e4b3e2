"""``runyard worker``: start a worker; ``runyard worker install``: make the environment of
dependency packages on this worker before its jobs need it."""

from __future__ import annotations

import enum
import socket
from pathlib import Path
from typing import Annotated

import typer

from runyard.cli import context as ctx
from runyard.cli.context import ServerUrl, console
from runyard.cli.workers import package_name
from runyard.errors import InvalidInput

worker_app = typer.Typer(
    help="Start a worker that claims and runs jobs; 'runyard worker install PACKAGE' makes "
    "the environment of dependency packages on it beforehand.\n\n"
    "Example: runyard worker --server http://lab-server:8765 --token-file ~/.runyard-token "
    "--max-jobs 4 --install-dependencies",
    invoke_without_command=True,
)


class Executor(enum.StrEnum):
    local = "local"
    slurm = "slurm"


WorkerToken = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Worker token from 'runyard token create-worker'; other local users can read "
        "a command line (ps): prefer --token-file or RUNYARD_TOKEN (default: the data "
        "directory's admin token) [env: RUNYARD_TOKEN].",
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="Read the worker token from this file (its first line; keep it owner-only).",
        show_default=False,
    ),
]
WorkerName = Annotated[
    str | None,
    typer.Option("--name", help="Its name in the workers list (default: the host name)."),
]
WorkerDataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory: the worker's script cache, environments and job folders go "
        "under workers/NAME/ there; without --server, it works for the server running on it "
        "[env: RUNYARD_DATA_DIR].",
    ),
]


@worker_app.callback()
def worker(
    context: typer.Context,
    server: str | None = ServerUrl,
    token: WorkerToken = None,
    token_file: TokenFile = None,
    max_jobs: Annotated[
        int, typer.Option("--max-jobs", help="Jobs it runs at once (its max concurrent jobs).")
    ] = 2,
    name: WorkerName = None,
    burst: Annotated[bool, typer.Option("--burst", help="Exit when no job is left.")] = False,
    provides: Annotated[
        list[str] | None,
        typer.Option(
            "--provides",
            help="A dependency package it has already (repeat for each): a virtual marker, "
            "or software installed by hand.",
        ),
    ] = None,
    installs: Annotated[
        bool,
        typer.Option(
            "--install-dependencies",
            help="Install the dependency packages a job needs, into an environment of its "
            "own (with uv), when it first needs them; admins can forbid it per worker.",
        ),
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            help="On SIGTERM, seconds that running jobs may go on before they are "
            "killed and given back (a second SIGTERM gives them back at once).",
        ),
    ] = 60.0,
    fast_start: Annotated[
        bool,
        typer.Option(
            "--fast-start/--plain-start",
            help="Start jobs from a warm, pre-imported interpreter that forks per job, or "
            "each in a fresh Python.",
        ),
    ] = True,
    data_dir: WorkerDataDir = None,
    executor: Annotated[
        Executor,
        typer.Option(
            "--executor",
            help="Where job scripts run: 'local', as processes of this machine; 'slurm', each "
            "as a Slurm batch job (sbatch; run the worker on a login node, its data "
            "directory on a file system the compute nodes share).",
        ),
    ] = Executor.local,
    slurm_partition: Annotated[
        str | None,
        typer.Option("--slurm-partition", help="With --executor slurm: sbatch --partition."),
    ] = None,
    slurm_cpus: Annotated[
        int | None,
        typer.Option("--slurm-cpus", min=1, help="With --executor slurm: sbatch --cpus-per-task."),
    ] = None,
    slurm_memory: Annotated[
        str | None,
        typer.Option("--slurm-memory", help="With --executor slurm: sbatch --mem (4G, 500M)."),
    ] = None,
    slurm_time: Annotated[
        str | None,
        typer.Option(
            "--slurm-time",
            help="With --executor slurm: sbatch --time (minutes, or D-HH:MM:SS) of jobs whose "
            "task type sets no timeout_seconds (one that does gets a minute above it).",
        ),
    ] = None,
    slurm_array: Annotated[
        int,
        typer.Option(
            "--slurm-array",
            min=1,
            help="With --executor slurm: submit up to N jobs claimed together (and asking for "
            "the same resources) as one Slurm job array (sbatch --array), one task each; "
            "1: a Slurm job per job.",
        ),
    ] = 1,
    slurm_array_wait: Annotated[
        float,
        typer.Option(
            "--slurm-array-wait",
            min=0,
            help="With --slurm-array: seconds a job waits for others to fill its job array.",
        ),
    ] = 0.5,
) -> None:
    """Start a worker that claims and runs jobs.

    Example: runyard worker --server http://lab-server:8765 --token-file ~/.runyard-token
    --max-jobs 4
    """
    if context.invoked_subcommand is not None:
        return
    from runyard.cli.serve import run_worker
    from runyard.worker.config import SlurmOptions
    from runyard.worker.worker import WorkerConfig

    token = worker_token(token, token_file)
    url, secret = ctx.locate_server(data_dir, server, token, logins=False)
    s = ctx.settings(data_dir=data_dir)
    worker_name = name or socket.gethostname()
    run_worker(
        WorkerConfig(
            server=url,
            token=secret,
            name=worker_name,
            data_dir=s.data_dir / "workers" / worker_name,
            max_jobs=max_jobs,
            provides=tuple(provides or ()),
            installs=installs,
            burst=burst,
            grace_seconds=grace,
            fast_start=fast_start,
            executor=executor.value,
            slurm=SlurmOptions(
                partition=slurm_partition,
                cpus=slurm_cpus,
                memory=slurm_memory,
                time=slurm_time,
                array=slurm_array,
                array_wait=slurm_array_wait,
            ),
        )
    )


@worker_app.command("install")
def install(
    packages: Annotated[
        list[str],
        typer.Argument(help="Dependency packages: NAME (the newest imported) or NAME==VERSION."),
    ],
    server: str | None = ServerUrl,
    token: WorkerToken = None,
    token_file: TokenFile = None,
    name: WorkerName = None,
    data_dir: WorkerDataDir = None,
) -> None:
    """Make the environment of these dependency packages (and those they need) on this
    worker now, as its jobs would; the worker may then run task types that need exactly
    these, even without --install-dependencies. Run it on the worker's machine, with the
    worker's name and data directory. A failed environment is made again.

    Example: runyard worker install scikit-image --name imaging-pc-2
    """
    from runyard.client import Client
    from runyard.worker.environments import Environments

    wanted = [package_name(text) for text in packages]
    token = worker_token(token, token_file)
    url, secret = ctx.locate_server(data_dir, server, token, logins=False)
    s = ctx.settings(data_dir=data_dir)
    worker_name = name or socket.gethostname()
    with Client(url, secret) as client:
        answer = client.post(
            "/api/workers/environments/plan", {"worker": worker_name, "packages": wanted}
        )
        if answer["missing"]:
            raise InvalidInput(
                "nothing can install " + ", ".join(answer["missing"]) + ": a virtual marker "
                "(or a package not imported) is something the worker has already; start it "
                "with --provides NAME for each",
                missing=answer["missing"],
            )
        spec = answer["environment"]
        if spec is None:
            console.print(f"worker {worker_name} provides all of them already: nothing to do")
            return
        shown = ", ".join(f"{p['name']} {p['version']}" for p in spec["packages"])
        root = s.data_dir / "workers" / worker_name / "environments"
        environments = Environments(root, client, worker_name)
        with console.status(f"installing {shown} on {worker_name} ..."):
            python = environments.python(spec)
    console.print(
        f"environment {spec['key']} ({shown}) is Ready on {worker_name}: {python}\n"
        f"install log: {root / (spec['key'] + '.log')}",
        highlight=False,
        markup=False,
    )


def worker_token(token: str | None, token_file: Path | None) -> str | None:
    """The token given by --token-file or --token (None: RUNYARD_TOKEN or the admin token);
    a token on the command line is visible to every local user (ps): warned about."""
    if token is not None and token_file is not None:
        raise InvalidInput("--token and --token-file exclude each other: give one")
    if token is not None:
        ctx.errors.print(
            "warning: a token given with --token can be read by every user of this machine "
            "(ps, /proc); give it with --token-file PATH or RUNYARD_TOKEN instead",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return token
    if token_file is None:
        return None
    try:
        text = token_file.expanduser().read_text().strip().splitlines()
    except OSError as exc:
        raise InvalidInput(f"--token-file: cannot read {token_file}: {exc.strerror}") from None
    if not text or not text[0].strip():
        raise InvalidInput(f"--token-file: {token_file} is empty; write the worker token in it")
    if token_file.expanduser().stat().st_mode & 0o077:
        ctx.errors.print(
            f"warning: {token_file} can be read by other users; make it owner-only "
            f"(chmod 600 {token_file})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    return text[0].strip()
