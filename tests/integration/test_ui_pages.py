"""A page of the runs table is the same whichever statement finds it, SQLite and PostgreSQL:
every filter (job state, name, obsolete), order and position gives the runs that one plain
query over all runs gives (the statements of before migration 0009: ``lower(name) LIKE``,
the runs of the jobs in a state, ``ORDER BY ... OFFSET``), whether the page walks the runs
in order or starts from the jobs in a state, and whether a name filter's runs are read whole
or counted apart. The study run (its reduce jobs) is never listed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from runyard.models import Entity
from runyard.operations import Runyard
from runyard.operations import views as view_ops
from runyard.packages import load_package
from runyard.store import views as view_rows
from runyard.store.schema import jobs, runs
from tests.conftest import WORKFLOWS, install_test_task_types
from tests.integration.test_engine import worker_id

# Mixed case, LIKE's wildcards, non-ASCII letters, equal names (ordered by sort order).
NAMES = [
    "Alpha", "alpha", "ALPHA-2", "b%c", "b_c", "bXc", "Ärger", "ärger", "größe", "same",
    "same", "same", "r1", "r10", "r2", "Zeta", "zeta", "x", "run 100%", "beta",
]  # fmt: skip
STATES = [None, "Done", "Queued", "Waiting", "Failed", "Obsolete"]
NEEDLES = [None, "alpha", "%", "_", "ä", "SAME", "/"]
ORDERS = [("sort_order", False), ("sort_order", True), ("name", True)]


@pytest.fixture
def study(ry: Runyard) -> Runyard:
    """Reduced (Source -> Double -> Table, a reduce) with runs in every state: Done and
    Queued Double jobs, source jobs Waiting for a user, a restarted job (an Obsolete one
    beside its new one), a Failed reduce job in the study run, and four obsolete runs (one
    with a Queued job, one Waiting)."""
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Reduced"))  # type: ignore[arg-type]
    ry.workflows.set_state("Reduced", "Started")
    entity = Entity(uuid="e-1", name="sample 1")
    for i, name in enumerate(NAMES[:12]):
        ry.jobs.new_run(
            "Reduced", "Source", outputs={"value": i}, name=name, entity=entity if i == 3 else None
        )
    wid = worker_id(ry)
    while claimed := ry.leases.claim(wid, [], 10):
        for job, lease in claimed:
            if "values" in job.inputs:
                ry.leases.fail(job.serial, lease.lease_id, "no table today")
            else:
                ry.leases.complete(job.serial, lease.lease_id, {"value": job.inputs["value"] * 2})
    for i, name in enumerate(NAMES[12:16]):
        ry.jobs.new_run("Reduced", "Source", outputs={"value": 100 + i}, name=name)
    for name in NAMES[16:]:
        ry.jobs.new_run("Reduced", "Source", name=name)
    ry.jobs.restart_new_job(ry.views.runs_page("Reduced")["runs"][1]["jobs"]["Double"]["serial"])
    ids = run_ids(ry)
    for i in (2, 5, 13, 17):
        ry.runs.set_obsolete(ids[i], True)
    return ry


def run_ids(ry: Runyard) -> list[int]:
    """The runs of Reduced (not its study run) in the order they were made."""
    with ry.store.read() as conn:
        query = select(runs.c.id).where(runs.c.study.is_(False)).order_by(runs.c.id)
        return [int(i) for i in conn.execute(query).scalars()]


def reference(
    ry: Runyard, state: str | None, needle: str | None, obsolete: str, order: str, desc: bool
) -> list[int]:
    """The runs that pass the filters, in order, by one plain query over all of them."""
    columns = view_rows.ORDERS[order]
    query = select(runs.c.id, runs.c.obsolete).where(runs.c.study.is_(False))
    if needle:
        query = query.where(runs.c.name.icontains(needle, autoescape=True))
    query = query.order_by(*(c.desc() if desc else c for c in columns))
    with ry.store.read() as conn:
        in_state = {
            int(r)
            for r in conn.execute(select(jobs.c.run_id).where(jobs.c.state == state)).scalars()
        }
        found = conn.execute(query).all()
    return [
        int(run_id)
        for run_id, is_obsolete in found
        if (obsolete == "include" or is_obsolete == (obsolete == "only"))
        and (state is None or run_id in in_state)
    ]


def page_ids(ry: Runyard, offset: int, limit: int, **query: Any) -> tuple[int, list[int]]:
    page = ry.views.runs_page("Reduced", offset=offset, limit=limit, **query)
    return page["total"], [r["id"] for r in page["runs"]]


@pytest.fixture(params=["as it comes", "from the jobs", "walking, counted apart"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each way of finding a page: as the plan chooses; always from the jobs in the state;
    always walking the runs in order, with a name filter's runs counted apart."""
    if request.param == "from the jobs":
        monkeypatch.setattr(view_rows, "start_from_jobs", lambda **_: True)
    elif request.param == "walking, counted apart":
        monkeypatch.setattr(view_rows, "start_from_jobs", lambda **_: False)
        monkeypatch.setattr(view_ops, "FEW_RUNS", 1)
    yield request.param


