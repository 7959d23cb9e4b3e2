"""The length of a name in a virtual path: at most what file systems allow (255 bytes)."""

from __future__ import annotations

import pytest

from runyard.task.virtualpath import InvalidVirtualPath, check_name, check_path


def test_a_name_of_255_bytes_is_a_name() -> None:
    assert check_name("é" * 127 + "a") == "é" * 127 + "a"


@pytest.mark.parametrize("name", ["a" * 256, "é" * 128, "研" * 86])
def test_a_name_longer_than_255_bytes_in_utf8_is_refused(name: str) -> None:
    with pytest.raises(InvalidVirtualPath, match="longer than 255 bytes"):
        check_path(f"/Scans/{name}/a.aim")
