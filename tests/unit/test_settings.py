"""Settings: where the data directory is, whatever folder a process runs in."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.settings import Settings


def test_a_relative_data_directory_is_made_absolute_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`runyard up --data-dir ./lab`: jobs run in their own working folders, so a relative
    data directory would name another folder there (issue 18)."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("lab"))
    assert settings.data_dir == tmp_path / "lab"
    assert settings.task_types_dir == tmp_path / "lab" / "task-types"
    assert settings.with_overrides(data_dir=Path("other")).data_dir == tmp_path / "other"
    from_env = Settings.from_env({"RUNYARD_DATA_DIR": "./lab2", "RUNYARD_CONFIG_DIR": "cfg"})
    assert (from_env.data_dir, from_env.config_dir) == (tmp_path / "lab2", tmp_path / "cfg")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/lab/runyard.db", "/srv/lab/runyard.db"),
        ("sqlite:////srv/lab/runyard.db?timeout=5", "/srv/lab/runyard.db"),
        ("sqlite:///:memory:", None),
        ("postgresql://lab@db/runyard", None),
        # A query string once made this a file path ("postgresql:/lab@/runyard", made 0600).
        ("postgresql://lab@/runyard?host=/run/postgresql&port=5433", None),
    ],
)
def test_only_a_sqlite_url_names_a_database_file(url: str, expected: str | None) -> None:
    path = Settings(data_dir=Path("/srv/lab"), database_url=url).sqlite_path
    assert (None if path is None else str(path)) == expected
