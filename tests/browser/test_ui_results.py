"""Results in the runs table in a real browser: a Done job's cell shows a thumbnail of its
image and its number; a double click opens the image in the slice viewer, or a CSV output as
a table sorted by a click on a heading (numbers by value); two image cells picked are
compared side by side, one slider and the mouse wheel moving through the slices of both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect

from runyard.images import Image
from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, new_workflow, screenshot
from tests.integration.test_results import source_package

SCANS = [
    {"key": "scan", "type": "Image"},
    {"key": "mean", "type": "Float"},
]
TABLES = [{"key": "areas", "type": "CSV"}, {"key": "count", "type": "Int"}]
AREAS = "label,area\nb,10.5\nc,9\na,100\n"


def upload(lab: Installation, path: Path) -> dict[str, Any]:
    answer = httpx.post(
        f"{lab.url}/api/files",
        params={"filename": path.name},
        content=path.read_bytes(),
        headers={"Authorization": f"Bearer {lab.admin_token}"},
        timeout=30,
    )
    answer.raise_for_status()
    reference: dict[str, Any] = answer.json()
    return reference


def import_package(lab: Installation, data: bytes) -> None:
    httpx.post(
        f"{lab.url}/api/packages",
        content=data,
        headers={"Authorization": f"Bearer {lab.admin_token}"},
        timeout=30,
    ).raise_for_status()


@pytest.fixture(scope="module")
def compared(lab: Installation, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Workflow 'Compared': task Scan (an image and a number per run: runs small and
    large) and task Areas (a CSV table and a count: run table), every job Done."""
    folder = tmp_path_factory.mktemp("results")
    import_package(lab, source_package(folder / "scans-tt", "Test.Scans", SCANS))
    import_package(lab, source_package(folder / "tables-tt", "Test.Tables", TABLES))
    new_workflow(
        lab,
        "Compared",
        [
            {"name": "Scan", "task_type": {"name": "Test.Scans"}},
            {"name": "Areas", "task_type": {"name": "Test.Tables"}},
        ],
    )
    x, y, z = np.meshgrid(np.arange(40), np.arange(32), np.arange(20), indexing="ij")
    (folder / "areas.csv").write_text(AREAS)
    for run, radius, mean in (("small", 7, 0.125), ("large", 10, 1234.5678)):
        # A ball, brightest at its centre.
        depth = radius**2 - ((x - 20) ** 2 + (y - 16) ** 2 + (z - 10) ** 2)
        pixels = (np.clip(depth, 0, None) * (2000 // radius**2)).astype(np.int16)
        saved = Image.from_array(pixels).save(folder / f"{run}.omni")
        omni, raw = upload(lab, saved), upload(lab, folder / f"{run}.raw")
        scan = {"type": "Image", "source": "filestore", "file_id": omni["file_id"],
                "filename": saved.name, "raw_file_id": raw["file_id"],
                "raw_filename": f"{run}.raw", "size": [40, 32, 20],
                "data_type": "int16"}  # fmt: skip
        body = {"task": "Scan", "outputs": {"scan": scan, "mean": mean}, "name": run}
        lab.api("POST", "/api/workflows/Compared/runs", body)
    table = upload(lab, folder / "areas.csv") | {"type": "CSV"}
    body = {"task": "Areas", "outputs": {"areas": table, "count": 3}, "name": "table"}
    lab.api("POST", "/api/workflows/Compared/runs", body)
    return "Compared"


def cell(page: Page, run: str, task: str) -> Locator:
    row = page.locator(".runs-row.run").filter(has=page.locator(".run-name .text", has_text=run))
    return row.locator(f'.cell[data-task="{task}"]')


def test_results_show_in_cells_and_open_with_a_double_click(
    page: Page, lab: Installation, compared: str
) -> None:
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/workflows/{compared}")
    small, large = cell(page, "small", "Scan"), cell(page, "large", "Scan")
    expect(small).to_have_attribute("data-state", "Done")
    thumb = small.locator("img.thumb")
    expect(thumb).to_have_attribute("src", re.compile(r"/api/jobs/\d+/thumbnail\?key=scan"))
    expect(thumb).to_have_js_property("naturalWidth", 40)  # 40 x 32: small enough as it is
    expect(small.locator(".number")).to_have_text("0.125")
    expect(large.locator(".number")).to_have_text("1,235")
    expect(cell(page, "table", "Areas").locator(".number")).to_have_text("3")
    screenshot(page, "results-thumbnails")

    large.dblclick()
    viewer = page.locator("dialog.image-dialog")
    expect(viewer).to_contain_text("40 \u00d7 32 \u00d7 20 int16")
    expect(viewer.locator("img.slice-image")).to_have_attribute(
        "src", re.compile("axis=z&index=10")
    )
    viewer.locator(".close").click()
    expect(viewer).to_have_count(0)

    cell(page, "table", "Areas").dblclick()
    table = page.locator("dialog.table-dialog table.csv-table")
    expect(table.locator("thead th")).to_have_text(["label", "area"])
    expect(table.locator("tbody td:nth-child(1)")).to_have_text(["b", "c", "a"])
    table.get_by_role("button", name="area").click()  # numbers by value: 9 < 10.5 < 100
    expect(table.locator("tbody td:nth-child(2)")).to_have_text(["9", "10.5", "100"])
    expect(table.locator('th[aria-sort="ascending"]')).to_have_text("area")
    table.get_by_role("button", name="area").click()
    expect(table.locator("tbody td:nth-child(1)")).to_have_text(["a", "b", "c"])
    table.get_by_role("button", name="label").click()
    expect(table.locator("tbody td:nth-child(1)")).to_have_text(["a", "b", "c"])


def test_two_image_cells_compare_side_by_side_with_their_slices_in_step(
    page: Page, lab: Installation, compared: str
) -> None:
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/workflows/{compared}")
    small, large = cell(page, "small", "Scan"), cell(page, "large", "Scan")
    expect(small).to_have_attribute("data-state", "Done")
    small.click(modifiers=["Control"])
    expect(page.get_by_role("button", name="Compare")).to_be_hidden()
    large.click(modifiers=["Control"])
    page.get_by_role("button", name="Compare").click()
    dialog = page.locator("dialog.compare-dialog")
    pictures = dialog.locator("img.slice-image")
    expect(pictures).to_have_count(2)
    expect(dialog.locator("figcaption")).to_contain_text(["small: scan", "large: scan"])
    for i in range(2):
        expect(pictures.nth(i)).to_have_attribute("src", re.compile("axis=z&index=10"))
        expect(pictures.nth(i)).to_have_js_property("naturalWidth", 40)
    dialog.get_by_label("Slice").fill("7")
    for i in range(2):
        expect(pictures.nth(i)).to_have_attribute("src", re.compile("axis=z&index=7&"))
    pictures.nth(1).hover()
    page.mouse.wheel(0, 120)  # one step down: the next slice in both
    for i in range(2):
        expect(pictures.nth(i)).to_have_attribute("src", re.compile("axis=z&index=8&"))
    expect(dialog.get_by_label("Slice")).to_have_value("8")
    dialog.get_by_label("Window").fill("1500")
    dialog.get_by_label("Level").fill("750")
    for i in range(2):
        expect(pictures.nth(i)).to_have_attribute("src", re.compile("window=1500&level=750"))
    screenshot(page, "compare")
