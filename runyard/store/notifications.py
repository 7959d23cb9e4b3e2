"""PostgreSQL's ``LISTEN``/``NOTIFY``: how the server processes sharing one database tell each
other that something changed (jobs may have become claimable, a runs table changed).

Each server process has one ``Channel``: a thread on its own connection that listens, and a
thread on another that sends. ``send()`` never waits for the database: it marks a
notification as due, and the sender sends one ``NOTIFY`` for every ``send()`` made since its
last one (coalesced). Notifications are sent right after the change's commit (the callers
notify after their transaction), not inside it: the commit of a transaction that notified
takes a lock that serializes every such commit in the whole database, and several callers
notify after a transaction of their own choosing. A process that dies between its commit and
its ``NOTIFY`` loses that wake-up; the waiters look at the database every so often anyway.

The payload is the sending process's ``origin`` (16 hex characters): a process skips its
own notifications, whose waiters it has woken already. ``ORIGIN:forget`` (``send_forget``)
says that tokens were revoked: the other processes look every token up again, rather than
trusting what they looked up a moment ago. When the listening connection is lost
(the database restarted), the channel connects again, and tells its listener once it listens
again: what happened meanwhile was not heard.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger("runyard.notifications")

CHANNEL = "runyard_changed"
NEWS, FORGET = "news", "forget"  # what another process said: something changed; revocations
# How long the listener waits for a notification before it looks whether it should stop.
LISTEN_SLICE_SECONDS = 0.25
# Waits between attempts to reach the database again: from the first to the last, doubling.
RETRY_SECONDS = (0.25, 5.0)

Connect = Callable[[], "psycopg.Connection[Any]"]


class Channel:
    """Notifications between the server processes of one PostgreSQL database."""

    def __init__(self, connect: Connect, *, channel: str = CHANNEL) -> None:
        self._connect = connect
        self.channel = channel
        self.origin = secrets.token_hex(8)
        # This process's own channel: ``stop`` ends the listener's wait through it at once.
        self._private = f"{channel}_{self.origin}"
        self._wanted = False  # a send() not sent yet
        self._forget_wanted = False  # a send_forget() not sent yet
        self._due = threading.Event()  # wakes the sender: something wanted, or stopping
        self._stopping = threading.Event()
        self.listening = threading.Event()  # set while the listener listens
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.sent = 0  # NOTIFY statements sent

    def start(
        self, on_news: Callable[[], None], on_forget: Callable[[], None] = lambda: None
    ) -> None:
        """Listen (calling ``on_news`` for other processes' notifications, once per batch
        received together, and ``on_forget`` for their ``send_forget``, or when notifications
        may have been missed) and send, each in a thread of its own; they connect
        themselves, so this never waits for the database."""
        with self._lock:
            if self._threads:
                return
            self._stopping.clear()
            self._threads = [
                threading.Thread(
                    target=self._listen,
                    args=(on_news, on_forget),
                    name="runyard-listen",
                    daemon=True,
                ),
                threading.Thread(target=self._send, name="runyard-notify", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def send(self) -> None:
        """A notification is due (sent soon, with any others due by then)."""
        self._wanted = True
        self._due.set()

    def send_forget(self) -> None:
        """Tokens were revoked (committed): the other processes forget what they cached."""
        self._forget_wanted = True
        self._due.set()

    def stop(self) -> None:
        """Stop both threads and close their connections (a notification still due is sent
        first, if the database answers)."""
        with self._lock:
            threads, self._threads = self._threads, []
        self._stopping.set()
        self._due.set()
        for thread in threads:
            thread.join(timeout=10)

    # -- the threads ------------------------------------------------------------------------

    def _send(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        outage = _Outage("sending notifications")
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._wanted or self._forget_wanted:
                    payload = self.origin + (":forget" if self._forget_wanted else "")
                    # A send() from now on sets _due again.
                    self._wanted = self._forget_wanted = False
                    try:
                        conn = self._notify(conn, payload)
                        outage.over()
                    except psycopg.Error as exc:
                        # Dropped: what it announced can hardly have committed either, and
                        # waiters look at the database every so often anyway.
                        outage.begin(exc)
                        conn = None
                        self._stopping.wait(outage.pause())
                if self._stopping.is_set():
                    conn = self._end_listening(conn, outage)
                    return
        finally:
            _close(conn)

    def _end_listening(
        self, conn: psycopg.Connection[Any] | None, outage: _Outage
    ) -> psycopg.Connection[Any] | None:
        """Wake the listener, stopping, from its wait: best effort (it sees the stop at the
        end of its slice anyway), not while the database is away. The connection used."""
        if outage.failures:
            return conn
        try:
            if conn is None:
                conn = self._connect()
            conn.execute("SELECT pg_notify(%s, '')", (self._private,))
        except psycopg.Error:
            pass
        return conn

    def _notify(
        self, conn: psycopg.Connection[Any] | None, payload: str
    ) -> psycopg.Connection[Any]:
        """Send one NOTIFY, on ``conn`` or a new connection (also when ``conn`` broke since
        it was last used: the database restarted); the connection to use next time."""
        if conn is not None:
            try:
                return self._notify_on(conn, payload)
            except psycopg.Error:
                _close(conn)
        conn = self._connect()
        try:
            return self._notify_on(conn, payload)
        except psycopg.Error:
            _close(conn)
            raise

    def _notify_on(self, conn: psycopg.Connection[Any], payload: str) -> psycopg.Connection[Any]:
        conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        self.sent += 1
        return conn

    def _listen(self, on_news: Callable[[], None], on_forget: Callable[[], None]) -> None:
        conn: psycopg.Connection[Any] | None = None
        outage = _Outage("listening for notifications")
        deaf = False  # lost the connection: notifications were missed
        try:
            while not self._stopping.is_set():
                try:
                    if conn is None:
                        conn = self._connect()
                        conn.execute(f"LISTEN {self.channel}")
                        conn.execute(f"LISTEN {self._private}")
                        self.listening.set()
                        outage.over()
                        if deaf:
                            deaf = False
                            on_forget()
                            on_news()
                    heard = self._hear(conn)
                    if FORGET in heard:
                        on_forget()
                    if heard:
                        on_news()
                except psycopg.Error as exc:
                    self.listening.clear()
                    outage.begin(exc)
                    _close(conn)
                    conn, deaf = None, True
                    self._stopping.wait(outage.pause())
        finally:
            self.listening.clear()
            _close(conn)

    def _heard(self, conn: psycopg.Connection[Any]) -> bool:
        """Wait (a slice) for notifications; whether another process sent one."""
        return bool(self._hear(conn))

    def _hear(self, conn: psycopg.Connection[Any]) -> set[str]:
        """Wait (a slice) for notifications; what other processes said: ``NEWS``, and
        ``FORGET`` too if one revoked tokens (empty: nothing). Whatever arrived together with
        the first is taken too: one wake-up for all of them."""
        heard = list(conn.notifies(timeout=LISTEN_SLICE_SECONDS, stop_after=1))
        if heard:
            heard += conn.notifies(timeout=0.0)
        said: set[str] = set()
        for n in heard:
            origin, _, what = n.payload.partition(":")
            if n.channel == self.channel and origin != self.origin:
                said |= {NEWS, FORGET} if what == "forget" else {NEWS}
        return said


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error:
            pass


class _Outage:
    """Logs a lost database once (and when it is back), and paces the attempts."""

    def __init__(self, doing: str) -> None:
        self.doing = doing
        self.failures = 0
        self.since = 0.0

    def begin(self, exc: Exception) -> None:
        if self.failures == 0:
            self.since = time.monotonic()
            said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning("%s: the database is unavailable (%s); trying again", self.doing, said)
        self.failures += 1

    def over(self) -> None:
        if self.failures:
            log.warning("%s again, after %.1f s", self.doing, time.monotonic() - self.since)
        self.failures = 0

    def pause(self) -> float:
        first, last = RETRY_SECONDS
        return float(min(last, first * 2 ** max(0, self.failures - 1)))
