"""Deep pages of the runs table from landmarks (every N-th run's key), SQLite and
PostgreSQL: every page equals the page walked from the start, in both orders and
directions, with obsolete runs left out, alone or included, and after the runs change."""

from __future__ import annotations

from typing import Any

import pytest

from runyard.operations import Runyard
from runyard.operations import views as view_operations
from runyard.store import views as view_rows
from tests.integration.test_engine import worker_id

NAMES = ["m", "B", "a", "z", "k", "c", "x", "b", "q", "e", "n", "d", "y", "f", "p", "g", "h"]


def walked(ry: Runyard, which: view_rows.RunFilter, **page: Any) -> list[int]:
    """The page's run ids walked from the first run, without landmarks."""
    workflow, _ = ry.workflows.get("Linear")
    with ry.store.read() as conn:
        return view_rows.page_run_ids(conn, workflow.id, which, **page)


def listed(ry: Runyard, **page: Any) -> list[int]:
    return [r["id"] for r in ry.views.runs_page("Linear", **page)["runs"]]


EVERY_ORDER = (("sort_order", False), ("sort_order", True), ("name", False), ("name", True))


def same_pages(
    ry: Runyard,
    states: tuple[str | None, ...] = (None,),
    obsoletes: tuple[str, ...] = ("exclude", "only", "include"),
    orders: tuple[tuple[str, bool], ...] = EVERY_ORDER,
) -> int:
    """Compare every page of 4 runs, without a state filter or with each of ``states``;
    how many pages were compared."""
    pages = 0
    for state in states:
        for obsolete in obsoletes:
            which = view_rows.RunFilter(state=state, obsolete=obsolete)
            for order, descending in orders:
                for offset in range(0, len(NAMES) + 2):
                    page = {"offset": offset, "limit": 4, "order": order, "descending": descending}
                    expected = walked(ry, which, **page)
                    found = listed(ry, obsolete=obsolete, state=state, **page)
                    assert found == expected, (which, page)
                    pages += 1
    return pages


@pytest.fixture
def every_third(monkeypatch: pytest.MonkeyPatch) -> None:
    """A landmark every 3 runs, made again at once when the runs change."""
    monkeypatch.setattr(view_operations, "LANDMARK_EVERY", 3)
    monkeypatch.setattr(view_operations, "LANDMARK_SECONDS", 0.0)


def test_deep_pages_from_landmarks_are_the_pages_walked_from_the_start(
    linear: Runyard, every_third: None
) -> None:
    ry = linear
    made = [ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name=n) for n in NAMES]
    for job in made[1::5]:
        ry.runs.set_obsolete(job.run_id, True)
    assert same_pages(ry) > 0
    assert ry.views._marks, "no page was read from landmarks"

    # The runs change: renamed, obsoleted, new; the landmarks are made again.
    ry.runs.rename(made[0].run_id, "0 first")
    ry.runs.set_obsolete(made[2].run_id, True)
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="j")
    same_pages(ry)


def test_deep_pages_filtered_by_state_follow_the_jobs_changing_state(
    linear: Runyard, every_third: None
) -> None:
    ry = linear
    made = [ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name=n) for n in NAMES]
    ry.runs.set_obsolete(made[4].run_id, True)
    states = ("Done", "Queued", "Running")
    # Both directions, both orders, live runs alone and with the obsolete ones.
    shapes: dict[str, Any] = {
        "obsoletes": ("exclude", "include"),
        "orders": (("sort_order", False), ("name", True)),
    }
    assert same_pages(ry, states, **shapes) > 0
    assert any(key[-1] == "Done" for key in ry.views._marks), "no landmarks of a state"

    # Only jobs change (no run does): some of the Queued Double jobs run, some end Done.
    wid = worker_id(ry)
    claimed = ry.leases.claim(wid, [], 9)
    for job, lease in claimed[::2]:
        ry.leases.complete(job.serial, lease.lease_id, {"value": 2})
    same_pages(ry, states, **shapes)
    # And back: a Done job restarted (a new one Queued beside the Obsolete one).
    ry.runs.restart_new_job(claimed[0][0].serial)
    same_pages(ry, ("Queued", "Obsolete", "Done"), **shapes)
