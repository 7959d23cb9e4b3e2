"""How a server process reads the notifications it hears (PostgreSQL's LISTEN/NOTIFY),
without a database: its own come back to it and are skipped; several heard together wake
its waiters once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from psycopg import Notify

from runyard.store.notifications import CHANNEL, Channel


@dataclass
class Heard:
    """A listening connection that has received ``batches`` (each: the payloads of one
    packet), handed out as psycopg's ``notifies`` does."""

    batches: list[list[str]]
    asked: list[tuple[float, int | None]] = field(default_factory=list)

    def notifies(self, *, timeout: float, stop_after: int | None = None) -> Iterator[Notify]:
        self.asked.append((timeout, stop_after))
        if self.batches:
            for payload in self.batches.pop(0):
                yield Notify(CHANNEL, payload, 1234)


def channel() -> Channel:
    def connect() -> Any:
        raise AssertionError("no database here")

    return Channel(connect)


def test_a_process_skips_its_own_notifications() -> None:
    ours = channel()
    assert not ours._heard(Heard([[ours.origin]]))  # type: ignore[arg-type]
    assert not ours._heard(Heard([[ours.origin], [ours.origin]]))  # type: ignore[arg-type]
    assert not ours._heard(Heard([]))  # type: ignore[arg-type]


def test_another_process_notification_is_news_even_beside_its_own() -> None:
    ours, theirs = channel(), channel()
    assert ours.origin != theirs.origin and len(ours.origin) == 16
    assert ours._heard(Heard([[theirs.origin]]))  # type: ignore[arg-type]
    assert ours._heard(Heard([[ours.origin], [theirs.origin]]))  # type: ignore[arg-type]
    assert ours._heard(Heard([[theirs.origin, ours.origin]]))  # type: ignore[arg-type]


def test_what_arrived_with_the_first_notification_is_taken_in_the_same_wake_up() -> None:
    """The first wait is a slice (then the listener looks whether to stop); what arrived
    meanwhile is taken without waiting."""
    conn = Heard([["a"], ["b"], ["c"]])
    assert channel()._heard(conn)  # type: ignore[arg-type]
    assert conn.asked == [(0.25, 1), (0.0, None)]
    assert conn.batches == [["c"]]  # left for the next wake-up
