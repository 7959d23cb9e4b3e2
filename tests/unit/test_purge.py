"""The purge's pure decisions: which file ids a value names, which stored files go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from runyard.operations.purge import StoredFileRow, decide_files, file_ids

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=3)
QUIET_BEFORE = NOW - timedelta(days=1)


def stored(file_id: str, *, job: int | None = None, at: datetime = OLD) -> StoredFileRow:
    return StoredFileRow(id=file_id, size=10, job_serial=job, created_at=at)


def decide(rows: list[StoredFileRow], workflow_id: int | None = None, **sets: object) -> list[str]:
    args: dict[str, object] = {
        "needed": set(), "dropped": set(), "purged": {}, "uploaders": {},
    } | sets  # fmt: skip
    return [
        row.id
        for row in decide_files(
            rows,
            quiet_before=QUIET_BEFORE,
            workflow_id=workflow_id,
            **args,  # type: ignore[arg-type]
        )
    ]


def test_file_ids_are_found_at_any_depth_under_keys_ending_in_file_id() -> None:
    image = {"type": "Image", "source": "filestore", "file_id": "a", "raw_file_id": "b"}
    value = {"table": {"file_id": "c"}, "images": [image, {"nested": [{"file_id": "d"}]}],
             "count": 3, "name": "file_id"}  # fmt: skip
    assert sorted(file_ids(value)) == ["a", "b", "c", "d"]
    assert list(file_ids([1, "x", None])) == []


def test_a_needed_file_is_never_removed_whatever_else_holds() -> None:
    rows = [stored("a", job=1), stored("b")]
    gone = decide(rows, needed={"a", "b"}, dropped={"a", "b"}, purged={1: 1})
    assert gone == []


def test_files_of_purged_jobs_go_however_new() -> None:
    rows = [stored("named", at=NOW), stored("uploaded", job=7, at=NOW), stored("other", at=NOW)]
    assert decide(rows, dropped={"named"}, purged={7: 1}) == ["named", "uploaded"]


def test_an_unnamed_file_goes_after_the_grace_period_unless_its_job_may_still_use_it() -> None:
    rows = [
        stored("admin upload"),
        stored("admin upload, new", at=NOW),
        stored("job gone", job=1),
        stored("done without it", job=2),
        stored("running", job=3),
        stored("failed", job=4),
    ]
    uploaders = {2: ("Done", 1), 3: ("Running", 1), 4: ("Failed", 1)}
    assert decide(rows, uploaders=uploaders) == ["admin upload", "job gone", "done without it"]


def test_a_purge_of_one_workflow_takes_no_file_of_another_or_of_nobody() -> None:
    rows = [stored("admin upload"), stored("done in 1", job=2), stored("done in 5", job=3)]
    uploaders = {2: ("Done", 1), 3: ("Done", 5)}
    assert decide(rows, workflow_id=1, uploaders=uploaders) == ["done in 1"]
