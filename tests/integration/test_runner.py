"""Running one job's process, forked from the fork server and as a plain subprocess: exit
status, signals, the task type's timeout, the log, and the job's environment."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.worker import runner
from runyard.worker.claimed import Claimed
from runyard.worker.forkserver import ForkServer
from runyard.worker.joblog import LogPump
from runyard.worker.prepare import COMPAT_DIR, RUNYARD_SOURCE, Prepared, job_environment
from runyard.worker.processes import kill_group, start


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer(COMPAT_DIR)
    yield server
    server.close()


@pytest.fixture(params=["forked", "plain"])
def start_with(request: pytest.FixtureRequest, forkserver: ForkServer) -> ForkServer | None:
    return forkserver if request.param == "forked" else None


def job(tmp_path: Path, script: str, timeout: float | None = None) -> tuple[Claimed, Prepared]:
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "main.py").write_text(script)
    workdir = tmp_path / "work"
    workdir.mkdir()
    claimed = Claimed(
        serial=7,
        lease="lease",
        token="ry_job_7_x",
        job={"serial": 7, "inputs": {"value": 3}},
        task_type={"entry_point": "main.py", "timeout_seconds": timeout, "dependencies": []},
    )
    (workdir / "job.json").write_text('{"serial": 7, "inputs": {"value": 3}}')
    path = [str(folder), COMPAT_DIR, RUNYARD_SOURCE]
    env = dict(os.environ) | job_environment(claimed, "http://127.0.0.1:9", workdir)
    env["PYTHONPATH"] = os.pathsep.join(path)
    prepared = Prepared(
        command=[sys.executable, str(folder / "main.py")],
        env=env,
        path=path,
        workdir=workdir,
        log=workdir / "job.log",
        forkable=True,
    )
    claimed.log = LogPump(prepared.log)
    return claimed, prepared


def test_a_finished_script_gives_its_outputs_and_its_log(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    claimed, prepared = job(
        tmp_path,
        "from runyard import task\n"
        "import os, xfworkerutil\n"
        "job = task.current_job()\n"
        "print('cwd', os.getcwd(), 'serial', os.environ['XF_JOB_SERIAL'])\n"
        "task.finish({'value': job.inputs['value'] * 2})\n",
    )
    outcome = runner.run(claimed, prepared, start_with)
    assert outcome.ok and outcome.outputs == {"value": 6}
    assert claimed.log is not None
    assert claimed.log.read(final=True) == f"cwd {prepared.workdir} serial 7\n"


def test_a_failing_script_fails_with_its_own_message_as_it_is(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    claimed, prepared = job(
        tmp_path, "from runyard import task\nprint('step 1')\ntask.fail('no scan found')\n"
    )
    outcome = runner.run(claimed, prepared, start_with)
    assert not outcome.ok
    assert outcome.error == "no scan found", "the kept folder is the job's workdir"
    assert outcome.workdir == prepared.workdir and prepared.workdir.is_dir()


def test_an_exception_fails_the_job_with_the_exit_status_and_the_traceback(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    claimed, prepared = job(tmp_path, "raise ValueError('bad threshold')\n")
    outcome = runner.run(claimed, prepared, start_with)
    assert outcome.error.startswith("the script exited with status 1")
    assert "ValueError: bad threshold" in outcome.error


def test_a_script_killed_by_a_signal_fails_with_the_signal_name(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    claimed, prepared = job(tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    outcome = runner.run(claimed, prepared, start_with)
    assert outcome.error.startswith("killed by signal SIGTERM")


def test_the_timeout_kills_the_whole_process_group(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    claimed, prepared = job(
        tmp_path,
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n",
        timeout=1.0,
    )
    outcome = runner.run(claimed, prepared, start_with)
    assert outcome.error.startswith("timed out after 1.0 s")
    child = int((prepared.workdir / "child.pid").read_text())
    deadline = time.monotonic() + 5  # the signal is delivered asynchronously
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _running(child), "the script's own child process was killed too"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_log_pump_keeps_characters_split_across_reads_and_marks_skipped_output(
    tmp_path: Path,
) -> None:
    path = tmp_path / "job.log"
    pump = LogPump(path, max_chunk=16)
    path.write_bytes("é".encode()[:1])
    assert pump.read() == ""
    with open(path, "ab") as f:
        f.write("é".encode()[1:] + b"\xff ok\n")
    assert pump.read() == "é\ufffd ok\n"
    with open(path, "ab") as f:
        f.write(b"x" * 100 + b"\nlast line\n")
    text = pump.read()
    assert text.startswith("[... 95 bytes of output skipped ...]\n")
    assert text.endswith("last line\n")


def test_a_preloaded_module_that_prints_does_not_break_the_fork_server(tmp_path: Path) -> None:
    compat = tmp_path / "compat"
    compat.mkdir()
    (compat / "chatty.py").write_text(
        "import os, sys\n"
        "print('hello from a preloaded module')\n"
        "sys.stdout.flush()\n"
        "os.register_at_fork(after_in_parent=lambda: print('forked', flush=True))\n"
    )
    server = ForkServer(str(compat))
    try:
        _, prepared = job(tmp_path, "print('job output')\n")
        process = server.start(
            prepared.command,
            cwd=prepared.workdir,
            env=prepared.env,
            path=prepared.path,
            log=prepared.log,
        )
        assert process.wait(timeout=60) == 0
        assert server.alive
        assert prepared.log.read_text() == "job output\n"
    finally:
        server.close()


def test_the_group_of_a_job_process_that_was_reaped_is_never_signalled(
    tmp_path: Path, start_with: ForkServer | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a job's process is reaped, its pid (and group id) may belong to a new process,
    such as the next job's: killing the group must do nothing then."""
    _, prepared = job(tmp_path, "print('done')\n")
    process = start(prepared, start_with)
    assert process.wait(timeout=60) == 0
    signalled: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "killpg", lambda pid, sig: signalled.append((pid, sig)))
    kill_group(process)
    assert signalled == []
