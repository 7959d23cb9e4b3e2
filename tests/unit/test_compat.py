"""The pure parts of the compatibility modules: virtual paths, sort orders, the XF_* job
arguments, related paths, and the clear refusal of what is not available yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runyard import task
from runyard.compat import NotAvailable, network, omni, xfsortorder, xfworkerutil
from runyard.errors import InvalidInput
from runyard.task import virtualpath


def test_virtual_paths_join_and_split() -> None:
    assert network.virtualpath_join_file("/Scans/s1/", "image.aim") == "/Scans/s1/image.aim"
    assert network.virtualpath_join_file("/", "SCAN.ISQ;1") == "/SCAN.ISQ;1"
    assert network.virtualpath_join_folder("/Scans/", "2026") == "/Scans/2026/"
    assert network.virtualpath_join_folder("/Scans/", "2026/") == "/Scans/2026/"
    assert network.get_virtualpath_dirname("/Scans/s1/image.aim") == "/Scans/s1/"
    assert network.get_virtualpath_dirname("/Scans/s1/") == "/Scans/s1/"
    assert network.get_virtualpath_dirname("/image.aim") == "/"
    assert network.virtualpath_join_file is virtualpath.join_file  # one implementation


@pytest.mark.parametrize(
    ("folder", "name", "message"),
    [
        ("/Scans/", "..", "'.' or '..'"),
        ("/Scans/", "%2e%2E", "'.' or '..'"),
        ("/Scans/", "%252e%252e", "'.' or '..'"),
        ("/Scans/", "%25252E.", "'.' or '..'"),
        ("/Scans/", "..%2f..", "percent-encoded '/'"),
        ("/Scans/", "a%5Cb", "percent-encoded '/', backslash"),
        ("/Scans/", "a%00", "percent-encoded '/', backslash or NUL"),
        ("/Scans/", ".", "'.' or '..'"),
        ("/Scans/", "a/b", "contains '/'"),
        ("/Scans/", "a\\b", "backslash"),
        ("/Scans/", "a\0b", "NUL"),
        ("/Scans/", "", "is empty"),
        ("/Scans/../", "a", "'.' or '..'"),
        ("/Scans//", "a", "empty name"),
        ("Scans/", "a", "does not start with '/'"),
        ("/Scans", "a", "is not a folder"),
    ],
)
def test_bad_virtual_paths_are_refused_with_the_reason(
    folder: str, name: str, message: str
) -> None:
    for join in (network.virtualpath_join_file, network.virtualpath_join_folder):
        with pytest.raises(ValueError, match=message):
            join(folder, name)


@pytest.mark.parametrize("path", ["/a/../b", "a/b", "/a\\b/", "/a/\0", "/a//b"])
def test_dirname_refuses_bad_paths(path: str) -> None:
    with pytest.raises(network.InvalidVirtualPath):
        network.get_virtualpath_dirname(path)


def test_new_sort_orders_come_after_the_existing_ones_in_order() -> None:
    keys = xfsortorder.get_new_source_job_sort_orders(["1", "2", None], 3)
    assert len(keys) == 3 and sorted(keys) == keys and keys[0] > "2"
    assert xfsortorder.get_new_source_job_sort_orders([], 0) == []
    with pytest.raises(InvalidInput):
        xfsortorder.get_new_source_job_sort_orders(["no-key"], 1)


def test_worker_arguments_come_from_the_xf_variables() -> None:
    env = {
        "XF_JOB_SERIAL": "42",
        "XF_SERVER_HOST": "lab-server",
        "XF_SERVER_PORT": "8765",
        "XF_SERVER_SCHEME": "https",
        "XF_SERVER_AUTH": "ry_job_42_abc",
    }
    args = xfworkerutil.XFWorkerArguments(env)
    assert (args.job_serial, args.server_host, args.server_port) == (42, "lab-server", "8765")
    assert args.server_auth == "ry_job_42_abc"
    assert args.server_url == "https://lab-server:8765"
    ipv6 = xfworkerutil.XFWorkerArguments(env | {"XF_SERVER_HOST": "::1"})
    assert ipv6.server_url == "https://[::1]:8765"
    with pytest.raises(task.NotInAJob, match="XF_SERVER_AUTH is not set"):
        xfworkerutil.XFWorkerArguments({k: v for k, v in env.items() if k != "XF_SERVER_AUTH"})
    with pytest.raises(task.TaskError, match="XF_SERVER_PORT must be a whole number"):
        xfworkerutil.XFWorkerArguments(env | {"XF_SERVER_PORT": "http"})


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> xfworkerutil.XFWorkerJob:
    """An XFWorkerJob as a worker would start it (no server: nothing here calls one)."""
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"serial": 7, "inputs": {"value": 3}, "metadata": {"m": 1}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(task, "_current", [])
    for name, value in {
        "RUNYARD_SERVER": "http://127.0.0.1:1",
        "RUNYARD_JOB_SERIAL": "7",
        "RUNYARD_JOB_TOKEN": "ry_job_7_x",
        "RUNYARD_JOB_FILE": str(job_file),
        "RUNYARD_RESULT_FILE": str(tmp_path / "result.json"),
    }.items():
        monkeypatch.setenv(name, value)
    return xfworkerutil.XFWorkerJob()


def test_the_job_dict_has_serial_inputs_and_metadata(
    worker: xfworkerutil.XFWorkerJob, tmp_path: Path
) -> None:
    assert worker.job == {"serial": 7, "inputs": {"value": 3}, "metadata": {"m": 1}}
    assert isinstance(worker.working_dir, xfworkerutil.TemporaryWorkingDirectory)
    assert worker.working_dir.path == tmp_path
    assert worker.working_dir / "x" == tmp_path / "x", "also usable as Runyard's old Path"


def test_a_related_path_is_the_stem_plus_postfix_in_the_working_dir(
    worker: xfworkerutil.XFWorkerJob,
) -> None:
    """The names themselves: tests/unit/test_workdir.py."""
    path = worker.create_related_path("/data/SCAN.ISQ;1", "_seg.omni")
    assert path == worker.working_dir.path / "SCAN_seg.omni"


def test_a_related_path_refuses_a_postfix_with_folders(worker: xfworkerutil.XFWorkerJob) -> None:
    with pytest.raises(ValueError, match="postfix"):
        worker.create_related_path("/x/scan.aim", "/../evil")
    with pytest.raises(ValueError, match="no file name"):
        worker.create_related_path("/x/..", "")


def test_output_helpers(worker: xfworkerutil.XFWorkerJob, tmp_path: Path) -> None:
    assert worker.create_output_entity("u1", "Sample 1") == {
        "type": "Entity",
        "uuid": "u1",
        "name": "Sample 1",
    }
    with pytest.raises(SystemExit):
        worker.create_output_csv("table.csv")  # not written: the job fails, naming the file
    assert "table.csv does not exist" in (tmp_path / "result.json").read_text()


def test_clear_error_message_saves_now_or_with_the_next_report(
    worker: xfworkerutil.XFWorkerJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[tuple[float | None, str]] = []
    monkeypatch.setattr(
        task.CurrentJob,
        "progress",
        lambda self, fraction, message="": reports.append((fraction, message)),
    )
    worker.clear_error_message(save=False)
    assert reports == []
    worker.clear_error_message()
    assert reports == [(None, "")]


def test_error_ends_the_job_failed_with_the_message(
    worker: xfworkerutil.XFWorkerJob, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        worker.error("Unknown mode x")
    assert exit_info.value.code == 1
    assert json.loads((tmp_path / "result.json").read_text()) == {"error": "Unknown mode x"}


def test_temporary_working_directory_is_inside_the_working_dir_and_removed(
    worker: xfworkerutil.XFWorkerJob,
) -> None:
    with xfworkerutil.TemporaryWorkingDirectory("scratch") as scratch:
        assert scratch.parent == worker.working_dir.path and scratch.is_dir()
        assert scratch.name.startswith("scratch")
        (scratch / "sub").mkdir()
        (scratch / "sub" / "f").write_text("x")
    assert not scratch.exists()
    kept = xfworkerutil.TemporaryWorkingDirectory(prefix="kept")
    assert worker.working_dir.is_under(kept.path) and not kept.is_under(worker.working_dir.path)
    kept.remove()
    assert not kept.path.exists()


def test_activity_levels_are_runyards() -> None:
    assert [level.value for level in xfworkerutil.ActivityLogLevel] == list(task.ACTIVITY_LEVELS)


def test_image_calls_work_and_refuse_bad_input_clearly(
    worker: xfworkerutil.XFWorkerJob, tmp_path: Path
) -> None:
    """The image functions, once NotAvailable, now work (tests/unit/test_images_*.py); what
    they cannot do fails with a message naming the value or the file."""
    with pytest.raises(task.TaskError, match="download_image needs an Image value"):
        worker.get_omni_image({})
    with pytest.raises(task.TaskError, match=r"upload_image needs a runyard\.images\.Image"):
        worker.upload_omni_output(None)  # type: ignore[arg-type]
    for call in (
        lambda: omni.Image.load(tmp_path / "x.omni"),
        lambda: omni.import_from_aim(tmp_path / "x.aim", load_pixels=False),
        lambda: omni.import_from_isq(tmp_path / "SCAN.ISQ;1", load_pixels=False),
    ):
        with pytest.raises(omni.ImageError, match="no such file"):
            call()
    assert issubclass(NotAvailable, task.TaskError)
