"""The retry policy's pure decisions: which answers are worth another try, which calls may be
sent twice, the waits, and ``RUNYARD_RETRY_SECONDS``."""

from __future__ import annotations

import pytest

from runyard.errors import ConfigError
from runyard.retries import RetryPolicy, retry_seconds, safe_to_repeat, transient


def test_only_502_503_504_are_worth_another_try() -> None:
    assert [s for s in (400, 401, 403, 404, 409, 422, 500, 502, 503, 504, 507) if transient(s)] == [
        502,
        503,
        504,
    ]


def test_a_post_is_repeated_only_when_marked_idempotent() -> None:
    assert all(safe_to_repeat(m, None) for m in ("GET", "put", "DELETE", "HEAD"))
    assert not safe_to_repeat("POST", None)
    assert safe_to_repeat("POST", True)
    assert not safe_to_repeat("GET", False)


def test_the_waits_double_up_to_the_ceiling_with_jitter_between_half_and_all() -> None:
    policy = RetryPolicy(first_delay=0.25, max_delay=8.0)
    lowest = [policy.delay(n, draw=lambda: 0.0) for n in range(8)]
    highest = [policy.delay(n, draw=lambda: 1.0) for n in range(8)]
    assert highest == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert lowest == [h / 2 for h in highest]
    assert policy.delay(10_000, draw=lambda: 1.0) == 8.0


def test_waiting_stops_at_the_policys_time() -> None:
    policy = RetryPolicy(seconds=10.0)
    assert policy.may_wait(elapsed=6.0, delay=4.0)
    assert not policy.may_wait(elapsed=6.5, delay=4.0)


def test_retry_seconds_comes_from_the_variable_and_a_bad_value_names_it() -> None:
    assert retry_seconds({}) == 120.0
    assert retry_seconds({"RUNYARD_RETRY_SECONDS": "0"}) == 0.0
    assert retry_seconds({"RUNYARD_RETRY_SECONDS": " 2.5 "}) == 2.5
    for bad in ("soon", "-1", "inf", "nan"):
        with pytest.raises(ConfigError, match="RUNYARD_RETRY_SECONDS") as refused:
            retry_seconds({"RUNYARD_RETRY_SECONDS": bad})
        assert refused.value.details == {"key": "RUNYARD_RETRY_SECONDS"}
