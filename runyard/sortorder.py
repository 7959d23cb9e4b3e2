"""Sort orders: string keys that order runs, with room to place a run between two others.

A key is read as a base-36 fraction ``0.<digits>`` over ``0-9a-z``; keys never end in ``0``,
so byte order of the strings is the numeric order of the fractions. New keys appended after
the last one step the first ``WIDTH`` digits by ``STEP``, which keeps keys short and leaves
room between neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable

from runyard.errors import InvalidInput

DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
WIDTH = 10
STEP = BASE**3


def _check(key: str) -> None:
    if not key or key.endswith("0") or any(c not in DIGITS for c in key):
        raise InvalidInput(f"not a sort order key: {key!r}", sort_order=key)


def is_key(key: str) -> bool:
    """Whether ``key`` is a well-formed sort order key."""
    return bool(key) and len(key) <= 200 and not key.endswith("0") and all(c in DIGITS for c in key)


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, BASE)
        chars.append(DIGITS[digit])
    return "".join(reversed(chars)).rstrip("0")


def _decode(key: str, width: int) -> int:
    return int(key[:width].ljust(width, "0"), BASE)


def keys_after(last: str | None, n: int) -> list[str]:
    """``n`` increasing keys, all after ``last`` (or from the start if None)."""
    base = 0
    if last is not None:
        _check(last)
        base = _decode(last, WIDTH)
    if base + STEP * n >= BASE**WIDTH:
        raise InvalidInput("no sort order keys left after this one", sort_order=last)
    return [_encode(base + STEP * (i + 1), WIDTH) for i in range(n)]


def new_keys(existing: Iterable[str], n: int) -> list[str]:
    """``n`` increasing keys after every key in ``existing``."""
    return keys_after(max(existing, default=None), n)


def key_between(before: str | None, after: str | None) -> str:
    """A key strictly between two keys (None: open end)."""
    if after is None:
        return keys_after(before, 1)[0]
    _check(after)
    low = before or ""
    if before is not None:
        _check(before)
        if before >= after:
            raise InvalidInput(f"sort order {before!r} is not before {after!r}")
    width = max(len(low), len(after))
    while True:
        lo, hi = _decode(low, width), _decode(after, width)
        if hi - lo >= 2:
            return _encode((lo + hi) // 2, width)
        width += 1