def test_every_page_is_the_one_a_plain_query_over_all_runs_gives(study: Runyard, plan: str) -> None:
    for obsolete in view_rows.OBSOLETE:
        for state in STATES:
            for needle in NEEDLES:
                for order, desc in ORDERS:
                    expected = reference(study, state, needle, obsolete, order, desc)
                    query = {"state": state, "run_name": needle, "order": order}
                    query |= {"descending": desc, "obsolete": obsolete}
                    assert page_ids(study, 0, 1000, **query) == (len(expected), expected), query
                    assert page_ids(study, 3, 4, **query) == (len(expected), expected[3:7])
                    assert page_ids(study, len(expected), 5, **query) == (len(expected), [])


def test_the_filters_find_what_they_should(study: Runyard) -> None:
    """The reference is no tautology: the fixture has runs of every kind."""

    def total(**query: Any) -> int:
        return page_ids(study, 0, 1000, **query)[0]

    assert total() == 16 and total(obsolete="only") == 4 and total(obsolete="include") == 20
    # Queued: the Double jobs of three runs and the restarted one (a fourth is obsolete).
    assert total(state="Queued") == 4 and total(state="Queued", obsolete="only") == 1
    assert total(state="Waiting") == 3 and total(state="Obsolete") == 1
    assert total(state="Failed") == 0  # the study run's reduce job is Failed: never listed
    assert total(run_name="alpha") == 2 and total(run_name="alpha", obsolete="include") == 3
    assert total(run_name="%") == 2 and total(run_name="_") == 1
    page = study.views.runs_page("Reduced", run_name="b%c", obsolete="include")
    [run] = page["runs"]
    assert run["entity"]["name"] == "sample 1" and run["obsolete"] is False
    assert set(run["jobs"]) == {"Source", "Double"} and page["reduce"]["Table"]["state"]


@pytest.mark.parametrize(
    ("offset", "limit", "total", "runs", "from_jobs"),
    [
        (0, 200, 100_000, 100_000, False),  # every run: the walk stops after 200
        (50_000, 200, 100_000, 100_000, False),  # the middle: half the walk of the other way
        (0, 200, 150, 100_000, True),  # fewer than a page: read them
        (5_000, 200, 10_000, 100_000, True),  # one run in ten, deep: 52,000 runs to walk
        (0, 200, 10_000, 100_000, False),  # one in ten at the top: 2,000 runs to walk
        (1_000, 200, 5_000, 100_000, True),  # one in twenty, after 1,000: 24,000 to walk
        (300, 200, 500, 10, False),  # an estimate below the total: taken as the total
    ],
)
def test_a_page_filtered_by_state_starts_from_the_jobs_when_walking_would_cost_more(
    offset: int, limit: int, total: int, runs: int, from_jobs: bool
) -> None:
    asked: list[bool] = []

    def runs_in_view() -> int:
        asked.append(True)
        return runs

    found = view_rows.start_from_jobs(
        offset=offset, limit=limit, total=total, runs_in_view=runs_in_view
    )
    assert found is from_jobs
    assert asked == ([] if total <= limit else [True])  # counted only when it matters


def test_on_postgresql_the_name_filter_can_be_answered_from_the_trigram_index(
    study: Runyard,
) -> None:
    if study.store.dialect != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's (SQLite has no such index)")
    with study.store.read() as conn:
        # Leave the planner bitmap scans only: a btree cannot answer '%text%', a trigram
        # index can, if the statement is one it serves (name ILIKE, not lower(name) LIKE).
        for scan in ("seqscan", "indexscan", "indexonlyscan"):
            conn.execute(text(f"SET LOCAL enable_{scan} = off"))
        where = view_rows._name_contains(conn, "lph%a_")
        query = select(runs.c.id).where(where).compile(conn)
        plan = conn.exec_driver_sql(f"EXPLAIN {query}", query.params).scalars()
        said = "\n".join(plan)
    assert "ix_runs_name_trgm" in said, said
