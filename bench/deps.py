"""Benchmark deps: environments of dependency packages on a worker, and their jobs' start.

    .venv/bin/python bench/deps.py [--jobs 20] [--modes fast,plain] [--write-bytecode]
        [--cold-uv-cache] [--forks 21] [--poll 0.1]

A real ``runyard server`` (SQLite, a fresh temporary data directory) and a real
``runyard worker --install-dependencies --max-jobs 1`` (``--fast-start`` or ``--plain-start``)
for each mode. The dependency package ``scikit-image`` installs with
``%xfpip% install numpy scikit-image`` (from PyPI through uv); four task types finish at once:

- ``Bench.Empty``: no dependency packages, imports nothing (only ``runyard.task``);
- ``Bench.Numpy``: no dependency packages, imports numpy, in the worker's own Python: the
  baseline;
- ``Bench.EnvNumpy``: needs ``scikit-image``, imports numpy only, in the environment (like
  for like with the baseline);
- ``Bench.EnvSkimage``: needs ``scikit-image``, imports numpy and
  ``from skimage.filters import gaussian, threshold_otsu`` (``import skimage.filters`` alone
  loads nothing: scikit-image loads its submodules lazily).

Measured:

1. The first job of the environment (workflow ``First``: ``Source -> EnvSkimage``): from its
   creation to Done (server timestamps), split at its claim, the environment's ``Ready``
   (the install log's own "ready in" figure) and the script's first line; the install log's
   size; whether uv's cache already held scikit-image (the first mode on a machine that never
   installed it is cold; the second mode's environment is made again in a new data directory,
   from a warm cache). ``--cold-uv-cache`` gives the worker an empty uv cache of its own.
2. Later jobs (workflow ``Chain``: ``Source`` then ``--jobs`` + 1 rounds of the four task types,
   interleaved, each job after the one before, so nothing waits in a queue; the first round is
   a warm-up and not counted): per job, the server's claim (``started_at``) to Done
   (``finished_at``), split into claim -> the script's first line (preparing, starting the
   process), the script (its imports measured inside it) and its last line -> Done (the
   result file, the process's end, the report); medians, and ratios to ``Bench.Numpy`` in
   the same mode.
3. In the first mode, in the environment's Python: interpreter start, the cost of the imports
   in a new process, and what a fork server that had preloaded scikit-image would save per job
   (fork -> child does the imports -> reaped, with and without the preload; the fork server's
   resident memory with it).

The worker gets this process's environment variables (less ``RUNYARD_*``), and passes them on
to the install commands and the jobs: ``--write-bytecode`` leaves out
``PYTHONDONTWRITEBYTECODE`` (with it, nothing in the environment is ever compiled, since
``uv pip install`` does not compile, and every job compiles what it imports).

Benchmarks are not tests: nothing is asserted but that the jobs ran where they should.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from _common import (
    WORKER_NAME,
    BenchError,
    Installation,
    _children_by_parent,
    _descendants,
    _spawn,
    _task_type_metadata,
    _wait_until,
    _write_json,
    describe_system,
    first_error,
    installation,
    load_average,
    median,
    ms,
    parse_time,
)

DEPENDENCY = "scikit-image"
INSTALL = "%xfpip% install numpy scikit-image"
SKIMAGE_IMPORT = "from skimage.filters import gaussian, threshold_otsu"
FIRST, CHAIN = "First", "Chain"


@dataclass(frozen=True)
class Variant:
    task: str  # the task's name prefix in the chain
    task_type: str
    imports: str  # what its script imports (timed inside the script)
    environment: bool  # needs the dependency package: runs in the environment
    label: str


VARIANTS = (
    Variant("Empty", "Bench.Empty", "", False, "no imports, worker's Python"),
    Variant("Numpy", "Bench.Numpy", "import numpy", False, "numpy, worker's Python (baseline)"),
    Variant("EnvNumpy", "Bench.EnvNumpy", "import numpy", True, "numpy, environment"),
    Variant(
        "EnvSkimage",
        "Bench.EnvSkimage",
        f"import numpy\n{SKIMAGE_IMPORT}",
        True,
        "numpy + skimage.filters, environment",
    ),
)
BASELINE = VARIANTS[1]

SCRIPT = """\
import time
_top = time.time()
import sys
from runyard import task
_t0 = time.perf_counter()
{imports}
_imports = time.perf_counter() - _t0
job = task.current_job()
task.finish(
    {{
        "value": job.inputs["value"] + 1,
        "prefix": sys.prefix,
        "top": _top,
        "imports": _imports,
        "end": time.time(),
    }}
)
"""

# -- packages ---------------------------------------------------------------------------------


def write_packages(root: Path, rounds: int) -> list[Path]:
    """The dependency package, Bench.Source, the four task types, and the workflows First
    (``Source -> EnvSkimage``) and Chain (``Source`` then ``rounds`` x the four, in a line)."""
    dependency = root / DEPENDENCY
    _write_json(
        dependency / "metadata.json",
        {
            "package_format": "XFP-DEP1.0",
            "name": DEPENDENCY,
            "version": "1.0.0.0",
            "display_name": DEPENDENCY,
            "summary": "numpy and scikit-image from PyPI.",
            "install": INSTALL,
            "dependencies": [{"name": "Core.Host.Python3", "version": "3.11.0.0"}],
        },
    )
    source = root / "Source"
    _write_json(source / "metadata.json", _task_type_metadata("Bench.Source", "The value."))
    _write_json(
        source / "interface.json",
        {"kind": "interactive", "inputs": [], "outputs": [{"key": "value", "type": "Int"}]},
    )
    (source / "main.py").write_text("from runyard import task\n\ntask.fail('not run')\n")
    folders = [dependency, source]
    for variant in VARIANTS:
        folder = root / variant.task_type
        metadata = _task_type_metadata(variant.task_type, f"Imports: {variant.label}.")
        if variant.environment:
            metadata["dependencies"] = [{"name": DEPENDENCY, "version": "1.0.0.0"}]
        _write_json(folder / "metadata.json", metadata)
        _write_json(
            folder / "interface.json",
            {
                "kind": "processing",
                "inputs": [{"key": "value", "type": "Int", "supported_modes": ["output"]}],
                "outputs": [
                    {"key": "value", "type": "Int"},
                    {"key": "prefix", "type": "String"},
                    {"key": "top", "type": "Float"},
                    {"key": "imports", "type": "Float"},
                    {"key": "end", "type": "Float"},
                ],
            },
        )
        (folder / "main.py").write_text(SCRIPT.format(imports=variant.imports or "pass"))
        folders.append(folder)
    steps = [(f"{v.task}{r}", v.task_type) for r in range(rounds) for v in VARIANTS]
    folders.append(_workflow(root, FIRST, [("First", VARIANTS[-1].task_type)]))
    folders.append(_workflow(root, CHAIN, steps))
    return folders


def _workflow(root: Path, name: str, steps: list[tuple[str, str]]) -> Path:
    folder = root / name
    _write_json(
        folder / "metadata.json",
        {
            "package_format": "XFP-WF1.0",
            "name": name,
            "version": "1.0.0.0",
            "summary": "Benchmark: jobs with and without dependency packages.",
        },
    )
    tasks: list[dict[str, Any]] = [
        {"name": "Source", "task_type": {"name": "Bench.Source"}, "inputs": []}
    ]
    for index, (task, task_type) in enumerate(steps, start=1):
        previous = {"mode": "output", "task": index - 1, "key": "value"}
        tasks.append(
            {
                "name": task,
                "task_type": {"name": task_type},
                "inputs": [{"key": "value", "source": previous}],
            }
        )
    _write_json(folder / "tasks.json", {"tasks": tasks})
    return folder


# -- the installation with a worker that installs ---------------------------------------------


def worker_environment(*, uv_cache: Path | None, write_bytecode: bool) -> dict[str, str]:
    """The worker's environment variables (its jobs and install commands inherit them): this
    process's, without ``RUNYARD_*``; ``UV_CACHE_DIR`` if given; without
    ``PYTHONDONTWRITEBYTECODE`` if ``write_bytecode``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    if uv_cache is not None:
        env["UV_CACHE_DIR"] = str(uv_cache)
    if write_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@contextmanager
