"""What a XamFlow script does with its ``XFWorkerJob`` besides inputs: working directories
(``worker.working_dir``, ``TemporaryWorkingDirectory``), output values (``create_related_path``,
``create_output_csv``/``_bitmap``/``_entity``), messages (``clear_error_message``,
``activity_log_message``, ``error``, ``finish``), ``XFWorkerArguments``, and its log."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.compat.conftest import SOURCE, Lab

FEATURES = ("WorkingDir", "Outputs", "Bitmap", "Messages", "Arguments", "Log")
RUNS = {"good": 3, "bad": -1}


@pytest.fixture(scope="module")
def helpers(lab: Lab) -> Lab:
    """Workflow "Compat NAME" (Source -> NAME) for each feature, with the runs of RUNS."""
    for feature in FEATURES:
        with lab.feature(feature):
            for name in (SOURCE, f"Compat.{feature}", f"Workflow.{feature}"):
                lab.import_package(name)
            lab.start_workflow(f"Compat {feature}")
            for run, value in RUNS.items():
                lab.new_run(f"Compat {feature}", "Source", run, {"value": value})
    lab.wait()
    return lab


def job_of(lab: Lab, feature: str, run: str = "good") -> dict[str, Any]:
    lab.check(feature)
    job: dict[str, Any] | None = lab.runs(f"Compat {feature}")[run].get(feature)
    assert job is not None, f"{feature}: no job in run {run}"
    return job


# -- working directories ------------------------------------------------------------------


def test_working_dir_and_temporary_working_directory_behave_as_documented(helpers: Lab) -> None:
    outputs = helpers.done(job_of(helpers, "WorkingDir"), "WorkingDir")
    checks = json.loads(outputs["checks"])
    failed = [check for check, result in checks.items() if result is not True]
    assert not failed, f"checks that do not hold: {failed}"


# -- output values ------------------------------------------------------------------------


def outputs_of(lab: Lab, key: str) -> Any:
    """The Outputs job's output ``key``; fails with the exception its call raised."""
    job = job_of(lab, "Outputs")
    outputs = lab.done(job, "Outputs")
    problems = json.loads(outputs["problems"])
    assert key not in problems, f"{key}: {problems[key]}"
    return outputs[key]


def test_create_output_csv_of_a_file_written_in_the_working_dir_by_name(helpers: Lab) -> None:
    table = outputs_of(helpers, "table")
    assert table["type"] == "CSV" and table["filename"] == "table.csv", table
    assert helpers.file(table) == b"value,square\n3,9\n"


def test_create_output_csv_of_a_path_in_the_working_dir(helpers: Lab) -> None:
    table = outputs_of(helpers, "table_path")
    assert table["type"] == "CSV" and table["filename"] == "table2.csv", table
    assert helpers.file(table) == b"value,cube\n3,27\n"


def test_create_output_bitmap_of_a_png_the_script_wrote(helpers: Lab) -> None:
    plot = helpers.done(job_of(helpers, "Bitmap"), "Bitmap")["plot"]
    assert plot["type"] == "Bitmap", plot
    content = helpers.file(plot)
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in content


def test_create_output_entity(helpers: Lab) -> None:
    assert outputs_of(helpers, "entity") == {
        "type": "Entity",
        "uuid": "compat-3",
        "name": "Sample 3",
    }


def test_create_related_path_is_the_stem_plus_postfix_in_the_working_dir(helpers: Lab) -> None:
    assert outputs_of(helpers, "related") == "table_copy.csv"
    assert outputs_of(helpers, "scan_related") == "SAMPLE_SEG.AIM"


# -- messages -----------------------------------------------------------------------------


def test_error_ends_the_job_failed_with_its_message_and_stops_the_script(helpers: Lab) -> None:
    job = job_of(helpers, "Messages", "bad")
    assert job["state"] == "Failed", job
    # Runyard may add where the working folder was kept, after the message.
    assert job["error"].startswith("value must not be negative; got -1"), job["error"]
    assert "after the check" not in helpers.log(job["serial"])


def test_clear_error_message_and_finish_end_the_job_done_without_error(helpers: Lab) -> None:
    job = job_of(helpers, "Messages")
    assert helpers.done(job, "Messages") == {"value": 3}
    assert job["error"] == ""
    assert "after the check of 3" in helpers.log(job["serial"])


def test_activity_log_message_with_level_warning_and_the_default_info(helpers: Lab) -> None:
    serial = job_of(helpers, "Messages")["serial"]
    entries = {e["message"]: e for e in helpers.activity() if e.get("job_serial") == serial}
    warning = entries.get("Compat messages: a warning for 3")
    info = entries.get("Compat messages: information for 3")
    assert warning is not None and info is not None, sorted(entries)
    assert (warning["level"], info["level"]) == ("warning", "info")


# -- arguments ----------------------------------------------------------------------------


def test_xf_worker_arguments_give_the_job_serial_and_the_server(helpers: Lab) -> None:
    job = job_of(helpers, "Arguments")
    outputs = helpers.done(job, "Arguments")
    assert json.loads(outputs["types"]) == {
        "job_serial": "int",
        "server_auth": "str",
        "server_host": "str",
        "server_port": "str",
    }
    server = urlsplit(helpers.url)
    assert outputs["job_serial"] == job["serial"]
    assert (outputs["server_host"], outputs["server_port"]) == (server.hostname, str(server.port))
    assert outputs["server_auth_given"] is True


# -- log ----------------------------------------------------------------------------------


def test_the_log_shows_what_the_script_printed_and_logged(helpers: Lab) -> None:
    job = job_of(helpers, "Log")
    assert helpers.done(job, "Log") == {"versions": 1}
    log = helpers.log(job["serial"])
    for line in (
        "compat log: printed 3",
        "compat log: printed to stderr 3",
        "compat log: logged info 3",
        "compat log: logged warning 3",
    ):
        assert line in log, f"{line!r} not in the log:\n{log}"


def test_the_log_does_not_show_the_http_clients_request_lines(helpers: Lab) -> None:
    job = job_of(helpers, "Log")
    log = helpers.log(job["serial"])
    assert "HTTP Request:" not in log, log
