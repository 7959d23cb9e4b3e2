"""The timeline of a workflow: its jobs as bars over time (made, claimed by a worker, script
started, ended) and its throughput, the jobs ended in each minute of the last hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from runyard.errors import InvalidInput
from runyard.operations.base import Operations
from runyard.store import timeline as timeline_rows

# At most this many bars in one answer (the newest; ``cut`` says that older ones were left).
MAX_BARS = 5000
THROUGHPUT_MINUTES = 60


class TimelineManager(Operations):
    def timeline(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_BARS,
    ) -> dict[str, Any]:
        """The workflow's jobs whose time meets ``since``..``until`` (either may be left
        open), the most recently made first, at most ``limit``; and the jobs ended in each
        minute of the last hour."""
        _check_window(since, until, limit)
        now = self.now()
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            rows = timeline_rows.timeline_jobs(
                conn, workflow.id, since=since, until=until, limit=limit + 1
            )
            first = now.replace(second=0, microsecond=0) - timedelta(minutes=THROUGHPUT_MINUTES - 1)
            ended = timeline_rows.ended_per_minute(conn, workflow.id, since=first, until=now)
        return {
            "workflow": workflow.name,
            "now": now.isoformat(),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "limit": limit,
            "cut": len(rows) > limit,
            "jobs": [_bar(row) for row in rows[:limit]],
            "throughput": _minutes(first, ended),
        }


def _check_window(since: datetime | None, until: datetime | None, limit: int) -> None:
    for key, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(
                f"{key}: {value.isoformat()} has no time zone; give one, e.g. "
                f"{value.isoformat()}Z for UTC",
                parameter=key,
            )
        try:
            value = value.astimezone(UTC) if value is not None else None
        except OverflowError:
            raise InvalidInput(f"{key}: {value} is out of range in UTC", parameter=key) from None
    if since is not None and until is not None and since > until:
        raise InvalidInput(
            f"since ({since.isoformat()}) is after until ({until.isoformat()}); swap them",
            parameter="since",
        )
    if not 1 <= limit <= MAX_BARS:
        raise InvalidInput(f"limit: {limit} is not from 1 to {MAX_BARS}", parameter="limit")


def _bar(row: dict[str, Any]) -> dict[str, Any]:
    """A job on the timeline: made (``created_at``; it waited for a worker from then),
    claimed by its worker, its script started, ended (null while it is not)."""
    return {
        "serial": row["serial"],
        "state": row["state"],
        "attempt": row["attempt"],
        "task": row["task"],
        "run_id": row["run_id"],
        "run": row["run"],
        "worker": row["worker"],
        "created_at": _iso(row["created_at"]),
        "claimed_at": _iso(row["started_at"]),
        "script_started_at": _iso(row["script_started_at"]),
        "ended_at": _iso(row["finished_at"]),
    }


def _minutes(first: datetime, ended: dict[datetime, tuple[int, int]]) -> list[dict[str, Any]]:
    minutes = [first + timedelta(minutes=i) for i in range(THROUGHPUT_MINUTES)]
    counts = [ended.get(m, (0, 0)) for m in minutes]
    return [
        {"minute": m.isoformat(), "ended": n, "failed": failed}
        for m, (n, failed) in zip(minutes, counts, strict=True)
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
