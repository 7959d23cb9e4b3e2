"""The study table in a real browser: a task's outputs for every run, sorted by a column's
heading, filtered by text and by a comparison, exported as CSV (the rows that pass the
filter), a histogram drawn (uPlot, vendored), and a column's output files downloaded as one
zip."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import httpx
from playwright.sync_api import Download, Page, expect

from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation, wait_for
from tests.browser.conftest import log_in, new_workflow, output_of, screenshot
from tests.browser.test_ui import cell
from tests.conftest import WORKFLOWS

NAMES = ["femur 3", "femur 1", "tibia 2", "tibia 10", "radius 5"]
VALUES = [3, 1, 2, 10, 5]


def measured(lab: Installation) -> None:
    """Workflow 'Measured': Source -> Reuse (outputs pid, serial, value, cwd), a run per
    name, every Reuse job Done (run by the lab's worker)."""
    reuse = {
        "name": "Reuse",
        "task_type": {"name": "Test.Reuse"},
        "inputs": [{"key": "value", "source": output_of("Source")}],
    }
    new_workflow(lab, "Measured", [{"name": "Source", "task_type": {"name": "Test.Source"}}, reuse])
    for name, value in zip(NAMES, VALUES, strict=True):
        body = {"task": "Source", "outputs": {"value": value}, "name": name}
        lab.api("POST", "/api/workflows/Measured/runs", body)
    wait_for(
        lambda: len(lab.api("GET", "/api/workflows/Measured/study-table")["rows"]) == 5,
        "every Reuse job Done",
    )


def cells(page: Page, column: int) -> list[str]:
    return page.locator(f".study-table tbody tr td:nth-child({column})").all_inner_texts()


def test_the_study_table_sorts_filters_exports_and_draws_a_histogram(
    page: Page, lab: Installation, tmp_path: Path
) -> None:
    measured(lab)
    log_in(page, lab)
    page.goto(f"{lab.url}/#/workflows/Measured")
    page.locator(".study-link").click()
    expect(page.locator(".study-task")).to_have_value("Reuse")
    expect(page.locator(".study-table tbody tr")).to_have_count(5)
    heads = page.locator(".study-table thead button.sort").all_inner_texts()
    assert [h.strip() for h in heads] == ["run", "pid", "serial", "value", "cwd"]

    page.get_by_role("button", name="value", exact=True).click()
    expect(page.locator(".study-table tbody tr").first).to_contain_text("femur 1")
    assert cells(page, 4) == ["1", "2", "3", "5", "10"]
    page.get_by_role("button", name="value", exact=True).click()
    assert cells(page, 4) == ["10", "5", "3", "2", "1"]
    page.get_by_role("button", name="run", exact=True).click()
    assert cells(page, 1) == ["femur 1", "femur 3", "radius 5", "tibia 2", "tibia 10"]

    page.get_by_label("Filter rows").fill("TIBIA")
    expect(page.locator(".study-count")).to_have_text("2 of 5 runs")
    expect(page.locator(".study-table tbody tr td:nth-child(1)")).to_have_text(
        ["tibia 2", "tibia 10"]
    )
    page.get_by_label("Filter rows").fill("value > 2 and value <= 5")
    names = page.locator(".study-table tbody tr td:nth-child(1)")
    expect(names).to_have_text(["femur 3", "radius 5"])
    page.get_by_label("Filter rows").fill("value > many")
    expect(page.locator(".study-filter-error")).to_contain_text("compare it with a number")
    page.get_by_label("Filter rows").fill("value >= 3")
    expect(page.locator(".study-count")).to_have_text("3 of 5 runs")

    histogram = page.locator(".histogram-chart canvas")
    expect(histogram).to_have_count(1)
    box = histogram.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    page.locator(".hist-column").select_option(label="value")
    expect(page.locator(".histogram-chart .u-title")).to_contain_text("Histogram of value (3 runs)")
    page.locator(".scatter-x").select_option(label="serial")
    page.locator(".scatter-y").select_option(label="value")
    expect(page.locator(".scatter-chart .u-title")).to_have_text("value against serial (3 runs)")
    expect(page.locator(".scatter-chart canvas")).to_have_count(1)
    screenshot(page, "study-table")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    assert download.value.suggested_filename == "Measured-Reuse.csv"
    saved = tmp_path / "table.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(), newline="")))
    assert [(r["run"], r["value"]) for r in rows] == [
        ("femur 3", "3"),
        ("radius 5", "5"),
        ("tibia 10", "10"),
    ], "the rows that pass the filter, in the order shown"
    assert list(rows[0]) == ["run_id", "run", "pid", "serial", "value", "cwd"]


def files_runs(lab: Installation, runs: dict[str, bytes]) -> None:
    """Runs of the workflow 'Files' (imported once), each with its Source job's file
    ``scan.txt`` holding the bytes given."""
    headers = {"Authorization": f"Bearer {lab.admin_token}"}
    if "Files" not in [w["name"] for w in lab.api("GET", "/api/workflows")]:
        httpx.post(
            lab.url + "/api/packages",
            content=folder_zip_bytes(WORKFLOWS / "Files"),
            headers=headers,
        ).raise_for_status()
    for run, text in runs.items():
        ref = httpx.post(
            lab.url + "/api/files", params={"filename": "scan.txt"}, content=text, headers=headers
        ).json()
        body = {"task": "Source", "outputs": {"file": ref}, "name": run}
        lab.api("POST", "/api/workflows/Files/runs", body)


def downloaded(download: Download) -> dict[str, bytes]:
    with zipfile.ZipFile(download.path()) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def test_a_columns_files_download_as_one_zip(page: Page, lab: Installation) -> None:
    files_runs(lab, {"scan A": b"first scan\n", "scan B": b"second scan\n"})
    log_in(page, lab)
    page.goto(f"{lab.url}/#/workflows/Files/study?task=Source")
    expect(page.locator(".study-table tbody tr").first).to_be_visible()
    with page.expect_download() as download:
        page.locator('.column-zip[data-key="file"]').click()
    assert download.value.suggested_filename == "Files-Source-file.zip"
    files = downloaded(download.value)
    assert files["scan A/Source/file/scan.txt"] == b"first scan\n"
    assert files["scan B/Source/file/scan.txt"] == b"second scan\n"


def test_picked_cells_and_a_jobs_panel_download_their_files(page: Page, lab: Installation) -> None:
    files_runs(lab, {"pick 1": b"one", "pick 2": b"two", "left": b"not picked"})
    log_in(page, lab)
    page.goto(f"{lab.url}/#/workflows/Files")
    cell(page, "pick 1", "Source").click(modifiers=["Control"])
    cell(page, "pick 2", "Source").click(modifiers=["Control"])
    expect(page.locator(".jobs-count")).to_have_text("2 jobs selected")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download files").click()
    assert downloaded(download.value) == {
        "pick 1/Source/file/scan.txt": b"one",
        "pick 2/Source/file/scan.txt": b"two",
    }

    cell(page, "left", "Source").click()
    with page.expect_download() as download:
        page.locator(".job-panel").get_by_role("link", name="Download outputs (zip)").click()
    assert downloaded(download.value) == {"left/Source/file/scan.txt": b"not picked"}
