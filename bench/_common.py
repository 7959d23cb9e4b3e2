"""What both benchmarks share: packages written to a temporary folder, a real Runyard
installation (server and worker subprocesses on a fresh data directory), completion polling,
the baseline and the report.

Nothing here reaches into Runyard's internals: the processes are started with
``python -m runyard``, packages are imported and runs created over the HTTP API, so a
benchmark measures whatever the server and worker code is when it runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import runyard
from runyard.client import Client, Unreachable
from runyard.packages import folder_zip_bytes

RUNYARD = [sys.executable, "-m", "runyard"]
SOURCE_TYPE = "Bench.Source"
STEP_TYPE = "Bench.Increment"
WORKER_NAME = "bench-worker"
START_TIMEOUT = 60.0
POLL_ENDPOINT = "GET /api/workflows (live job counts by state)"

STEP_SCRIPT = """\
from runyard import task

job = task.current_job()
task.finish({"value": job.inputs["value"] + 1})
"""


class BenchError(RuntimeError):
    """The installation did not start, or a job failed: the figures would be meaningless."""


# -- packages ---------------------------------------------------------------------------------


def write_packages(
    root: Path, workflow: str, steps: int, *, jobs_per_process: int | None = None
) -> list[Path]:
    """Package folders, in import order: the task types ``Bench.Source`` (a source task
    whose jobs are created with their output ``value``) and ``Bench.Increment`` (outputs
    ``value + 1``; with ``jobs_per_process`` in its metadata if given), and a workflow
    ``Source -> Step1 -> ... -> Step<steps>``."""
    source, step, flow = root / "Source", root / "Increment", root / workflow
    _write_json(source / "metadata.json", _task_type_metadata(SOURCE_TYPE, "The run's number."))
    _write_json(
        source / "interface.json",
        {"kind": "interactive", "inputs": [], "outputs": [{"key": "value", "type": "Int"}]},
    )
    (source / "main.py").write_text(
        "from runyard import task\n\ntask.fail('source jobs are created with their outputs')\n"
    )
    _write_json(
        step / "metadata.json",
        _task_type_metadata(STEP_TYPE, "Adds one.", jobs_per_process=jobs_per_process),
    )
    _write_json(
        step / "interface.json",
        {
            "kind": "processing",
            "inputs": [{"key": "value", "type": "Int", "supported_modes": ["output"]}],
            "outputs": [{"key": "value", "type": "Int"}],
        },
    )
    (step / "main.py").write_text(STEP_SCRIPT)
    _write_json(
        flow / "metadata.json",
        {
            "package_format": "XFP-WF1.0",
            "name": workflow,
            "version": "1.0.0.0",
            "summary": f"Benchmark: a source and {steps} increments in a line.",
        },
    )
    tasks: list[dict[str, Any]] = [
        {"name": "Source", "task_type": {"name": SOURCE_TYPE}, "inputs": []}
    ]
    for index in range(1, steps + 1):
        previous = {"mode": "output", "task": index - 1, "key": "value"}
        tasks.append(
            {
                "name": f"Step{index}",
                "task_type": {"name": STEP_TYPE},
                "inputs": [{"key": "value", "source": previous}],
            }
        )
    _write_json(flow / "tasks.json", {"tasks": tasks})
    return [source, step, flow]


def _task_type_metadata(
    name: str, summary: str, *, jobs_per_process: int | None = None
) -> dict[str, Any]:
    """A task type's ``metadata.json``; ``jobs_per_process`` only if given (absent: a new
    process per job)."""
    metadata: dict[str, Any] = {
        "package_format": "XFP-TT1.0",
        "name": name,
        "version": "1.0.0.0",
        "summary": summary,
        "author": "Runyard benchmarks",
        "dependencies": [],
    }
    if jobs_per_process is not None:
        metadata["jobs_per_process"] = jobs_per_process
    return metadata


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


# -- the installation -------------------------------------------------------------------------


@dataclass
class Installation:
    """A running server (and worker) on a fresh data directory, and an admin client."""

    data_dir: Path
    url: str
    token: str
    client: Client
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)  # "server", "worker" or "up", per process

    def import_packages(self, folders: Sequence[Path]) -> None:
        for folder in folders:
            self.client.post(
                "/api/packages",
                content=folder_zip_bytes(folder),
                params={"filename": f"{folder.name}.xfp"},
            )

    def start_workflow(self, workflow: str) -> None:
        self.client.post(f"/api/workflows/{workflow}/start")

    def new_run(self, workflow: str, value: int) -> dict[str, Any]:
        """A run whose source job is Done with output ``value`` (its followers are Queued)."""
        job: dict[str, Any] = self.client.post(
            f"/api/workflows/{workflow}/runs",
            {"task": "Source", "outputs": {"value": value}, "name": f"run {value}"},
        )
        return job

    def job_counts(self, workflow: str) -> dict[str, int]:
        for item in self.client.get("/api/workflows"):
            if item["name"] == workflow:
                counts: dict[str, int] = item["jobs"]
                return counts
        raise BenchError(f"workflow {workflow} is not on the server")

    def wait_done(self, workflow: str, done: int, poll: float, timeout: float = 3600) -> float:
        """Poll until ``done`` jobs of the workflow are Done; the perf_counter() then."""
        deadline = time.perf_counter() + timeout
        while True:
            counts = self.job_counts(workflow)
            now = time.perf_counter()
            if counts.get("Failed"):
                raise BenchError(f"a job failed: {first_error(self, workflow)}")
            if counts.get("Done", 0) >= done:
                return now
            if now > deadline:
                raise BenchError(f"not done after {timeout} s: {counts}")
            time.sleep(poll)

    def job(self, serial: int) -> dict[str, Any]:
        data: dict[str, Any] = self.client.get(f"/api/jobs/{serial}")
        return data

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each Runyard process itself, and by
        the job processes they started (the fork server and the scripts, alive or reaped);
        empty where there is no /proc (not Linux)."""
        totals: dict[str, float] = {}
        jobs = 0.0
        try:
            children = _children_by_parent()
            for role, process in zip(self.roles, self.processes, strict=True):
                totals[role], reaped = _proc_cpu(process.pid)
                # A server's children are server processes (--processes N), those of a
                # worker or of ``up`` job processes.
                below = 0.0
                for pid in _descendants(process.pid, children):
                    with suppress(OSError):
                        below += sum(_proc_cpu(pid))
                if role == "server":
                    totals[role] += reaped + below
                else:
                    jobs += reaped + below
        except OSError:
            return {}
        return totals | {"job processes": jobs}

    def log_tail(self) -> str:
        parts = []
        for log in sorted(self.data_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)


