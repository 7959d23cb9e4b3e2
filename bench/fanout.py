"""Benchmark fanout: one job spawns N runs of one step each, and one reduce job sums them.

    .venv/bin/python bench/fanout.py [--runs 5000] [--repeat 3] [--poll 0.5] [--up]
        [--warmup 500] [--jobs-per-process N]
        [--database-url postgresql://USER@HOST/ADMIN_DB]      # PostgreSQL instead of SQLite
        [--processes N]                                       # runyard server --processes N

The workflow is ``Source -> Spawn``. One run is created while the workflow is Draft: its
source job is Done with output ``value`` = N, its ``Spawn`` job Queued. Then the workflow is
started. The Spawn job (``Fanout.Spawn``, run by the worker) spawns three tasks with
``runyard.task.spawn``: ``Found`` (``Fanout.Value``), ``Step`` (``Fanout.Increment``, an
``output`` input from ``Found``: ``value + 1``, the script of ``Bench.Increment``) and
``Sum`` (``Fanout.Sum``, a task of kind reduce taking ``Step``'s value of every run), then N
jobs of ``Found``, each Done in a new run, through ``spawn.spawn_jobs`` (10,000 per call,
one transaction each; each creates its run's ``Step`` job, Queued). The worker runs the N
steps; when none is pending, the server queues the one ``Sum`` job, which outputs the sum
of the list it is given. It must equal the sum of i + 1 for i < N, else the repeat fails.

The figure is the time from the workflow's start (its ``workflow.state`` entry in the
activity log) to the ``Sum`` job's ``finished_at``, from the server's own timestamps, so the
completion poll's interval does not count. Beside it, from the server's timestamps: the wait
until the Spawn job was claimed, the Spawn job (and, measured in its script, the
``spawn_jobs`` call), the steps (jobs/s from the first step's start to the last step's end),
and the reduce (from the last step's end to the Sum job queued, claimed and finished). Also
the CPU per job (spawn, steps and reduce: N + 2 jobs) of the server, the worker, the job
processes and (a local PostgreSQL whose data directory is readable) the database cluster
over the whole span; the same split by phase and the server's CPU per step over the first
and the last tenth of the steps (read at each poll, so a boundary is known to within one
poll interval); the poll's own time at the end; and the server's resident memory when the
workflow starts, at its peak (``VmHWM``) and at the end.

Each repeat starts a fresh ``runyard server`` and ``runyard worker --max-jobs 2`` (or
``runyard up --max-jobs 2`` with ``--up``) on SQLite in a temporary data directory, or on a
new database made on the given PostgreSQL server and dropped afterwards. A warm-up fan-out of
``--warmup`` runs (not counted) comes first. ``--jobs-per-process N`` puts the task type
metadata field ``jobs_per_process`` on ``Fanout.Increment``. The baseline is measured on
SQLite whatever the backend. Nothing is asserted; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    STEP_SCRIPT,
    Baseline,
    BenchError,
    Installation,
    _children_by_parent,
    _descendants,
    _proc_cpu,
    _task_type_metadata,
    _write_json,
    common_arguments,
    describe_cpu,
    describe_system,
    first_error,
    installation,
    load_average,
    measure_baseline,
    median,
    median_cpu,
    ms,
    parse_time,
    scale_arguments,
)
from seed_spawn import database

WORKFLOW = "Fanout"
VALUE_TYPE = "Fanout.Value"
SPAWN_TYPE = "Fanout.Spawn"
STEP_TYPE = "Fanout.Increment"
SUM_TYPE = "Fanout.Sum"
LAST_RUNS_CHECKED = 5  # the last step Done is one of these runs' (claims go in run order)

SPAWN_SCRIPT = """\
import time

from runyard import task
from runyard.task import spawn

job = task.current_job()
runs = job.inputs["runs"]
found = spawn.spawn_task("Fanout.Value", "Found")
spawn.spawn_task(
    "Fanout.Increment",
    "Step",
    inputs=[{"key": "value", "source": {"mode": "output", "task": "Found", "key": "value"}}],
)
spawn.spawn_task(
    "Fanout.Sum",
    "Sum",
    inputs=[{"key": "values", "source": {"mode": "output", "task": "Step", "key": "value"}}],
)
items = [
    spawn.job_spec(found, outputs={"value": n}, metadata={"run_display_name": f"r{n}"})
    for n in range(runs)
]
started = time.perf_counter()
spawned = spawn.spawn_jobs(items)
task.finish({"spawned": len(spawned), "spawn_seconds": time.perf_counter() - started})
"""

SUM_SCRIPT = """\
from runyard import task

