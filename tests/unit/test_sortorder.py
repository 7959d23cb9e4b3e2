"""Sort order keys: appended after the existing ones, and placed between two others."""

from __future__ import annotations

import random

import pytest

from runyard.errors import InvalidInput
from runyard.sortorder import key_between, keys_after, new_keys


def test_new_keys_come_after_every_existing_key_in_order() -> None:
    first = keys_after(None, 3)
    more = new_keys(first, 100)
    assert first + more == sorted(first + more)
    assert len(set(first + more)) == 103


def test_appending_a_hundred_thousand_keys_keeps_them_short() -> None:
    keys = keys_after(None, 100_000)
    assert keys == sorted(keys) and max(len(k) for k in keys) <= 10


def test_key_between_is_strictly_between_its_neighbours() -> None:
    a, b = keys_after(None, 2)
    middle = key_between(a, b)
    assert a < middle < b
    assert key_between(None, a) < a
    assert key_between(b, None) > b


def test_many_random_insertions_keep_keys_unique_and_ordered() -> None:
    rng = random.Random(1)
    keys = keys_after(None, 2)
    for _ in range(3000):
        i = rng.randrange(len(keys) - 1)
        keys.insert(i + 1, key_between(keys[i], keys[i + 1]))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@pytest.mark.parametrize("bad", ["", "abc0", "ABC", "a-b"])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="not a sort order key"):
        keys_after(bad, 1)


def test_key_between_refuses_reversed_neighbours() -> None:
    a, b = keys_after(None, 2)
    with pytest.raises(InvalidInput, match="is not before"):
        key_between(b, a)