def first_error(inst: Installation, workflow: str) -> str:
    status = inst.client.get(f"/api/workflows/{workflow}/status")
    for run in status["runs"]:
        for task, job in run["jobs"].items():
            if job["state"] == "Failed":
                return f"{run['name']} {task}: {job['error']}"
    return "(no failed job found)"


@contextmanager
def installation(
    *,
    up: bool,
    worker: bool = True,
    max_jobs: int = 2,
    database_url: str | None = None,
    server_processes: int = 1,
    data_dir: Path | None = None,
) -> Iterator[Installation]:
    """``runyard server`` and ``runyard worker --max-jobs N`` (or ``runyard up --max-jobs N``)
    on a loopback port with a fresh temporary data directory, removed afterwards, or in
    ``data_dir``, kept (and ``database_url`` instead of its SQLite file, if given;
    ``server_processes``: ``runyard server --processes N``, PostgreSQL only)."""
    keep = data_dir is not None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="runyard-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env["RUNYARD_DATA_DIR"] = str(data_dir)
    processes: list[subprocess.Popen[bytes]] = []
    client: Client | None = None
    try:
        command = ["up", "--max-jobs", str(max_jobs)] if up else ["server"]
        if database_url is not None:
            command += ["--database-url", database_url]
        if server_processes > 1:
            if up or database_url is None:
                raise BenchError("--processes needs runyard server (not --up) on PostgreSQL")
            command += ["--processes", str(server_processes)]
        processes.append(_spawn([*command, "--port", "0"], data_dir / "server.log", env))
        roles = [command[0]]
        url = json.loads(_wait_for_file(data_dir / "server.json", processes[0], data_dir))["url"]
        token = (data_dir / "admin-token").read_text().strip()
        client = Client(url, token)
        inst = Installation(
            data_dir=data_dir,
            url=url,
            token=token,
            client=client,
            processes=processes,  # the worker is appended below, with its role
            roles=roles,
        )
        _wait_until(lambda: _answers(client), processes[0], inst, "the server to answer")
        if worker and not up:
            processes.append(
                _spawn(
                    ["worker", "--max-jobs", str(max_jobs), "--name", WORKER_NAME],
                    data_dir / "worker.log",
                    env,
                )
            )
            roles.append("worker")
        if worker:
            _wait_until(lambda: bool(client.get("/api/workers")), processes[-1], inst, "a worker")
            time.sleep(0.3)  # let the worker settle into its long-polling claim
        yield inst
    finally:
        if client is not None:
            client.close()
        # The worker first (it stops claiming), then the server (it ends the long polls).
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [*RUNYARD, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent
        )


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], data_dir: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            log = (data_dir / "server.log").read_text(errors="replace")
            raise BenchError(f"the server did not start:\n{log}")
        time.sleep(0.02)
    return path.read_text()


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], inst: Installation, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"gave up waiting for {what}:\n{inst.log_tail()}")
        time.sleep(0.02)


def _answers(client: Client) -> bool:
    try:
        client.get("/api/workflows")
    except Unreachable:
        return False
    return True


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) / CLOCK_TICKS for x in fields[11:15])
    return utime + stime, cutime + cstime


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with suppress(OSError), open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    return children


def _descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def cpu_per_job(before: dict[str, float], after: dict[str, float], jobs: int) -> dict[str, float]:
    """CPU seconds per job by role between two ``cpu_seconds`` readings."""
    return {role: (after[role] - before.get(role, 0.0)) / jobs for role in after}