def installing_worker(
    folders: list[Path], *, fast: bool, env: dict[str, str]
) -> Iterator[Installation]:
    """``runyard server`` and ``runyard worker --install-dependencies --max-jobs 1`` with
    ``--fast-start`` or ``--plain-start``, the worker with the environment variables ``env``."""
    with installation(up=False, worker=False) as inst:
        inst.import_packages(folders)
        for workflow in (FIRST, CHAIN):
            inst.start_workflow(workflow)
        env = env | {"RUNYARD_DATA_DIR": str(inst.data_dir)}
        start = "--fast-start" if fast else "--plain-start"
        command = ["worker", "--max-jobs", "1", "--name", WORKER_NAME]
        command += ["--install-dependencies", start]
        inst.processes.append(_spawn(command, inst.data_dir / "worker.log", env))
        inst.roles.append("worker")
        client = inst.client
        _wait_until(lambda: bool(client.get("/api/workers")), inst.processes[-1], inst, "a worker")
        time.sleep(0.3)
        yield inst


def environment_record(inst: Installation) -> dict[str, Any] | None:
    found = inst.client.get(f"/api/workers/{WORKER_NAME}/environments")
    return found[0] if found else None


def wait_first(inst: Installation, timeout: float = 3600) -> None:
    """Until the workflow First's job is Done; BenchError if it or its environment fails."""
    deadline = time.monotonic() + timeout
    while inst.job_counts(FIRST).get("Done", 0) < 2:
        if inst.job_counts(FIRST).get("Failed"):
            raise BenchError(f"the first job failed: {first_error(inst, FIRST)}")
        record = environment_record(inst)
        if record is not None and record["state"] == "Failed":
            raise BenchError(f"the environment failed:\n{record['log'][-3000:]}")
        if time.monotonic() > deadline:
            raise BenchError(f"the first job not done after {timeout} s:\n{inst.log_tail()}")
        time.sleep(0.25)


