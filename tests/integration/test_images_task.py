"""Image values in task scripts, against the in-process server (SQLite and PostgreSQL): an
image uploaded as its two files and fetched back, Image values of User Data files (OMNI with
its .raw; ISQ with a version suffix and AIM, converted to OMNI in the working folder), and
the xfworkerutil helpers over them as XamFlow's guide uses them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from runyard import task
from runyard.client import Client
from runyard.compat import omni, xfworkerutil
from runyard.images import Calibration, Image
from runyard.task import userdata
from tests.integration.conftest import Server, start_a_job
from tests.unit.test_images_scanco import aim_file, isq_file

PIXELS = (np.arange(5 * 4 * 3, dtype=np.int16).reshape((5, 4, 3), order="F") - 7) * 100
MU = Calibration(unit_type="linear_attenuation", unit_name="1/cm", slope=1 / 8192)


def in_process_client(server: Server, token: str) -> Client:
    client = Client("http://testserver", token)
    client._http.close()
    client._http = TestClient(  # type: ignore[assignment]
        server.client.app, headers={"Authorization": f"Bearer {token}"}
    )
    return client


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    root = tmp_path / "scans"
    (root / "s1").mkdir(parents=True)
    Image.from_array(PIXELS, spacing=(0.01, 0.01, 0.02), calibrations=[MU]).save(
        root / "s1" / "sample.omni"
    )
    (root / "s1" / "SCAN.ISQ;1").write_bytes(isq_file(PIXELS))
    (root / "s1" / "SAMPLE.AIM;2").write_bytes(aim_file(30, PIXELS))
    return root


@pytest.fixture
def job(
    server: Server, scans: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> task.CurrentJob:
    """``runyard.task.current_job()`` as under a worker, with User Data mapped at /Scans/."""
    r = server.client.put("/api/userdata/mappings", json={"root": "/Scans/", "folder": str(scans)})
    assert r.status_code == 200, r.text
    running = start_a_job(server)
    workdir = tmp_path / "job-dir"
    workdir.mkdir()
    (workdir / "job.json").write_text(json.dumps({"inputs": {}, "metadata": {}}))
    for name, value in {
        "RUNYARD_SERVER": "http://testserver",
        "RUNYARD_JOB_SERIAL": str(running.serial),
        "RUNYARD_JOB_TOKEN": running.job_token,
        "RUNYARD_JOB_FILE": str(workdir / "job.json"),
        "RUNYARD_RESULT_FILE": str(workdir / "result.json"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(task, "_current", [])
    current = task.current_job()
    current.__dict__["_shared_client"] = in_process_client(server, running.job_token)
    monkeypatch.setattr(userdata, "_client", lambda token, _: in_process_client(server, token))
    return current


def test_an_uploaded_image_is_its_two_files_and_comes_back_whole(
    job: task.CurrentJob, server: Server
) -> None:
    image = Image.from_array(PIXELS, spacing=(0.01, 0.01, 0.02), calibrations=[MU])
    mask = image.derive_image("uint8", image.pixels > 0)
    value = job.upload_image(mask, "sample_mask.omni")
    assert (job.working_dir / "sample_mask.omni").is_file()  # saved there before upload
    assert set(value) == {
        "type", "source", "file_id", "filename", "raw_file_id", "raw_filename", "size",
        "data_type", "sha256", "raw_sha256",
    }  # fmt: skip
    assert value["type"] == "Image" and value["source"] == "filestore"
    assert value["filename"] == "sample_mask.omni" and value["raw_filename"] == "sample_mask.raw"
    assert value["size"] == [5, 4, 3] and value["data_type"] == "uint8"
    _stored, path = server.ry.files.get(value["raw_file_id"])
    assert path.read_bytes() == mask.pixels.tobytes(order="F")

    fetched = job.download(value, job.working_dir / "in")
    assert fetched == job.working_dir / "in" / "sample_mask.omni"
    assert (job.working_dir / "in" / "sample_mask.raw").is_file()
    back = job.download_image(value, job.working_dir / "again")
    assert back.metadata == mask.metadata and isinstance(back.pixels, np.memmap)
    np.testing.assert_array_equal(back.pixels, mask.pixels)


def test_a_saved_image_is_uploaded_as_it_is(job: task.CurrentJob) -> None:
    image = Image.from_array(PIXELS)
    image.save(job.working_dir / "kept.omni")
    value = job.upload_image(image)
    assert value["filename"] == "kept.omni" and value["raw_filename"] == "kept.raw"


def test_user_data_image_values_are_fetched_and_opened(job: task.CurrentJob) -> None:
    omni_value = {
        "type": "Image",
        "source": "userdata",
        "virtualpath": "/Scans/s1/sample.omni",
        "filename": "sample.omni",
        "size": [5, 4, 3],
    }
    image = job.download_image(omni_value)
    assert image.calibrations == (MU,) and image.spacing == (0.01, 0.01, 0.02)
    np.testing.assert_array_equal(image.pixels, PIXELS)
    assert image.metadata_path == job.working_dir / "sample.omni"
    assert (job.working_dir / "sample.raw").is_file()


def test_a_user_data_omni_comes_with_its_additional_pixel_files(
    job: task.CurrentJob, scans: Path
) -> None:
    omni_file = scans / "s1" / "sample.omni"
    data = json.loads(omni_file.read_text()) | {"additional_pixels_filenames": ["sample.1.bin"]}
    omni_file.write_text(json.dumps(data))
    (scans / "s1" / "sample.1.bin").write_bytes(b"bulk")
    image = job.download_image(
        {"type": "Image", "source": "userdata", "virtualpath": "/Scans/s1/sample.omni"}
    )
    assert image.additional_pixels_filenames == ["sample.1.bin"]
    assert (job.working_dir / "sample.1.bin").read_bytes() == b"bulk"


def test_user_data_scanco_images_become_omni_files_in_the_working_folder(
    job: task.CurrentJob,
) -> None:
    folder_value = {"type": "Image", "source": "userdata", "virtualpath": "/Scans/s1/"}
    scan = job.download_image(folder_value | {"filename": "SCAN.ISQ;1"})
    assert scan.metadata_path == job.working_dir / "SCAN.omni"
    assert scan.raw_path == job.working_dir / "SCAN.raw"
    assert isinstance(scan.pixels, np.memmap)
    np.testing.assert_array_equal(scan.pixels, PIXELS)
    assert scan.source["format"] == "ISQ" and scan.source["filename"] == "SCAN.ISQ;1"
    assert [c.unit_type for c in scan.calibrations] == [
        "linear_attenuation", "density", "hounsfield"
    ]  # fmt: skip
    assert scan.default_pixel_calibration_unit_type == "density"
    assert scan.calibration("density").raw_to_calibrated(4096) == pytest.approx(1603.5 - 391.2)
    sample = job.download_image(
        {"type": "Image", "source": "userdata", "virtualpath": "/Scans/s1/SAMPLE.AIM;2"}
    )
    assert sample.metadata_path == job.working_dir / "SAMPLE.omni"
    assert sample.source["version"] == "AIMDATA_V030" and len(sample.calibrations) == 3
    np.testing.assert_array_equal(sample.pixels, PIXELS)
    # Fetched again: a new name. Neither the Scanco files nor their folders stay behind.
    again = job.download_image(folder_value | {"filename": "SCAN.ISQ;1"})
    assert again.metadata_path == job.working_dir / "SCAN_2.omni"
    assert sorted(p.name for p in job.working_dir.iterdir()) == [
        "SAMPLE.omni", "SAMPLE.raw", "SCAN.omni", "SCAN.raw", "SCAN_2.omni", "SCAN_2.raw",
        "job.json",
    ]  # fmt: skip
    assert job.download(folder_value | {"filename": "SCAN.ISQ;1"}).name == "SCAN.ISQ;1"


def test_image_values_that_cannot_be_fetched_say_why(job: task.CurrentJob) -> None:
    with pytest.raises(task.TaskError, match="has no 'raw_file_id'"):
        job.download({"type": "Image", "source": "filestore", "file_id": "x"})
    with pytest.raises(task.TaskError, match="Image values from source 'web'"):
        job.download({"type": "Image", "source": "web"})
    with pytest.raises(task.TaskError, match="download_image needs an Image value"):
        job.download_image({"type": "ForeignFile", "source": "filestore", "file_id": "x"})


def test_xfworkerutil_gets_and_uploads_omni_images(job: task.CurrentJob) -> None:
    """XamFlow's threshold task as its guide writes it: get_omni_image, create_related_path
    of the image's metadata_path, a calibration of the input's unit type, derive_segments,
    upload_omni_output."""
    worker = xfworkerutil.XFWorkerJob()
    image = worker.get_omni_image(
        {"type": "Image", "source": "userdata", "virtualpath": "/Scans/s1/SCAN.ISQ;1"}
    )
    assert isinstance(image, omni.Image) and image.size == (5, 4, 3)
    assert image.metadata_path is not None and image.metadata_path.suffix == ".omni"
    seg_image_omni_path = worker.create_related_path(image.metadata_path, "_seg.omni")
    seg_image_pixels_path = worker.create_related_path(image.metadata_path, "_seg.raw")
    assert seg_image_omni_path == worker.working_dir.path / "SCAN_seg.omni"
    calibration = image.pixel_calibrations_of_unit_type("density")[0]
    lower = calibration.calibrated_to_raw(0.0)
    seg_image = image.derive_segments(seg_image_omni_path, seg_image_pixels_path)
    seg_image.pixels[...] = image.pixels >= lower
    value = worker.upload_omni_output(seg_image)
    assert value["filename"] == "SCAN_seg.omni" and value["size"] == [5, 4, 3]
    assert value["raw_filename"] == "SCAN_seg.raw" and value["data_type"] == "uint8"
    stored = job.download_image(value, job.working_dir / "back")
    assert stored.kind == "segments"
    np.testing.assert_array_equal(stored.pixels, image.pixels >= lower)
    # An image object among the outputs of finish is uploaded as an Image value (the scan,
    # converted to SCAN.omni in the working folder, as it is).
    with pytest.raises(SystemExit):
        worker.finish({"seg": value, "scan": image})
    outputs = json.loads((job.working_dir / "result.json").read_text())["outputs"]
    assert outputs["seg"] == value
    assert outputs["scan"]["filename"] == "SCAN.omni" and outputs["scan"]["data_type"] == "int16"
