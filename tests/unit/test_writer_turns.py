"""SQLite's write transactions of one process take turns in the order they asked
(``runyard.store.WriterTurns``), instead of SQLite's busy handler letting a newcomer in while
an earlier writer sleeps; a thread already writing does not wait for itself."""

from __future__ import annotations

import threading
import time

from runyard.store import WriterTurns


def asked(turns: WriterTurns, count: int) -> bool:
    """Whether ``count`` tickets have been handed out (threads waiting or served)."""
    return turns._next >= count


def wait_until(condition: object) -> None:
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within 10 s"
        time.sleep(0.001)


def test_writers_are_served_in_the_order_they_asked() -> None:
    turns = WriterTurns()
    served: list[int] = []
    threads = []
    with turns.turn():  # the first writer holds the lock while the others line up
        for number in range(8):
            thread = threading.Thread(target=lambda n=number: _write(turns, served, n))
            thread.start()
            threads.append(thread)
            wait_until(lambda n=number: asked(turns, n + 2))  # this one's ticket is taken
    for thread in threads:
        thread.join()
    assert served == list(range(8))


def _write(turns: WriterTurns, served: list[int], number: int) -> None:
    with turns.turn():
        served.append(number)


def test_a_thread_already_writing_takes_another_turn_at_once_and_frees_it_at_the_end() -> None:
    turns = WriterTurns()
    with turns.turn(), turns.turn():
        pass
    done = threading.Event()
    thread = threading.Thread(target=lambda: (_write(turns, [], 0), done.set()))
    thread.start()
    thread.join(10)
    assert done.is_set(), "the turn was not freed"
