"""Deep pages of the runs table from landmarks (every N-th run's key), SQLite and
PostgreSQL: every page equals the page walked from the start, in both orders and
directions, with obsolete runs left out, alone or included, and after the runs change."""

from __future__ import annotations

from typing import Any

import pytest

from runyard.operations import Runyard
from runyard.operations import views as view_operations
from runyard.store import views as view_rows

NAMES = ["m", "B", "a", "z", "k", "c", "x", "b", "q", "e", "n", "d", "y", "f", "p", "g", "h"]


def walked(ry: Runyard, which: view_rows.RunFilter, **page: Any) -> list[int]:
    """The page's run ids walked from the first run, without landmarks."""
    workflow, _ = ry.workflows.get("Linear")
    with ry.store.read() as conn:
        return view_rows.page_run_ids(conn, workflow.id, which, **page)


def listed(ry: Runyard, **page: Any) -> list[int]:
    return [r["id"] for r in ry.views.runs_page("Linear", **page)["runs"]]


def same_pages(ry: Runyard) -> int:
    """Compare every page of 4 runs; how many pages were compared."""
    pages = 0
    for obsolete in ("exclude", "only", "include"):
        which = view_rows.RunFilter(obsolete=obsolete)
        for order in ("sort_order", "name"):
            for descending in (False, True):
                for offset in range(0, len(NAMES) + 2):
                    page = {"offset": offset, "limit": 4, "order": order, "descending": descending}
                    expected = walked(ry, which, **page)
                    assert listed(ry, obsolete=obsolete, **page) == expected, (which, page)
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