values = task.current_job().inputs["values"]
task.finish({"total": sum(values), "count": len(values)})
"""


def write_packages(root: Path, jobs_per_process: int | None) -> list[Path]:
    """Package folders, in import order: the task types ``Fanout.Value`` (a source task whose
    jobs are created with their output), ``Fanout.Spawn``, ``Fanout.Increment`` (with
    ``jobs_per_process`` in its metadata if given), ``Fanout.Sum`` (reduce), and the
    workflow ``Source -> Spawn``."""
    value_if = {"kind": "interactive", "inputs": [], "outputs": [_int("value")]}
    spawn_if = {
        "kind": "processing",
        "inputs": [{"key": "runs", "type": "Int", "supported_modes": ["output"]}],
        "outputs": [_int("spawned"), {"key": "spawn_seconds", "type": "Float"}],
    }
    step_if = {
        "kind": "processing",
        "inputs": [{"key": "value", "type": "Int", "supported_modes": ["output"]}],
        "outputs": [_int("value")],
    }
    sum_if = {
        "kind": "reduce",
        "inputs": [{"key": "values", "type": "List[Int]", "supported_modes": ["output"]}],
        "outputs": [_int("total"), _int("count")],
    }
    step_extra = {} if jobs_per_process is None else {"jobs_per_process": jobs_per_process}
    failing = "from runyard import task\n\ntask.fail('these jobs are created with outputs')\n"
    types = [
        (VALUE_TYPE, "A run's number.", value_if, failing, {}),
        (SPAWN_TYPE, "Spawns a run per number below its input.", spawn_if, SPAWN_SCRIPT, {}),
        (STEP_TYPE, "Adds one.", step_if, STEP_SCRIPT, step_extra),
        (SUM_TYPE, "The sum of every run's value.", sum_if, SUM_SCRIPT, {}),
    ]
    folders = []
    for name, summary, interface, script, extra in types:
        folder = root / name
        _write_json(folder / "metadata.json", _task_type_metadata(name, summary) | extra)
        _write_json(folder / "interface.json", interface)
        (folder / "main.py").write_text(script)
        folders.append(folder)
    flow = root / WORKFLOW
    _write_json(
        flow / "metadata.json",
        {
            "package_format": "XFP-WF1.0",
            "name": WORKFLOW,
            "version": "1.0.0.0",
            "summary": "Benchmark: Spawn makes a run per number, each with a step; Sum reduces.",
        },
    )
    runs_source = {"mode": "output", "task": 0, "key": "value"}
    tasks = [
        {"name": "Source", "task_type": {"name": VALUE_TYPE}, "inputs": []},
        {
            "name": "Spawn",
            "task_type": {"name": SPAWN_TYPE},
            "inputs": [{"key": "runs", "source": runs_source}],
        },
    ]
    _write_json(flow / "tasks.json", {"tasks": tasks})
    return [*folders, flow]


def _int(key: str) -> dict[str, str]:
    return {"key": key, "type": "Int"}


# -- one repeat -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Sample:
    """What the completion poll saw: when (epoch seconds), CPU seconds by role, Done jobs."""

    at: float
    cpu: dict[str, float]
    done: int


@dataclass(frozen=True, kw_only=True)
class FanoutResult:
    runs: int
    seconds: float  # server: workflow started -> Sum finished_at
    client_seconds: float  # client: POST start until the poll saw every job Done
    claim_wait: float  # workflow started -> Spawn started_at
    spawn_job: float  # Spawn started_at -> finished_at
    spawn_call: float  # the spawn_jobs call, timed in the script
    steps: float  # first step started_at -> last step finished_at
    reduce_wait: float  # last step finished_at -> Sum created_at
    reduce_queued: float  # Sum created_at -> started_at
    reduce_run: float  # Sum started_at -> finished_at
    cpu: dict[str, float]  # CPU seconds per job (N + 2) by process role
    phases: dict[str, dict[str, float]]  # phase -> CPU seconds by role (whole phase)
    rss: dict[str, int]  # server memory in kB: "start", "peak" (VmHWM), "end"
    step_server_cpu: tuple[float, float]  # server CPU per step: first, last tenth of the steps
    poll_seconds: float  # the completion poll at the end (median of 5)

    @property
    def step_rate(self) -> float:
        return self.runs / self.steps


def measure(
    folders: list[Path], runs: int, args: argparse.Namespace, *, admin_url: str | None
) -> FanoutResult:
    up, poll = args.up, args.poll
    with (
        database(admin_url) as url,
        installation(up=up, database_url=url, server_processes=args.processes) as inst,
    ):
        inst.import_packages(folders)
        inst.new_run(WORKFLOW, runs)  # Draft: the Spawn job waits, Queued, for the start
        rss_start = server_memory(inst)["VmRSS"]
        postmaster = None if url is None else postmaster_pid(url)
        samples = [_sample(inst, 0, postmaster)]
        start = time.perf_counter()
        inst.start_workflow(WORKFLOW)
        # Done at the end: Source, Spawn, N Found, N Step and Sum.
        samples += wait_done(inst, 2 * runs + 3, poll, postmaster)
        end = time.perf_counter()
        memory = server_memory(inst)
        spans = _server_spans(inst, runs)
        polls = []
        for _ in range(5):
            before = time.perf_counter()
            inst.job_counts(WORKFLOW)
            polls.append(time.perf_counter() - before)
        server = inst.roles[0]
    cpu_all = _cpu_between(samples[0], samples[-1])
    return FanoutResult(
        runs=runs,
        seconds=_seconds(spans["start"], spans["reduce finished"]),
        client_seconds=end - start,
        claim_wait=_seconds(spans["start"], spans["spawn started"]),
        spawn_job=_seconds(spans["spawn started"], spans["spawn finished"]),
        spawn_call=float(spans["spawn call"]),
        steps=_seconds(spans["first step started"], spans["last step finished"]),
        reduce_wait=_seconds(spans["last step finished"], spans["reduce created"]),
        reduce_queued=_seconds(spans["reduce created"], spans["reduce started"]),
        reduce_run=_seconds(spans["reduce started"], spans["reduce finished"]),
        cpu={role: seconds / (runs + 2) for role, seconds in cpu_all.items()},
        phases=_phases(samples, spans),
        step_server_cpu=_cpu_per_step(samples, spans, server),
        poll_seconds=median(polls),
        rss={"start": rss_start, "peak": memory["VmHWM"], "end": memory["VmRSS"]},
    )


def wait_done(
    inst: Installation, done: int, poll: float, postmaster: int | None, timeout: float = 7200
) -> list[Sample]:
    """Poll until ``done`` jobs of the workflow are Done; a sample of every poll."""
    deadline = time.monotonic() + timeout
    samples = []
    while True:
        counts = inst.job_counts(WORKFLOW)
        samples.append(_sample(inst, counts.get("Done", 0), postmaster))
        if counts.get("Failed"):
            raise BenchError(f"a job failed: {first_error(inst, WORKFLOW)}")
        if samples[-1].done >= done:
            return samples
        if time.monotonic() > deadline:
            raise BenchError(f"not done after {timeout} s: {counts}")
        time.sleep(poll)


def _sample(inst: Installation, done: int, postmaster: int | None) -> Sample:
    cpu = inst.cpu_seconds()
    if cpu and postmaster is not None:
        cpu["postgres"] = _tree_cpu(postmaster)
    return Sample(at=time.time(), cpu=cpu, done=done)


def postmaster_pid(url: str) -> int | None:
    """The process id of the PostgreSQL server of ``url`` if it runs on this machine and its
    data directory can be read (then its CPU is counted, as the role ``postgres``)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            data_dir = conn.execute(sa.text("SHOW data_directory")).scalar_one()
        with open(Path(data_dir) / "postmaster.pid") as pid_file:
            pid = int(pid_file.readline())
        _tree_cpu(pid)
    except (OSError, ValueError, sa.exc.DBAPIError):
        return None
    finally:
        engine.dispose()
    return pid


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants (a PostgreSQL
    cluster: the postmaster reaps the backends of closed connections)."""
    total = sum(_proc_cpu(pid))
    for child in _descendants(pid, _children_by_parent()):
        with suppress(OSError):
            total += sum(_proc_cpu(child))
    return total


def server_memory(inst: Installation) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of the server process (``up`` with --up), in kB; with
    --processes N the sums over the server processes and the one that watches them (pages
    they share are counted in each; the peaks need not coincide)."""
    found = {"VmRSS": 0, "VmHWM": 0}
    server = inst.processes[0].pid
    children = _descendants(server, _children_by_parent()) if inst.roles[0] == "server" else []
    for pid in [server, *children]:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in found:
                    found[key] += int(value.split()[0])
    return found


