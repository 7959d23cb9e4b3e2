"""Destructive buttons in a real browser: each asks first in the UI's own dialog, which names
what will happen and is used from the keyboard (it opens on Cancel; Escape cancels; Tab and
Enter confirm), or, where the action can be undone, acts at once and offers Undo. The
browser's own confirm() is never used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import confirm, log_in, screenshot
from tests.browser.test_ui import cell, run_row


@pytest.fixture
def asking(page: Page) -> Iterator[Page]:
    """The page, failing the test if the browser's own dialogs (confirm, alert) open."""
    native: list[str] = []

    def refuse(dialog: Dialog) -> None:
        native.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    yield page
    assert not native, f"the browser's own dialogs opened: {native}"


def test_abort_asks_in_a_keyboard_usable_dialog(asking: Page, lab: Installation) -> None:
    page = asking
    body = {"task": "Source", "outputs": {"value": 1000}, "name": "ask before abort"}
    lab.api("POST", "/api/workflows/Talk/runs", body)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Talk")
    page.get_by_label("Filter by run name").fill("ask before abort")
    talk = cell(page, "ask before abort", "Talk")
    expect(talk).to_have_attribute("data-state", "Running")
    serial = talk.get_attribute("data-serial")
    talk.click()
    panel = page.locator(".job-panel")
    panel.get_by_role("button", name="Abort").click()
    dialog = page.get_by_role("alertdialog", name=f"Abort job {serial}?")
    expect(dialog).to_contain_text("Its script is stopped")
    # It opens on Cancel; Escape cancels and nothing happens.
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    expect(talk).to_be_visible()
    screenshot(page, "confirm")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert lab.api("GET", f"/api/jobs/{serial}")["state"] == "Running"
    # Asked again: Tab reaches the action and Enter presses it.
    panel.get_by_role("button", name="Abort").click()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Abort job")).to_be_focused()
    page.keyboard.press("Enter")
    expect(talk).to_have_attribute("data-state", "Aborted")


def test_obsoleting_a_workflow_asks_first(asking: Page, lab: Installation) -> None:
    page = asking
    lab.api("POST", "/api/workflows", {"name": "Doomed", "remarks": ""})
    log_in(page, lab)
    doomed = page.locator('tr[data-workflow="Doomed"]')
    doomed.get_by_role("button", name="Obsolete").click()
    dialog = page.locator("dialog.confirm-dialog")
    expect(dialog).to_contain_text("Obsolete workflow Doomed?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert lab.api("GET", "/api/workflows/Doomed")["state"] == "Draft"
    doomed.get_by_role("button", name="Obsolete").click()
    confirm(page, "Obsolete workflow", says="Running jobs are stopped")
    expect(doomed.locator(".wf-state")).to_have_text("Obsolete")


def test_stopping_a_workflow_asks_first(asking: Page, lab: Installation) -> None:
    page = asking
    lab.api("POST", "/api/workflows", {"name": "Paused", "remarks": ""})
    lab.api("POST", "/api/workflows/Paused/start")
    log_in(page, lab)
    paused = page.locator('tr[data-workflow="Paused"]')
    paused.get_by_role("button", name="Stop").click()
    dialog = page.locator("dialog.confirm-dialog")
    expect(dialog).to_contain_text("Stop workflow Paused?")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert lab.api("GET", "/api/workflows/Paused")["state"] == "Started"
    paused.get_by_role("button", name="Stop").click()
    confirm(page, "Stop workflow", says="running jobs finish")
    expect(paused.locator(".wf-state")).to_have_text("Draft")


def test_deleting_a_task_and_removing_a_mapping_ask_first(
    asking: Page, lab: Installation, tmp_path: Path
) -> None:
    page = asking
    lab.api("POST", "/api/workflows", {"name": "Pruned", "remarks": ""})
    task = {"name": "Lone", "task_type": {"name": "Test.Source"}}
    lab.api("POST", "/api/workflows/Pruned/tasks", task)
    lab.api("PUT", "/api/userdata/mappings", {"root": "/Asked/", "folder": str(tmp_path)})
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Pruned/edit")
    lone = page.locator('.task-box[data-task="Lone"]')
    lone.get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog.confirm-dialog")
    expect(dialog).to_contain_text("Delete task Lone?")
    expect(dialog).to_contain_text("cannot be undone")
    page.keyboard.press("Escape")
    expect(lone).to_be_visible()
    lone.get_by_role("button", name="Delete").click()
    confirm(page, "Delete task")
    expect(lone).to_have_count(0)

    page.goto(lab.url + "/ui/#/userdata")
    mapping = page.locator('tr[data-root="/Asked/"]')
    mapping.get_by_role("button", name="Remove").click()
    confirm(page, "Remove mapping", says="the files stay where they are")
    expect(mapping).to_have_count(0)


def test_obsoleting_runs_offers_undo_and_unsharing_asks_first(
    asking: Page, lab: Installation
) -> None:
    page = asking
    lab.api("POST", "/api/workflows", {"name": "Undoable", "remarks": ""})
    source = {"name": "Source", "task_type": {"name": "Test.Source"}}
    lab.api("POST", "/api/workflows/Undoable/tasks", source)
    for name in ("u1", "u2"):
        body = {"task": "Source", "outputs": {"value": 1}, "name": name}
        lab.api("POST", "/api/workflows/Undoable/runs", body)
    lab.api("POST", "/api/users", {"name": "undo-ui", "password": "a good password"})
    lab.api("PUT", "/api/workflows/Undoable/shares", {"user": "undo-ui", "level": "operate"})
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Undoable")
    for name in ("u1", "u2"):
        run_row(page, name).get_by_label(f"Select run {name}").check()
    page.locator(".bulk").get_by_role("button", name="Obsolete").click()
    notice = page.locator(".notice")
    expect(notice).to_contain_text("Obsoleted: 2 of 2")
    expect(page.locator(".runs-row.run")).to_have_count(0)
    notice.get_by_role("button", name="Undo").click()
    expect(notice).to_contain_text("Restored: 2 of 2")
    expect(page.locator(".runs-row.run")).to_have_count(2)

    page.get_by_role("button", name="Share…").click()
    share = page.locator("dialog.share-dialog")
    # Stopping a share asks first (above the share dialog).
    share.get_by_role("button", name="Stop sharing with user undo-ui").click()
    dialog = page.locator("dialog.confirm-dialog")
    expect(dialog).to_contain_text("undo-ui loses operate access to Undoable")
    dialog.get_by_role("button", name="Cancel").click()
    expect(share.locator('tr.share[data-name="undo-ui"] .share-level')).to_have_value("operate")
    share.get_by_role("button", name="Stop sharing with user undo-ui").click()
    confirm(page, "Stop sharing")
    expect(share.locator('tr.share[data-name="undo-ui"]')).to_have_count(0)
    shares = lab.api("GET", "/api/workflows/Undoable/shares")["shares"]
    assert not [s for s in shares if s.get("user") == "undo-ui"]