def median_cpu(readings: Sequence[dict[str, float]]) -> dict[str, float]:
    if not all(readings):
        return {}
    return {role: median([r[role] for r in readings]) for role in readings[0]}


def describe_cpu(per_job: dict[str, float]) -> str:
    if not per_job:
        return "CPU per job: unknown (no /proc)"
    parts = ", ".join(f"{role} {ms(seconds)}" for role, seconds in per_job.items())
    return f"CPU per job: {parts}; total {ms(sum(per_job.values()))}"


# -- baseline and report ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """Costs that every job pays at least once, measured on this machine just now (seconds)."""

    python_start: float  # subprocess.run([python, "-c", "pass"])
    task_import: float  # subprocess.run([python, "-c", "from runyard import task"])
    status_rtt: float  # GET /api/workflows/{name}/status of a workflow without runs
    poll_rtt: float  # the completion poll, GET /api/workflows
    fresh_rtt: float  # GET /api/workflows on a new connection (http.client, no keep-alive)

    def describe(self) -> str:
        return (
            f"baseline: python -c pass {ms(self.python_start)}; "
            f"python -c 'from runyard import task' {ms(self.task_import)}; "
            f"round trips with runyard's client (keep-alive): GET .../status "
            f"{ms(self.status_rtt)}, GET /api/workflows {ms(self.poll_rtt)}; "
            f"GET /api/workflows on a new connection {ms(self.fresh_rtt)} (medians)"
        )

    def ratios(self, per_job: float) -> str:
        return (
            f"{ms(per_job)}/job = {per_job / self.python_start:.1f} x python start"
            f" = {per_job / self.status_rtt:.0f} x status round trip"
        )


def measure_baseline(folders: Sequence[Path], workflow: str) -> Baseline:
    """The baseline, on its own ``runyard server`` (no worker) with the benchmark's packages
    imported."""

    def python(code: str) -> float:
        return _median_time(lambda: subprocess.run([sys.executable, "-c", code], check=True), 15)

    with installation(up=False, worker=False) as inst:
        inst.import_packages(folders)
        status = _median_time(lambda: inst.client.get(f"/api/workflows/{workflow}/status"), 30)
        poll = _median_time(lambda: inst.job_counts(workflow), 30)
        fresh = _median_time(lambda: _get_on_new_connection(inst), 30)
    return Baseline(
        python_start=python("pass"),
        task_import=python("from runyard import task"),
        status_rtt=status,
        poll_rtt=poll,
        fresh_rtt=fresh,
    )


def _get_on_new_connection(inst: Installation) -> None:
    url = urlsplit(inst.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    try:
        headers = {"Authorization": f"Bearer {inst.token}"}
        connection.request("GET", "/api/workflows", headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise BenchError(f"GET /api/workflows answered {response.status}")
    finally:
        connection.close()


def _median_time(call: Callable[[], object], times: int) -> float:
    call()  # warm up: connections, caches
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def describe_code() -> str:
    """Which Runyard the subprocesses run (they import it as this process does)."""
    source = Path(runyard.__file__).resolve().parent.parent
    git = ["git", "-C", str(source)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "runyard"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"code: runyard {runyard.__version__} from {source} (not a git checkout)"
    state = " with uncommitted changes under runyard/" if changed else ""
    return f"code: runyard from {source}, commit {commit}{state}"


def describe_system(
    up: bool, max_jobs: int, poll: float, *, processes: int = 1, postgres: bool = False
) -> str:
    described = (
        f"runyard up --max-jobs {max_jobs} (server and local worker in one process)"
        if up
        else f"runyard server{f' --processes {processes}' if processes > 1 else ''} + "
        f"runyard worker --max-jobs {max_jobs}"
    )
    backend = "PostgreSQL (a new database per repeat)" if postgres else "SQLite"
    return (
        f"system: {described}, {backend}, fresh data dir per repeat; {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {datetime.now().strftime('%Y-%m-%d %H:%M')}, "
        f"{load_average()}\n"
        f"{describe_code()}\n"
        f"completion: polling {POLL_ENDPOINT} every {ms(poll)}"
    )


def load_average() -> str:
    """Other work on the machine skews every figure: say how busy it was."""
    return f"load average {os.getloadavg()[0]:.2f} (1 min)"


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeat", type=int, default=5, help="measurements (fresh servers)")
    parser.add_argument(
        "--poll",
        type=float,
        default=0.1,
        help="completion poll interval in seconds (the figures come from server timestamps; "
        "a shorter interval only costs the server CPU)",
    )
    parser.add_argument(
        "--up", action="store_true", help="use 'runyard up' (server and local worker in one)"
    )


def scale_arguments(parser: argparse.ArgumentParser) -> None:
    """The backend and the server processes (pipes, fanout)."""
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server (any database on it): a new database is made there per "
        "repeat; default: SQLite",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes (runyard server --processes N; needs --database-url)",
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
