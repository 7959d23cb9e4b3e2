"""An environment's fork server learns what its jobs import (``runyard.worker.preload``):
after a job imported a module of the environment's site-packages, the next jobs start with it
loaded, also from a fork server started later; a module that starts a thread when imported is
never loaded into the fork server, and one that fails is not either. Real: a virtual
environment made as a worker makes one, a fork server in its Python, jobs forked from it."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from runyard.worker import preload, runner
from runyard.worker.environments import Environments, _python
from runyard.worker.forkserver import ForkServer
from runyard.worker.prepare import COMPAT_DIR
from tests.integration.test_runner import job

MODULES = {
    "calm/__init__.py": "",  # loads its submodule only when asked (as scikit-image does)
    "calm/deep.py": "VALUE = 1\n",
    "threaded.py": "import threading, time\n"
    "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n",
    "broken.py": "raise RuntimeError('not importable')\n",
}
SCRIPT = """\
import sys
from runyard import task
loaded = sorted(n for n in ("calm.deep", "threaded", "broken") if n in sys.modules)
import calm.deep, threaded
try:
    import broken
except RuntimeError:
    pass
task.finish({"loaded": loaded})
"""


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment layered on the worker's packages, with three modules."""
    folder = tmp_path_factory.mktemp("env") / "0123abcd"
    with open(folder.parent / "build.log", "w") as out:
        Environments(folder.parent, None, "w")._build(folder, [], out)  # type: ignore[arg-type]
    purelib = subprocess.run(
        [str(_python(folder)), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    for name, text in MODULES.items():
        (Path(purelib) / name).parent.mkdir(exist_ok=True)
        (Path(purelib) / name).write_text(text)
    return folder


def loaded(tmp_path: Path, server: ForkServer, python: str, n: int) -> list[str]:
    """What job ``n`` found loaded at its start."""
    (tmp_path / f"job-{n}").mkdir()
    claimed, prepared = job(tmp_path / f"job-{n}", SCRIPT)
    prepared = dataclasses.replace(prepared, command=[python, prepared.command[1]], python=python)
    outcome = runner.run(claimed, prepared, server)
    assert outcome.ok, claimed.log.read(final=True) if claimed.log else outcome.error
    return list(outcome.outputs["loaded"])


def test_the_next_jobs_start_with_what_the_first_imported_from_the_environment(
    environment: Path, tmp_path: Path
) -> None:
    python = str(_python(environment))
    server = ForkServer(COMPAT_DIR, python=python, learn=True)
    try:
        assert loaded(tmp_path, server, python, 1) == []
        noted = (environment / preload.FILE).read_text().split()
        assert sorted(set(noted)) == ["calm", "calm.deep", "threaded"], "broken never was"
        assert loaded(tmp_path, server, python, 2) == ["calm.deep"], "threaded starts a thread"
        assert loaded(tmp_path, server, python, 3) == ["calm.deep"]
    finally:
        server.close()
    again = ForkServer(COMPAT_DIR, python=python, learn=True)
    try:
        assert loaded(tmp_path, again, python, 4) == ["calm.deep"], "learned before any job"
    finally:
        again.close()


def test_a_fork_server_that_does_not_learn_loads_nothing_of_the_environment(
    environment: Path, tmp_path: Path
) -> None:
    python = str(_python(environment))
    server = ForkServer(COMPAT_DIR, python=python)
    try:
        assert loaded(tmp_path, server, python, 1) == []
        assert loaded(tmp_path, server, python, 2) == []
    finally:
        server.close()
