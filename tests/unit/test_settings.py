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
