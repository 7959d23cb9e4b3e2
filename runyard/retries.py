"""When and how long a client tries a call again: the retry policy of task scripts' calls.

A call is tried again when the server could not be reached (the connection refused, cut off
or timed out) or answered 502, 503 or 504 (a proxy without its server, a server without its
database, a gateway timeout), for at most ``seconds`` in all, waiting a little longer each time
(exponential backoff, with jitter so that many scripts do not come back at the same instant).
Never on another answer: a 4xx is the caller's mistake and stays one, and a 507 (no storage
space left) rarely ends by itself within a job's wait. A call that changes something is tried
again only when that is safe: it never reached the server, or it is idempotent (``GET``,
``PUT``, ``DELETE``, and the ``POST`` calls that the task library marks so: spawns carry their
spawn keys, a run creation its ``Idempotency-Key``). Pure: the client applies the decisions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from runyard.errors import ConfigError

DEFAULT_SECONDS = 120.0
VARIABLE = "RUNYARD_RETRY_SECONDS"
TRANSIENT_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _ignore(message: str) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Try again for at most ``seconds`` in all (0: never), waiting ``first_delay`` seconds,
    then twice as long each time up to ``max_delay`` (each wait between half and all of
    that). ``notify`` is told once when an outage starts and once when it ends;
    ``on_give_up`` once when the call is given up."""

    seconds: float = DEFAULT_SECONDS
    first_delay: float = 0.25
    max_delay: float = 8.0
    notify: Callable[[str], None] = _ignore
    on_give_up: Callable[[str], None] = _ignore

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The wait before try ``attempt + 1`` (``attempt`` 0: the first call failed)."""
        ceiling = min(self.max_delay, self.first_delay * 2 ** min(attempt, 30))
        return float(ceiling / 2 + draw() * ceiling / 2)

    def may_wait(self, elapsed: float, delay: float) -> bool:
        """Whether waiting ``delay`` more seconds stays within ``seconds`` in all."""
        return elapsed + delay <= self.seconds


def transient(status: int) -> bool:
    """Whether an answer with this status may go away by itself (worth trying again)."""
    return status in TRANSIENT_STATUSES


def safe_to_repeat(method: str, idempotent: bool | None) -> bool:
    """Whether a call that may have reached the server can be sent again: ``idempotent``
    if the caller said, else by its method."""
    return idempotent if idempotent is not None else method.upper() in SAFE_METHODS


def retry_seconds(environ: Mapping[str, str]) -> float:
    """``RUNYARD_RETRY_SECONDS`` from a job's environment (default 120; 0: no retries)."""
    raw = environ.get(VARIABLE, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(
            f"{VARIABLE}={raw!r} is not a number of seconds (0 or more)", key=VARIABLE
        )
    return seconds