def _server_spans(inst: Installation, runs: int) -> dict[str, Any]:
    """The server's timestamps of the phases (and the spawn call's seconds), after checking
    the Sum job's result."""
    starts = [
        parse_time(entry["at"])
        for entry in inst.client.get("/api/activity", params={"limit": 50})
        if entry["action"] == "workflow.state" and entry["message"].endswith("-> Started")
    ]
    if not starts:
        raise BenchError("the workflow's start is not in the activity log")
    top = _runs_page(inst, 0, 2)
    cell = top["reduce"].get("Sum")
    if cell is None or cell["state"] != "Done":
        raise BenchError(f"the Sum job is not Done: {cell}")
    reduce = inst.job(cell["serial"])
    expected = runs * (runs + 1) // 2  # the sum of i + 1 for i < runs
    if reduce["outputs"] != {"total": expected, "count": runs}:
        raise BenchError(f"Sum output {reduce['outputs']}, expected total {expected} of {runs}")
    [source_run, first_run] = top["runs"]
    spawner = inst.job(source_run["jobs"]["Spawn"]["serial"])
    if spawner["outputs"].get("spawned") != runs:
        raise BenchError(f"the Spawn job spawned {spawner['outputs']}, not {runs} runs")
    first = inst.job(first_run["jobs"]["Step"]["serial"])
    last_runs = _runs_page(inst, max(runs + 1 - LAST_RUNS_CHECKED, 1), LAST_RUNS_CHECKED)
    last = [inst.job(run["jobs"]["Step"]["serial"]) for run in last_runs["runs"]]
    return {
        "start": max(starts),
        "spawn started": parse_time(spawner["started_at"]),
        "spawn finished": parse_time(spawner["finished_at"]),
        "spawn call": spawner["outputs"]["spawn_seconds"],
        "first step started": parse_time(first["started_at"]),
        "last step finished": max(parse_time(job["finished_at"]) for job in last),
        "reduce created": parse_time(reduce["created_at"]),
        "reduce started": parse_time(reduce["started_at"]),
        "reduce finished": parse_time(reduce["finished_at"]),
    }


