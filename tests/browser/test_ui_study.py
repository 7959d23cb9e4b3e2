"""The web UI's second part in a real browser: building a workflow in the editor and running
it, run actions and a selection of runs, an interactive form refused then accepted field by
field, New Run from a User Data image and its slices (and a scan's slices from the User Data
browser), and hostile Markdown in remarks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect

from runyard.images import Image
from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation
from tests.browser.conftest import confirm, log_in, screenshot
from tests.browser.test_ui import cell, new_run, run_row
from tests.conftest import WORKFLOWS

HOSTILE_REMARKS = (
    "Measures **bone** with `thresholds`.\n\n"
    "- see [the protocol](https://example.org/protocol)\n"
    "- [click](javascript:window.__pwned='link')\n\n"
    "<img src=x onerror=\"window.__pwned='remarks'\"><script>window.__pwned=1</script>"
)


def add_task(page: Page, task_type: str, name: str) -> None:
    form = page.locator("form.add-task-form")
    form.get_by_label("Task type").select_option(task_type)
    form.get_by_label("Task name").fill(name)
    form.get_by_role("button", name="Add task").click()
    expect(page.locator(f'.task-box[data-task="{name}"]')).to_be_visible()


def test_build_a_three_task_workflow_in_the_editor_then_run_it(
    page: Page, lab: Installation
) -> None:
    log_in(page, lab)
    page.get_by_role("button", name="New workflow…").click()
    dialog = page.locator("dialog.new-workflow-dialog")
    dialog.get_by_label("Workflow name").fill("Built")
    dialog.get_by_label("Remarks (Markdown)").fill("Doubles, then *adds* one.")
    dialog.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile("#/workflows/Built/edit$"))
    expect(page.locator(".remarks-box em")).to_have_text("adds")
    add_task(page, "Test.Source", "Source")
    # Double's value comes from Source's value (the only Int output upstream).
    page.locator("form.add-task-form").get_by_label("Task type").select_option("Test.Double")
    expect(page.locator("form.add-task-form").get_by_label("Output for value")).to_have_value(
        "Source\u0000value"
    )
    page.locator("form.add-task-form").get_by_label("Task name").fill("Double")
    page.locator("form.add-task-form").get_by_role("button", name="Add task").click()
    expect(page.locator('.task-box[data-task="Double"]')).to_be_visible()
    add_task(page, "Test.Add", "Add")
    add = page.locator('.task-box[data-task="Add"]')
    expect(add.get_by_label("Output for value")).to_have_value("Double\u0000value")
    # The offset is fixed: set it to 5 and save.
    add.get_by_label("Value of offset").fill("5")
    add.get_by_role("button", name="Save inputs").click()
    expect(page.locator(".notice")).to_contain_text("inputs saved")
    screenshot(page, "editor")
    page.locator(".toolbar").get_by_role("button", name="Start").click()
    expect(page.locator(".toolbar .wf-state")).to_have_text("Started")
    page.get_by_role("link", name="Runs table").click()
    expect(page.locator(".runs-head")).to_contain_text("Add")
    new_run(page, name="two", value=2)
    new_run(page, name="three", value=3)
    for task in ("Source", "Double", "Add"):
        expect(cell(page, "two", task)).to_have_attribute("data-state", "Done")
    cell(page, "three", "Add").click()
    panel = page.locator(".job-panel")
    expect(panel.locator(".values.inputs")).to_contain_text("5")
    expect(panel.locator(".provenance")).to_contain_text("Test.Add")
    expect(panel.locator(".history")).to_contain_text("created")

    # Run actions: rename, priority, copy; a selection: priority for both.
    row = run_row(page, "two")
    row.hover()
    row.get_by_role("button", name="Actions of run two").click()
    menu = page.locator(".run-menu")
    menu.get_by_label("New run name").fill("two renamed")
    menu.get_by_role("button", name="Rename").click()
    expect(run_row(page, "two renamed")).to_be_visible()
    run_row(page, "two renamed").get_by_role("button", name="Actions of run two renamed").click()
    page.locator(".run-menu").get_by_role("button", name="Copy").click()
    expect(run_row(page, "two renamed (copy)")).to_be_visible()
    expect(cell(page, "two renamed (copy)", "Add")).to_have_attribute("data-state", "Done")
    run_row(page, "three").get_by_label("Select run three").check()
    run_row(page, "two renamed").get_by_label("Select run two renamed").check()
    expect(page.locator(".bulk-count")).to_have_text("2 runs selected")
    page.get_by_label("Priority of the selected runs").select_option("high")
    expect(page.locator(".notice")).to_contain_text("Priority high: 2 of 2")
    page.locator(".bulk").get_by_label("Task to restart in the selected runs").select_option("Add")
    page.locator(".bulk").get_by_role("button", name="Restart jobs").click()
    confirm(page, "Restart jobs", says="Restart the Add jobs of 2 runs?")
    expect(page.locator(".notice")).to_contain_text("Restarted Add: 2 of 2")
    expect(cell(page, "three", "Add")).to_have_attribute("data-state", "Done")
    screenshot(page, "runs-actions")
    page.locator(".bulk").get_by_role("button", name="Obsolete").click()
    expect(page.locator(".count")).to_have_text("1 run")


def test_an_interactive_form_shows_the_errors_by_field_then_takes_good_values(
    page: Page, lab: Installation
) -> None:
    for folder in (WORKFLOWS / "Weighing",):
        import httpx

        httpx.post(
            lab.url + "/api/packages",
            content=folder_zip_bytes(folder),
            headers={"Authorization": f"Bearer {lab.admin_token}"},
            timeout=30,
        ).raise_for_status()
    lab.api("POST", "/api/workflows/Weighing/start")
    lab.api(
        "POST",
        "/api/workflows/Weighing/runs",
        {"task": "Source", "outputs": {"value": 4}, "name": "w"},
    )
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Weighing")
    weigh = cell(page, "w", "Weigh")
    expect(weigh).to_have_attribute("data-state", "Waiting")
    weigh.click()
    form = page.locator(".job-panel form.submit-form")
    expect(form.locator('.field[data-field="factor"] input')).to_have_attribute("max", "10")
    expect(form.locator('.field[data-field="measured"] input')).to_have_attribute("type", "date")
    form.locator('.field[data-field="factor"] input').fill("10.25")
    form.locator('.field[data-field="unit"] select').select_option("mm")
    form.get_by_role("button", name="Submit").click()
    factor_error = form.locator('.field[data-field="factor"] .field-error')
    expect(factor_error).not_to_be_empty()
    expect(form.locator('.field[data-field="measured"] .field-error')).to_contain_text("required")
    expect(form.locator('.field[data-field="unit"] .field-error')).to_be_empty()
    screenshot(page, "interactive-form")
    form.locator('.field[data-field="factor"] input').fill("2.5")
    form.locator('.field[data-field="measured"] input').fill("2026-11-27")
    form.get_by_role("button", name="Submit").click()
    expect(page.locator(".notice")).to_contain_text("Submitted")
    expect(weigh).to_have_attribute("data-state", "Done")
    expect(page.locator(".job-panel .values.outputs")).to_contain_text("10")


def test_new_run_from_a_user_data_image_and_its_slices(
    page: Page, lab: Installation, tmp_path: Path
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    x, y, z = np.meshgrid(np.arange(40), np.arange(32), np.arange(20), indexing="ij")
    ball = ((x - 20) ** 2 + (y - 16) ** 2 + (z - 10) ** 2 < 64).astype(np.int16) * 1000
    Image.from_array(ball).save(folder / "ball.omni")
    lab.api("PUT", "/api/userdata/mappings", {"root": "/Scans/", "folder": str(folder)})
    lab.api("POST", "/api/workflows", {"name": "Images", "remarks": ""})
    lab.api(
        "POST",
        "/api/workflows/Images/tasks",
        {"name": "Scan", "task_type": {"name": "XF.Data.SelectImage"}},
    )
    lab.api("POST", "/api/workflows/Images/start")
    log_in(page, lab)
    page.get_by_role("link", name="User Data").click()
    expect(page.locator(".ud-list")).to_contain_text("/Scans/")
    page.locator(".ud-list").get_by_role("link", name=re.compile("Scans")).click()
    expect(page.locator(".ud-list")).to_contain_text("ball.raw")
    screenshot(page, "userdata")
    # A scan in the browser opens in the slice viewer (the .raw beside it offers nothing).
    assert page.locator('tr[data-path="/Scans/ball.raw"] button').count() == 0
    scan_row = page.locator('tr[data-path="/Scans/ball.omni"]')
    scan_row.get_by_role("button", name="View slices").click()
    expect(page.locator("dialog.image-dialog h2")).to_have_text("/Scans/ball.omni")
    page.locator("dialog.image-dialog .close").click()
    page.goto(lab.url + "/ui/#/workflows/Images")
    page.get_by_role("button", name="New Run").click()
    dialog = page.locator("dialog.new-run-dialog")
    image = dialog.locator('.field[data-field="image"]')
    image.get_by_role("button", name="Browse User Data…").click()
    picker = page.locator("dialog.ud-dialog")
    picker.get_by_role("link", name=re.compile("Scans")).click()
    picker.locator('tr[data-path="/Scans/ball.omni"]').get_by_role("button", name="Choose").click()
    expect(image.locator("input.picked")).to_have_value("/Scans/ball.omni")
    expect(dialog.get_by_label("Run name")).to_have_value("ball.omni")
    dialog.get_by_role("button", name="Start run").click()
    scan = cell(page, "ball.omni", "Scan")
    expect(scan).to_have_attribute("data-state", "Done")
    scan.click()
    page.locator(".job-panel").get_by_role("button", name="View slices").click()
    viewer = page.locator("dialog.image-dialog")
    expect(viewer).to_contain_text("40 \u00d7 32 \u00d7 20 int16")
    image = viewer.locator("img.slice-image")
    expect(image).to_have_attribute("src", re.compile("axis=z&index=10"))
    # The slice arrived (a PNG 40 pixels wide): checked by Playwright's own script, not by
    # a string evaluated in the page, which the UI's Content-Security-Policy forbids.
    expect(image).to_have_js_property("naturalWidth", 40)
    viewer.get_by_label("Axis").select_option("x")
    expect(image).to_have_attribute("src", re.compile("axis=x&index=20"))
    expect(image).to_have_js_property("naturalWidth", 32)
    screenshot(page, "image")


def test_hostile_markdown_in_remarks_is_rendered_safely(page: Page, lab: Installation) -> None:
    lab.api("POST", "/api/workflows", {"name": "Remarked", "remarks": HOSTILE_REMARKS})
    log_in(page, lab)
    remarks = page.locator('tr[data-workflow="Remarked"] .remarks')
    expect(remarks.locator("strong")).to_have_text("bone")
    expect(remarks.locator("code")).to_have_text("thresholds")
    expect(remarks.get_by_role("link", name="the protocol")).to_have_attribute(
        "href", "https://example.org/protocol"
    )
    expect(remarks).to_contain_text("[click](javascript:window.__pwned='link')")
    assert remarks.locator("a[href^='javascript']").count() == 0
    assert page.locator("main img, main script").count() == 0
    expect(remarks).to_contain_text("<script>")
    assert page.evaluate("window.__pwned") is None
