"""Benchmark seed-spawn: the seed's conformance script, unmodified, in ``filename`` mode on
N file pairs, against Runyard's built-in search spawning the same runs.

    .venv/bin/python bench/seed_spawn.py [--pairs 100000] [--repeat 3]
        [--database-url postgresql://USER@HOST/ADMIN_DB]      # PostgreSQL instead of SQLite

Each repeat starts a fresh ``runyard server`` and ``runyard worker`` (on SQLite, or on a
new database made on the given PostgreSQL server and dropped afterwards), maps a User Data
folder of N pairs ``S000001_GREY.AIM`` + ``S000001_SEG.AIM`` (in folders of 1,000 pairs, a
few bytes each), and runs a workflow ``Folder -> Search`` twice on it: once with the
conformance script (``../shared/conformance/search_folder_files_by_suffix.py``, registered
as ``Conformance.SearchFolderFilesBySuffix``, suffixes ``_GREY.AIM|_SEG.AIM``, mode
``filename``, typename ``ForeignFile``), once with the built-in
``Lucid.Util.SearchFolderFilesBySuffix`` (the same inputs; it spawns through Runyard's own
batched API): the baseline, run in the same process on the same server. Each search makes N
runs of two jobs: the select job spawned Obsolete, the add job joining its run, then the
select job set Done, as the seed does.

The figure is the Search job's time on the server (from ``started_at`` to ``finished_at``:
listing the folders and spawning everything); the time from creating the run to the search
being Done is printed beside it. The median of the repeats, and the ratio of the conformance
script to the built-in search. Target: under 60 s for 100,000 pairs on both backends;
printed, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from _common import BenchError, Installation, installation, load_average, median

REPO = Path(__file__).resolve().parent.parent
SCRIPT = "search_folder_files_by_suffix.py"
CONFORMANCE = "Conformance.SearchFolderFilesBySuffix"
BUILTIN = "Lucid.Util.SearchFolderFilesBySuffix"
PAIRS_PER_FOLDER = 1000
FOLDER = {"type": "Folder", "source": "userdata", "virtualpath": "/Scans/"}


def conformance_script() -> Path:
    places = [
        os.environ.get("RUNYARD_CONFORMANCE_DIR", ""),
        str(REPO.parent / "shared" / "conformance"),
        "/work/shared/conformance",
    ]
    for place in places:
        if place and (Path(place) / SCRIPT).is_file():
            return Path(place) / SCRIPT
    raise BenchError(f"{SCRIPT} not found: set RUNYARD_CONFORMANCE_DIR to its folder")


def make_pairs(root: Path, pairs: int) -> None:
    for number in range(1, pairs + 1):
        folder = root / f"batch{(number - 1) // PAIRS_PER_FOLDER:04d}"
        if (number - 1) % PAIRS_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        for suffix in ("_GREY.AIM", "_SEG.AIM"):
            (folder / f"S{number:06d}{suffix}").write_bytes(b"scan")


def write_packages(root: Path) -> list[Path]:
    """The conformance task type (the fixture's metadata and interface, the script as it
    is) and two workflows ``Folder -> Search``, one per search task type."""
    package = root / "Conformance"
    shutil.copytree(
        REPO / "tests" / "fixtures" / "conformance" / "SearchFolderFilesBySuffix", package
    )
    shutil.copy(conformance_script(), package / "main.py")
    folders = [package]
    for name, task_type in (("SeedSpawn", CONFORMANCE), ("BuiltinSpawn", BUILTIN)):
        flow = root / name
        flow.mkdir()
        fixed = {"suffixes": "_GREY.AIM|_SEG.AIM", "mode": "filename", "typename": "ForeignFile"}
        inputs = [{"key": "folder", "source": {"mode": "output", "task": 0, "key": "folder"}}]
        inputs += [
            {"key": k, "source": {"mode": "fixed", "fixed_value": v}} for k, v in fixed.items()
        ]
        tasks = [
            {"name": "Folder", "task_type": {"name": "XF.Data.SelectFolder"}, "inputs": []},
            {"name": "Search", "task_type": {"name": task_type}, "inputs": inputs},
        ]
        meta = {"package_format": "XFP-WF1.0", "name": name, "version": "1.0.0.0",
                "summary": f"Benchmark: {task_type} in filename mode"}  # fmt: skip
        (flow / "metadata.json").write_text(json.dumps(meta))
        (flow / "tasks.json").write_text(json.dumps({"tasks": tasks}))
        folders.append(flow)
    return folders


@contextmanager
def database(admin_url: str | None, *, keep: bool = False) -> Iterator[str | None]:
    """A new PostgreSQL database on the server of ``admin_url``, dropped afterwards unless
    ``keep`` (None: SQLite, the installation's own file)."""
    if admin_url is None:
        yield None
        return
    import sqlalchemy as sa

    name = "runyard_bench_" + secrets.token_hex(4)
    engine = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    base, _, query = admin_url.partition("?")
    try:
        yield f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    finally:
        if not keep:
            with engine.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        engine.dispose()


def search(inst: Installation, workflow: str, pairs: int) -> tuple[float, float]:
    """Start the workflow's search on /Scans/ and wait for it; (seconds of the Search job on
    the server, seconds from creating the run to the search being Done)."""
    inst.start_workflow(workflow)
    start = time.perf_counter()
    inst.client.post(
        f"/api/workflows/{workflow}/runs",
        {"task": "Folder", "outputs": {"folder": FOLDER}, "name": "search"},
    )
    inst.wait_done(workflow, 2 + 2 * pairs, poll=0.5)
    total = time.perf_counter() - start
    counts = inst.job_counts(workflow)
    if counts.get("Done") != 2 + 2 * pairs:
        raise BenchError(f"{workflow}: expected {2 + 2 * pairs} Done jobs, found {counts}")
    job = _search_job(inst, workflow)
    started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds(), total


def _search_job(inst: Installation, workflow: str) -> dict[str, object]:
    page = inst.client.get(f"/api/workflows/{workflow}/runs", params={"limit": 1})
    for run in page["runs"]:
        job = run["jobs"].get("Search")
        if job is not None:
            return inst.job(int(job["serial"]))
    raise BenchError(f"{workflow}: no Search job found")


def one_repeat(pairs: int, admin_url: str | None) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp, database(admin_url) as url:
        scans = Path(tmp) / "scans"
        make_pairs(scans, pairs)
        with installation(up=False, database_url=url) as inst:
            inst.client.put("/api/userdata/mappings", {"root": "/Scans/", "folder": str(scans)})
            inst.import_packages(write_packages(Path(tmp) / "packages"))
            return {
                "conformance": search(inst, "SeedSpawn", pairs),
                "built-in": search(inst, "BuiltinSpawn", pairs),
            }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="file pairs (runs)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements (fresh servers)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server (any database on it): a new database is made there per "
        "repeat; default: SQLite",
    )
    args = parser.parse_args()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"seed-spawn: {args.pairs:,} file pairs, filename mode, {backend}, "
          f"{args.repeat} repeats; {os.cpu_count()} CPUs, {load_average()}")  # fmt: skip
    results = []
    for number in range(args.repeat):
        result = one_repeat(args.pairs, args.database_url)
        results.append(result)
        print(
            f"  repeat {number + 1}: "
            + "; ".join(
                f"{k} {job:.2f} s (run to Done {t:.2f} s)" for k, (job, t) in result.items()
            ),
            flush=True,
        )
    seed = median([r["conformance"][0] for r in results])
    builtin = median([r["built-in"][0] for r in results])
    print(f"conformance script (median): {seed:.2f} s, {args.pairs / seed:,.0f} runs/s; "
          f"target < 60 s for 100,000 pairs")  # fmt: skip
    print(f"built-in search (median, the baseline): {builtin:.2f} s; ratio {seed / builtin:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
