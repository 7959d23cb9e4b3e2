"""Acceptance: a ``runyard server`` or ``runyard up`` stopped by SIGTERM or SIGINT removes
its ``server.json`` (clients then say no server runs instead of calling a dead address),
but not one that another server wrote there meanwhile."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.acceptance.conftest import Installation, start_server, start_up

STARTS = {"server": start_server, "up": start_up}


def stopped(installation: Installation, signum: signal.Signals) -> int:
    installation.process.send_signal(signum)
    return installation.process.wait(timeout=60)


@pytest.mark.parametrize("command", sorted(STARTS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_server_removes_its_server_file(
    tmp_path: Path, command: str, signum: signal.Signals
) -> None:
    installation = STARTS[command](tmp_path / "lab")
    server_file = installation.data_dir / "server.json"
    assert json.loads(server_file.read_text())["pid"] == installation.process.pid
    stopped(installation, signum)
    assert not server_file.exists()
    result = installation.cli("workflow", "list", check=False)
    assert result.returncode != 0 and "no server is running" in result.stderr, result.stderr


def test_a_stopped_server_leaves_a_server_file_that_is_not_its_own(tmp_path: Path) -> None:
    installation = start_server(tmp_path / "lab")
    server_file = installation.data_dir / "server.json"
    other = {"url": "http://127.0.0.1:1", "pid": installation.process.pid + 100000}
    server_file.write_text(json.dumps(other))
    stopped(installation, signal.SIGTERM)
    assert json.loads(server_file.read_text()) == other
