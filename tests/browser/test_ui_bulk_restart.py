"""Restarting many jobs from the runs table, in a real browser: shift-click picks a range of
cells, ctrl-click picks or drops one, "Select jobs" picks every job in a state and a column's
heading narrows it to that task; Restart selected asks first, then says how many jobs were
restarted and why the others were skipped."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import confirm, log_in, new_workflow, output_of, screenshot
from tests.browser.test_ui import cell

VALUES = {"b1": 1, "b2": -1, "b3": -2, "b4": 3, "b5": -4}  # Add fails on negative values


def batch_workflow(lab: Installation) -> None:
    """Batch: Source -> Double -> Add (offset 10), started, with the runs of VALUES."""
    offset = {"key": "offset", "source": {"mode": "fixed", "fixed_value": 10}}
    tasks = [
        {"name": "Source", "task_type": {"name": "Test.Source"}},
        {"name": "Double", "task_type": {"name": "Test.Double"},
         "inputs": [{"key": "value", "source": output_of("Source")}]},
        {"name": "Add", "task_type": {"name": "Test.Add"},
         "inputs": [{"key": "value", "source": output_of("Double")}, offset]},
    ]  # fmt: skip
    new_workflow(lab, "Batch", tasks)
    for name, value in VALUES.items():
        body = {"task": "Source", "outputs": {"value": value}, "name": name}
        lab.api("POST", "/api/workflows/Batch/runs", body)


def test_pick_cells_by_click_ranges_and_state_then_restart_them_together(
    page: Page, lab: Installation
) -> None:
    batch_workflow(lab)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Batch")
    for name, value in VALUES.items():
        state = "Failed" if value < 0 else "Done"
        expect(cell(page, name, "Add")).to_have_attribute("data-state", state)
    bar = page.locator(".jobs-bulk")
    expect(bar).to_be_hidden()

    # A click opens the job; shift-click picks the range from there (rows and columns).
    cell(page, "b1", "Double").click()
    expect(page.locator(".job-panel")).to_be_visible()
    cell(page, "b3", "Add").click(modifiers=["Shift"])
    expect(bar.locator(".jobs-count")).to_have_text("6 jobs selected")
    expect(page.locator(".cell.job.picked")).to_have_count(6)
    # Ctrl-click drops a cell, or picks one.
    cell(page, "b1", "Double").click(modifiers=["Control"])
    cell(page, "b1", "Add").click(modifiers=["Control"])
    cell(page, "b3", "Double").click(modifiers=["Control"])
    expect(bar.locator(".jobs-count")).to_have_text("3 jobs selected")
    expect(cell(page, "b2", "Double")).to_have_class(re.compile(r"\bpicked\b"))
    expect(cell(page, "b1", "Add")).not_to_have_class(re.compile(r"\bpicked\b"))
    screenshot(page, "runs-jobs-selected")

    # Restart: asked first; b2's Add is made again by the restart of b2's Double, so it is
    # skipped, with the reason.
    b2_add = cell(page, "b2", "Add").get_attribute("data-serial")
    bar.get_by_role("button", name="Restart selected").click()
    confirm(page, "Restart jobs", says="Restart 3 selected jobs?")
    expect(page.locator(".notice")).to_contain_text("Restarted 2 jobs; skipped 1")
    skipped = bar.locator(f'.skipped li[data-serial="{b2_add}"]')
    expect(skipped).to_contain_text(f"job {b2_add}: ")
    expect(skipped).to_contain_text("Obsolete")
    expect(bar.locator(".jobs-count")).to_have_text("")
    expect(page.locator(".cell.job.picked")).to_have_count(0)
    for name in ("b2", "b3"):
        expect(cell(page, name, "Add")).not_to_have_attribute("data-serial", b2_add or "")
        expect(cell(page, name, "Add")).to_have_attribute("data-state", "Failed")

    # Every Failed job, narrowed to the column Add (its heading): a filter, sent as such.
    page.get_by_label("Select jobs by state").select_option("Failed")
    expect(bar.locator(".jobs-count")).to_have_text("All Failed jobs selected (every live run)")
    page.locator('.runs-head .cell.head[data-task="Add"]').click()
    expect(bar.locator(".jobs-count")).to_have_text(
        "All Failed jobs of Add selected (every live run)"
    )
    expect(page.locator(".cell.job.picked")).to_have_count(3)
    before = {name: cell(page, name, "Add").get_attribute("data-serial") for name in VALUES}
    bar.get_by_role("button", name="Restart selected").click()
    confirm(page, "Restart jobs", says="Restart all Failed jobs of Add")
    expect(page.locator(".notice")).to_contain_text("Restarted 3 jobs")
    expect(bar.locator(".skipped")).to_have_count(0)
    for name, value in VALUES.items():
        changed = expect(cell(page, name, "Add"))
        if value < 0:
            changed.not_to_have_attribute("data-serial", before[name] or "")
        else:
            changed.to_have_attribute("data-serial", before[name] or "")
