"""Obsolete runs in the runs table, in a real browser: obsoleting a run (its menu, a
selection) takes it out of the table; *Show obsolete runs* lists them struck through and
labelled, with *Restore* as their only action (menu, selection; their jobs' panel offers
none), and restoring brings them back."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_ui import cell, run_row
from tests.conftest import WORKFLOWS


def diamond(lab: Installation) -> None:
    """Diamond (Source -> Left, Right -> Join), started, with the runs keep, drop one and
    drop two, each Done at its source."""
    httpx.post(
        lab.url + "/api/packages",
        content=folder_zip_bytes(WORKFLOWS / "Diamond"),
        headers={"Authorization": f"Bearer {lab.admin_token}"},
        timeout=30,
    ).raise_for_status()
    lab.api("POST", "/api/workflows/Diamond/start")
    for name in ("keep", "drop one", "drop two"):
        body = {"task": "Source", "outputs": {"value": 1}, "name": name}
        lab.api("POST", "/api/workflows/Diamond/runs", body)


def test_obsolete_runs_can_be_shown_and_restored(page: Page, lab: Installation) -> None:
    diamond(lab)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Diamond")
    expect(page.locator(".runs-row.run")).to_have_count(3)
    expect(cell(page, "keep", "Join")).to_have_attribute("data-state", "Done")
    count = page.locator(".count")

    # Obsolete one run from its menu, another from a selection: both leave the table.
    run_row(page, "drop one").get_by_role("button", name="Actions of run drop one").click()
    page.locator(".run-menu").get_by_role("button", name="Obsolete").click()
    expect(page.locator(".notice").last).to_contain_text("Run drop one is obsolete")
    expect(count).to_have_text("2 runs")
    run_row(page, "drop two").get_by_label("Select run drop two").check()
    expect(page.locator(".bulk .bulk-restore")).to_be_hidden()
    page.locator(".bulk").get_by_role("button", name="Obsolete").click()
    expect(page.locator(".notice").last).to_contain_text("Obsoleted: 1 of 1")
    expect(count).to_have_text("1 run")
    expect(page.locator(".runs-row.run")).to_have_count(1)

    # Shown with the live runs: struck through and labelled.
    page.get_by_label("Show obsolete runs").select_option("include")
    expect(count).to_have_text("3 runs")
    expect(page.locator(".runs-row.run.obsolete")).to_have_count(2)
    expect(run_row(page, "drop one")).to_have_class(re.compile(r"\bobsolete\b"))
    expect(run_row(page, "drop one").locator(".obsolete-mark")).to_have_text("obsolete")
    expect(run_row(page, "keep").locator(".obsolete-mark")).to_have_count(0)
    screenshot(page, "runs-obsolete")

    # Only the obsolete runs; Restore is all their menu offers.
    page.get_by_label("Show obsolete runs").select_option("only")
    expect(count).to_have_text("2 obsolete runs")
    expect(page.locator(".runs-row.run")).to_have_count(2)
    run_row(page, "drop one").get_by_role("button", name="Actions of run drop one").click()
    menu = page.locator(".run-menu")
    expect(menu.locator("button")).to_have_count(1)
    expect(menu.get_by_role("button", name="Restore")).to_be_visible()
    expect(menu.get_by_label("New run name")).to_have_count(0)
    menu.get_by_role("button", name="Restore").click()
    expect(page.locator(".notice").last).to_contain_text("Run drop one restored")
    expect(count).to_have_text("1 obsolete run")
    expect(page.locator(".runs-row.run")).to_have_count(1)

    # A job of an obsolete run: its panel offers no action.
    cell(page, "drop two", "Join").click()
    panel = page.locator(".job-panel")
    expect(panel.locator(".obsolete-note")).to_contain_text("obsolete run")
    expect(panel.locator(".job-head .state")).to_contain_text("Done")
    for action in ("Restart new job", "Rename", "Abort"):
        expect(panel.get_by_role("button", name=action)).to_have_count(0)

    # A selection of obsolete runs: Restore only.
    run_row(page, "drop two").get_by_label("Select run drop two").check()
    bulk = page.locator(".bulk")
    expect(bulk.locator(".bulk-live")).to_be_hidden()
    bulk.get_by_role("button", name="Restore").click()
    expect(page.locator(".notice").last).to_contain_text("Restored: 1 of 1")
    expect(count).to_have_text("0 obsolete runs")

    page.get_by_label("Show obsolete runs").select_option("exclude")
    expect(count).to_have_text("3 runs")
    expect(page.locator(".runs-row.run.obsolete")).to_have_count(0)
    expect(cell(page, "drop two", "Join")).to_have_attribute("data-state", "Done")
