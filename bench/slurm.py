"""Benchmark slurm: N short jobs through ``runyard worker --executor slurm``, one Slurm job
per Runyard job against job arrays (``--slurm-array``).

    source scripts/slurm.sh && slurm_start     # a single-node cluster of this machine
    .venv/bin/python bench/slurm.py [--jobs 100] [--repeat 3] [--array 100]

Each repeat starts a fresh ``runyard server`` (SQLite, temporary data directory), makes
``--jobs`` runs of ``Source -> Step1`` (the step adds one: a second of Python at most), then
starts ``runyard worker --executor slurm --max-jobs JOBS --burst`` in each mode in turn (with
``--slurm-array ARRAY`` or without) and times the worker from its start until it exits, every
job Done. Printed: the median of each mode, their ratio (arrays / one job each) and the
``sbatch`` calls each made. On a real cluster the figures depend on its scheduler's settings
and its other users; on the single-node test cluster they show what the worker and slurmctld
spend per job. Nothing is asserted; see docs/performance.md ("Slurm").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import RUNYARD, BenchError, installation, load_average, median, write_packages

WORKFLOW = "SlurmBench"


def run_once(folders: list[Path], jobs: int, array: int) -> tuple[float, int]:
    """Seconds from the worker's start to its exit, and its sbatch calls."""
    with installation(up=False, worker=False) as inst:
        inst.import_packages(folders)
        for value in range(jobs):
            inst.new_run(WORKFLOW, value)
        inst.start_workflow(WORKFLOW)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
        env["RUNYARD_DATA_DIR"] = str(inst.data_dir)
        command = [*RUNYARD, "worker", "--executor", "slurm", "--max-jobs", str(jobs)]
        command += ["--burst", "--name", f"slurm-bench-{array}"]
        if array > 1:
            command += ["--slurm-array", str(array)]
        log = inst.data_dir / "slurm-worker.log"
        start = time.perf_counter()
        with open(log, "wb") as out:
            done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        text = log.read_text(errors="replace")
        counts = inst.job_counts(WORKFLOW)
        if done.returncode != 0 or counts.get("Done", 0) != 2 * jobs:
            raise BenchError(f"not every job Done ({counts}):\n{text[-3000:]}")
        calls = text.count(": Slurm job array ") if array > 1 else text.count(": Slurm job ")
    return seconds, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--array", type=int, default=100, help="--slurm-array of the array mode")
    args = parser.parse_args()
    try:
        answers = subprocess.run(["squeue"], capture_output=True).returncode == 0
    except OSError:
        answers = False
    if not answers:
        raise SystemExit("no Slurm cluster answers: source scripts/slurm.sh && slurm_start")
    with tempfile.TemporaryDirectory(prefix="runyard-bench-slurm-") as tmp:
        folders = write_packages(Path(tmp), WORKFLOW, 1)
        times: dict[int, list[float]] = {1: [], args.array: []}
        calls: dict[int, int] = {}
        for repeat in range(1, args.repeat + 1):
            for array in times:
                seconds, calls[array] = run_once(folders, args.jobs, array)
                times[array].append(seconds)
                mode = "one Slurm job per job" if array == 1 else f"arrays of {array}"
                print(
                    f"repeat {repeat}, {mode}: {seconds:.2f} s, {calls[array]} sbatch; "
                    f"{load_average()}",
                    flush=True,
                )
    single, arrays = median(times[1]), median(times[args.array])
    print(
        f"slurm-{args.jobs}: one Slurm job per job median {single:.2f} s ({calls[1]} sbatch), "
        f"arrays of {args.array} median {arrays:.2f} s ({calls[args.array]} sbatch); "
        f"ratio (arrays / one each) {arrays / single:.2f}"
    )


if __name__ == "__main__":
    main()