def epoch(value: str) -> float:
    """A server timestamp as seconds since the epoch, comparable with a script's time.time()
    (a timestamp without a zone is UTC)."""
    moment = parse_time(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def jobs_of(inst: Installation, workflow: str) -> dict[str, dict[str, Any]]:
    (run,) = inst.client.get(f"/api/workflows/{workflow}/status")["runs"]
    return {
        task: inst.job(cell["serial"]) for task, cell in run["jobs"].items() if task != "Source"
    }


# -- 1. the first job: making the environment -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class First:
    total: float  # created_at -> finished_at
    claim: float  # created_at -> started_at
    make: float  # the install log's "ready in"
    after_ready: float  # claim -> script's first line, less the making
    script: float  # the script's first line -> last line (first imports after the install)
    report: float  # last line -> finished_at
    log_bytes: int
    log_lines: int
    server_log_chars: int
    uv_lines: list[str]
    env_files: int
    env_bytes: int
    env_folder: Path


def measure_first(inst: Installation) -> First:
    inst.client.post(
        f"/api/workflows/{FIRST}/runs",
        {"task": "Source", "outputs": {"value": 0}, "name": "first"},
    )
    wait_first(inst)
    job = jobs_of(inst, FIRST)["First"]
    record = environment_record(inst)
    if record is None or record["state"] != "Ready":
        raise BenchError(f"the environment is not Ready: {record}")
    root = inst.data_dir / "workers" / WORKER_NAME / "environments"
    folder = root / record["key"]
    if job["outputs"]["prefix"] != str(folder):
        raise BenchError(f"the first job ran in {job['outputs']['prefix']}, not {folder}")
    text = (root / f"{record['key']}.log").read_text()
    ready = re.search(r"^ready in ([0-9.]+) s$", text, re.MULTILINE)
    created, started, finished = (
        epoch(job[k]) for k in ("created_at", "started_at", "finished_at")
    )
    top, end = job["outputs"]["top"], job["outputs"]["end"]
    make = float(ready.group(1)) if ready else float("nan")
    files = [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    return First(
        total=finished - created,
        claim=started - created,
        make=make,
        after_ready=top - started - make,
        script=end - top,
        report=finished - end,
        log_bytes=len(text.encode()),
        log_lines=text.count("\n"),
        server_log_chars=len(record["log"]),
        uv_lines=[
            line.strip()
            for line in text.splitlines()
            if re.match(r"\s*(Using|Resolved|Prepared|Installed|Downloaded|Audited|warning)", line)
        ],
        env_files=len(files),
        env_bytes=sum(p.stat().st_size for p in files),
        env_folder=folder,
    )


def describe_first(first: First) -> str:
    return (
        f"first job of the environment: {first.total:.1f} s from its creation to Done "
        f"(claimed after {ms(first.claim)}; making the environment {first.make:.1f} s by its "
        f"log; then to the script's first line {ms(first.after_ready)} (the environment's "
        f"fork server or Python starting); the script {ms(first.script)}; its end to Done "
        f"{ms(first.report)}); {load_average()}\n"
        f"          install log: {first.log_bytes:,} bytes, {first.log_lines} lines on the "
        f"worker, {first.server_log_chars:,} characters on the server; uv: "
        + "; ".join(first.uv_lines)
        + f"\n          environment: {first.env_files:,} files, "
        f"{first.env_bytes / 1e6:.0f} MB (hard links into uv's cache where it could)"
    )


# -- 2. later jobs ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Medians over the counted jobs of one variant, in seconds."""

    done: float  # claimed (started_at) -> Done (finished_at)
    created_done: float  # created_at -> finished_at
    start: float  # claimed -> the script's first line
    script: float  # the script's first -> last line
    imports: float  # of which its imports (measured inside it)
    report: float  # the script's last line -> Done
    jobs: int


def measure_chain(
    inst: Installation, rounds: int, poll: float, env_folder: Path
) -> dict[str, Timings]:
    inst.client.post(
        f"/api/workflows/{CHAIN}/runs",
        {"task": "Source", "outputs": {"value": 0}, "name": "chain"},
    )
    inst.wait_done(CHAIN, 1 + rounds * len(VARIANTS), poll)
    jobs = jobs_of(inst, CHAIN)
    result = {}
    for variant in VARIANTS:
        counted = [jobs[f"{variant.task}{r}"] for r in range(1, rounds)]  # round 0: warm-up
        expected = str(env_folder) if variant.environment else sys.prefix
        wrong = {j["outputs"]["prefix"] for j in counted} - {expected}
        if wrong:
            raise BenchError(f"{variant.task_type} ran in {wrong}, not {expected}")
        rows = []
        for job in counted:
            created, started, finished = (
                epoch(job[k]) for k in ("created_at", "started_at", "finished_at")
            )
            out = job["outputs"]
            rows.append(
                (
                    finished - started,
                    finished - created,
                    out["top"] - started,
                    out["end"] - out["top"],
                    out["imports"],
                    finished - out["end"],
                )
            )
        done, created_done, start, script, imports, report = (
            median(list(column)) for column in zip(*rows, strict=True)
        )
        result[variant.task] = Timings(
            done=done,
            created_done=created_done,
            start=start,
            script=script,
            imports=imports,
            report=report,
            jobs=len(rows),
        )
    return result


def describe_chain(timings: dict[str, Timings]) -> str:
    base = timings[BASELINE.task].done
    lines = []
    for variant in VARIANTS:
        t = timings[variant.task]
        lines.append(
            f"  {variant.label:<40} claimed -> Done {ms(t.done):>9} ({t.done / base:4.2f} x); "
            f"to the script {ms(t.start)}, script {ms(t.script)} (imports {ms(t.imports)}), "
            f"its end to Done {ms(t.report)}; created -> Done {ms(t.created_done)}"
        )
    return "\n".join(lines)


def bytecode(folder: Path) -> str:
    """How much of the environment's Python code has been compiled (.pyc files)."""
    sources = sum(1 for _ in folder.rglob("*.py"))
    compiled = sum(1 for _ in folder.rglob("*.pyc"))
    return f"environment after the jobs: {sources:,} .py files, {compiled:,} .pyc files"


def forkserver_rss(inst: Installation) -> list[tuple[str, int]]:
    """(Python, resident bytes) of the worker's fork servers."""
    found = []
    worker = inst.processes[inst.roles.index("worker")].pid
    for pid in _descendants(worker, _children_by_parent()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if len(argv) > 2 and b"serve_fds" in argv[2]:
            rss = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
            found.append((argv[0].decode(), int(rss.group(1)) * 1024 if rss else 0))
    return found


# -- 3. in the environment's Python: imports, and a fork server that preloaded them -----------

WHAT_IF = """\
import gc, importlib, json, os, sys, time
from runyard.worker.forking import OPTIONAL_PRELOAD, PRELOAD
preload, child, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in (*PRELOAD, *OPTIONAL_PRELOAD):
    importlib.import_module(name)
exec(preload)
gc.collect()
gc.freeze()
samples = []
for _ in range(n + 1):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        exec(child)
        os._exit(0)
    os.waitpid(pid, 0)
    samples.append(time.perf_counter() - start)
rss = [line for line in open("/proc/self/status") if line.startswith("VmRSS:")][0]
print(json.dumps({"median": sorted(samples[1:])[n // 2], "rss": int(rss.split()[1]) * 1024}))
"""

IMPORTS = """\
import json, sys, time
times = []
for statement in sys.argv[1:]:
    start = time.perf_counter()
    exec(statement)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""
TIMED_IMPORTS = (
    "from runyard import task",
    "import numpy",
    "import skimage.filters",
    SKIMAGE_IMPORT,
)


def measure_python(env_python: str, forks: int, env: dict[str, str]) -> str:
    """Interpreter start, imports in a new process, and forks from a preloaded process, in
    the environment's Python (and the worker's, where it can), with the worker's variables."""

    def run(*argv: str) -> str:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"{argv[:2]} failed:\n{done.stderr}")
        return done.stdout

    def started(python: str) -> float:
        samples = []
        for _ in range(11):
            begin = time.perf_counter()
            run(python, "-c", "pass")
            samples.append(time.perf_counter() - begin)
        return median(samples[1:])

    def imports(python: str, statements: tuple[str, ...]) -> list[float]:
        found = [json.loads(run(python, "-c", IMPORTS, *statements)) for _ in range(7)]
        return [median(list(column)) for column in zip(*found, strict=True)]

    versions = run(
        env_python,
        "-c",
        "import numpy, skimage; print(numpy.__version__, skimage.__version__, numpy.__file__)",
    ).split()
    path = run(env_python, "-c", "import sys; print(sys.path[1:])").strip()
    worker_start, env_start = started(sys.executable), started(env_python)
    worker_task, worker_numpy = imports(sys.executable, TIMED_IMPORTS[:2])
    task_s, numpy_s, lazy_s, filters_s = imports(env_python, TIMED_IMPORTS)
    cases = {
        "nothing preloaded beyond Runyard's, the child imports nothing": ("", ""),
        "nothing preloaded beyond Runyard's, the child imports skimage.filters": (
            "",
            SKIMAGE_IMPORT,
        ),
        "skimage.filters preloaded, the child imports it (nothing to do)": (
            SKIMAGE_IMPORT,
            SKIMAGE_IMPORT,
        ),
    }
    lines = [
        f"in the environment: numpy {versions[0]} ({versions[2]}), scikit-image {versions[1]}; "
        f"{load_average()}",
        f"  sys.path of the environment's Python: {path}",
        f"  python -c pass: worker's Python {ms(worker_start)}, environment's {ms(env_start)} "
        "(its .pth adds the worker's site-packages)",
        f"  imports in a new process (median of 7): worker's Python: runyard.task "
        f"{ms(worker_task)}, numpy {ms(worker_numpy)}; environment's: runyard.task "
        f"{ms(task_s)}, numpy {ms(numpy_s)}, then import skimage.filters {ms(lazy_s)} "
        f"(lazy: loads little), then {SKIMAGE_IMPORT} {ms(filters_s)}",
        f"  fork -> child runs -> reaped, from a process that preloaded what the fork server "
        f"does (median of {forks}):",
    ]
    for label, (preload, child) in cases.items():
        found = json.loads(run(env_python, "-c", WHAT_IF, preload, child, str(forks)))
        lines.append(
            f"    {label:<70} {ms(found['median']):>9}; parent RSS {found['rss'] / 1e6:.0f} MB"
        )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def uv_cache_state(uv_cache: Path | None) -> str:
    """Whether uv's cache holds a scikit-image wheel already (where uv 0.x keeps them)."""
    if uv_cache is None:
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
        if uv is None:
            return "uv not found"
        uv_cache = Path(
            subprocess.run([uv, "cache", "dir"], capture_output=True, text=True).stdout.strip()
        )
    cached = sorted(uv_cache.glob("wheels-v*/pypi/scikit-image")) + sorted(
        uv_cache.glob("archive-v*/*/skimage")
    )
    return f"uv cache {uv_cache}: " + ("warm (scikit-image cached)" if cached else "cold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per task type (after one)")
    parser.add_argument("--modes", default="fast,plain", help="fast, plain or both, in order")
    parser.add_argument("--poll", type=float, default=0.1, help="completion poll (seconds)")
    parser.add_argument("--forks", type=int, default=21, help="forks per what-if case")
    parser.add_argument(
        "--write-bytecode",
        action="store_true",
        help="start the worker without PYTHONDONTWRITEBYTECODE (if this shell sets it)",
    )
    parser.add_argument(
        "--cold-uv-cache",
        action="store_true",
        help="give the worker an empty uv cache of its own (everything from PyPI)",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"fast", "plain"}:
        parser.error("--modes takes fast, plain or fast,plain")
    rounds = args.jobs + 1
    with tempfile.TemporaryDirectory(prefix="runyard-bench-packages-") as tmp:
        folders = write_packages(Path(tmp) / "packages", rounds)
        uv_cache = Path(tmp) / "uv-cache" if args.cold_uv_cache else None
        print(
            f"deps: dependency package {DEPENDENCY!r} ({INSTALL}); then {args.jobs} counted jobs "
            f"(after one warm-up) of each of {len(VARIANTS)} task types, interleaved in a line"
        )
        print(
            describe_system(False, 1, args.poll).replace(
                "--max-jobs 1", "--max-jobs 1 --install-dependencies"
            )
        )
        env = worker_environment(uv_cache=uv_cache, write_bytecode=args.write_bytecode)
        print(
            "PYTHONDONTWRITEBYTECODE in the worker's environment: "
            + ("set" if env.get("PYTHONDONTWRITEBYTECODE") else "not set")
        )
        results: dict[str, dict[str, Timings]] = {}
        for index, mode in enumerate(modes):
            print(f"\n--{mode}-start: {uv_cache_state(uv_cache)}; {load_average()}", flush=True)
            with installing_worker(folders, fast=mode == "fast", env=env) as inst:
                first = measure_first(inst)
                print(describe_first(first), flush=True)
                timings = measure_chain(inst, rounds, args.poll, first.env_folder)
                results[mode] = timings
                print(f"later jobs, medians of {args.jobs} each; {load_average()}")
                print(describe_chain(timings), flush=True)
                for python, rss in forkserver_rss(inst):
                    print(f"  fork server of {python}: resident {rss / 1e6:.0f} MB")
                print(f"  {bytecode(first.env_folder)}")
                if index == 0:
                    python = str(first.env_folder / "bin" / "python")
                    print(measure_python(python, args.forks, env))
    summarize(results)


def summarize(results: dict[str, dict[str, Timings]]) -> None:
    print("\nsummary: claimed -> Done, median (ratio to Bench.Numpy in the worker's Python)")
    for mode, timings in results.items():
        base = timings[BASELINE.task].done
        parts = [
            f"{v.task} {ms(timings[v.task].done)} ({timings[v.task].done / base:.2f} x)"
            for v in VARIANTS
        ]
        print(f"  --{mode}-start: " + ", ".join(parts))
        skimage, numpy_env = timings["EnvSkimage"], timings["EnvNumpy"]
        print(
            f"    skimage.filters' import: {ms(skimage.imports - numpy_env.imports)} of "
            f"EnvSkimage's {ms(skimage.done)} "
            f"({(skimage.imports - numpy_env.imports) / skimage.done:.0%})"
        )
    if "fast" in results and "plain" in results:
        parts = [
            f"{v.task} {results['plain'][v.task].done / results['fast'][v.task].done:.1f} x"
            for v in VARIANTS
        ]
        print("  plain-start / fast-start: " + ", ".join(parts))


if __name__ == "__main__":
    main()