def _runs_page(inst: Installation, offset: int, limit: int) -> dict[str, Any]:
    page: dict[str, Any] = inst.client.get(
        f"/api/workflows/{WORKFLOW}/runs", params={"offset": offset, "limit": limit}
    )
    return page


def _phases(samples: list[Sample], spans: dict[str, Any]) -> dict[str, dict[str, float]]:
    """CPU seconds by role in each phase, between the first samples at or after its ends:
    the fan-out (start to the Spawn job's end, steps running beside it), the steps (to the
    last step's end) and the reduce (to the Sum job's end)."""
    bounds = [spans[k] for k in ("spawn finished", "last step finished", "reduce finished")]
    at = [samples[0]] + [_first_after(samples, bound) for bound in bounds]
    names = ["fan-out", "steps", "reduce"]
    return {name: _cpu_between(a, b) for name, a, b in zip(names, at[:-1], at[1:], strict=True)}


def _cpu_per_step(samples: list[Sample], spans: dict[str, Any], role: str) -> tuple[float, float]:
    """CPU seconds of ``role`` per step Done over the first and the last tenth of the polls
    between the Spawn job's end and the last step's end (does a step cost more when more
    runs are done?); NaN when there are too few polls or no /proc."""
    start, end = (_epoch(spans[k]) for k in ("spawn finished", "last step finished"))
    inside = [s for s in samples if start <= s.at <= end and role in s.cpu]
    if len(inside) < 4:
        return float("nan"), float("nan")
    tenth = max(len(inside) // 10, 1)
    pairs = ((inside[0], inside[tenth]), (inside[-1 - tenth], inside[-1]))
    per = [(b.cpu[role] - a.cpu[role]) / max(b.done - a.done, 1) for a, b in pairs]
    return per[0], per[1]


def _first_after(samples: list[Sample], moment: datetime) -> Sample:
    return next((s for s in samples if s.at >= _epoch(moment)), samples[-1])


def _epoch(moment: datetime) -> float:
    """A server timestamp as seconds since the epoch (UTC if it names no zone)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _cpu_between(before: Sample, after: Sample) -> dict[str, float]:
    return {role: after.cpu[role] - before.cpu.get(role, 0.0) for role in after.cpu}


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


# -- report -----------------------------------------------------------------------------------


def describe(result: FanoutResult) -> str:
    rss = result.rss
    return (
        f"{result.seconds:.2f} s from the start to the Sum job Done (seen by the poll after "
        f"{result.client_seconds:.2f} s); {load_average()}\n"
        f"          spawn: claimed after {ms(result.claim_wait)}, job {result.spawn_job:.2f} s, "
        f"spawn_jobs call {result.spawn_call:.2f} s; steps: {result.step_rate:.1f} jobs/s "
        f"({result.runs} in {result.steps:.2f} s); reduce: queued "
        f"{ms(result.reduce_wait)} after the last step, claimed after "
        f"{ms(result.reduce_queued)}, ran {ms(result.reduce_run)}\n"
        f"          server RSS: {rss['start'] / 1024:.0f} MB at the start, peak "
        f"{rss['peak'] / 1024:.0f} MB, {rss['end'] / 1024:.0f} MB at the end\n"
        f"          {describe_cpu(result.cpu)} ({result.runs + 2} jobs); server per step: "
        f"first tenth {_ms_or_na(result.step_server_cpu[0])}, last tenth "
        f"{_ms_or_na(result.step_server_cpu[1])}; the poll at the end {ms(result.poll_seconds)}\n"
        f"          CPU by phase: {describe_phases(result.phases)}"
    )


def _ms_or_na(seconds: float) -> str:
    return "n/a (too few polls)" if math.isnan(seconds) else ms(seconds)


def describe_phases(phases: dict[str, dict[str, float]]) -> str:
    if not all(phases.values()):
        return "unknown (no /proc)"
    return "; ".join(
        f"{name} " + ", ".join(f"{role} {seconds:.2f} s" for role, seconds in cpu.items())
        for name, cpu in phases.items()
    )


def summarize(results: list[FanoutResult], baseline: Baseline) -> None:
    runs = results[0].runs
    seconds = median([r.seconds for r in results])
    rate = median([r.step_rate for r in results])
    cpu = median_cpu([r.cpu for r in results])
    print(
        f"median: {seconds:.2f} s from the start to the reduce Done ({runs} runs, "
        f"{runs / seconds:.0f} runs/s)\n"
        f"        spawn_jobs call {median([r.spawn_call for r in results]):.2f} s, "
        f"Spawn job {median([r.spawn_job for r in results]):.2f} s; steps {rate:.1f} jobs/s, "
        f"per slot {baseline.ratios(2 / rate)}; reduce (last step to Sum Done) "
        f"{ms(median([r.reduce_wait + r.reduce_queued + r.reduce_run for r in results]))}\n"
        f"        server RSS peak {median([r.rss['peak'] for r in results]) / 1024:.0f} MB, "
        f"at the end {median([r.rss['end'] for r in results]) / 1024:.0f} MB\n"
        f"        median {describe_cpu(cpu)}"
    )
    cores = os.cpu_count() or 1
    if cpu:
        print(
            f"        {cores} cores at this CPU cost allow at most "
            f"{cores / sum(cpu.values()):.0f} jobs/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.set_defaults(repeat=3, poll=0.5)
    parser.add_argument("--runs", type=int, default=5000, help="runs the Spawn job spawns")
    parser.add_argument(
        "--warmup", type=int, default=500, help="runs of a warm-up fan-out, not counted (0: none)"
    )
    parser.add_argument(
        "--jobs-per-process",
        type=int,
        default=None,
        help="the task type metadata field jobs_per_process of the step (Fanout.Increment)",
    )
    scale_arguments(parser)
    args = parser.parse_args()
    admin_url = args.database_url
    with tempfile.TemporaryDirectory(prefix="runyard-bench-packages-") as tmp:
        folders = write_packages(Path(tmp), args.jobs_per_process)
        per_process = (
            "" if args.jobs_per_process is None else f", jobs_per_process {args.jobs_per_process}"
        )
        print(
            f"fanout: one Spawn job spawns {args.runs} runs, each Found -> Step "
            f"(Fanout.Increment{per_process}), then one reduce job (Fanout.Sum) sums them"
        )
        print(
            describe_system(
                args.up, 2, args.poll, processes=args.processes, postgres=admin_url is not None
            )
        )
        baseline = measure_baseline(folders, WORKFLOW)
        print(baseline.describe())
        if args.warmup:
            warm = measure(folders, args.warmup, args, admin_url=admin_url)
            print(f"warm-up ({args.warmup} runs, not counted): {warm.seconds:.2f} s", flush=True)
        results = []
        for index in range(1, args.repeat + 1):
            result = measure(folders, args.runs, args, admin_url=admin_url)
            results.append(result)
            print(f"repeat {index}: {describe(result)}", flush=True)
    summarize(results, baseline)


if __name__ == "__main__":
    main()
