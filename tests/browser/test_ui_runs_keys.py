"""The runs table's address and keyboard, in a real browser: the filters, the sort and the
open job are in the address (replaced as they change, so no history entry per keystroke) and
a reload restores them; opening a job pushes a history entry, so Back closes it and Forward
opens it again, without drawing the table anew; arrow keys, Home/End and Page Up/Down move
the active cell (scrolling the virtual table), Enter opens its job, Escape closes it, Space
picks it into the selection of jobs; the active cell survives the rows being drawn again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, new_workflow, screenshot
from tests.browser.test_ui import cell

# Created in this order: the sort order differs from the order of the names.
NAMES = ["gamma", "alpha", "xi", "delta", "beta"]
MANY = 60  # runs of the workflow Lots: more than a screen of rows


@pytest.fixture(scope="module")
def greek(lab: Installation) -> str:
    """Greek: one task Source (Test.Source), a Done job in each run of NAMES."""
    new_workflow(lab, "Greek", [{"name": "Source", "task_type": {"name": "Test.Source"}}])
    for value, name in enumerate(NAMES):
        lab.api(
            "POST",
            "/api/workflows/Greek/runs",
            {"task": "Source", "outputs": {"value": value}, "name": name},
        )
    return "Greek"


@pytest.fixture(scope="module")
def lots(lab: Installation) -> str:
    """Lots: two tasks, Source and Other (both Test.Source, Other fixed at 7), MANY runs r00..
    with a Done Source job (Other has no job)."""
    other = {"name": "Other", "task_type": {"name": "Test.Source"}}
    new_workflow(lab, "Lots", [{"name": "Source", "task_type": {"name": "Test.Source"}}, other])
    for n in range(MANY):
        lab.api(
            "POST",
            "/api/workflows/Lots/runs",
            {"task": "Source", "outputs": {"value": n}, "name": f"r{n:02}"},
        )
    return "Lots"


def shown_runs(page: Page) -> list[str]:
    rows = page.locator(".runs-body .runs-row.run")
    ordered = sorted(rows.all(), key=lambda row: int(row.get_attribute("data-index") or 0))
    return [row.locator(".run-name .text").inner_text() for row in ordered]


def serial_of(page: Page, run: str, task: str = "Source") -> str:
    found = cell(page, run, task).get_attribute("data-serial")
    assert found
    return found


def test_an_address_with_filters_sort_and_job_is_restored_on_reload(
    page: Page, lab: Installation, greek: str
) -> None:
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/workflows/{greek}")
    expect(page.locator(".runs-body .runs-row.run")).to_have_count(len(NAMES))
    assert shown_runs(page) == NAMES
    gamma = serial_of(page, "gamma")

    page.goto(f"{lab.url}/ui/#/workflows/{greek}?name=a&state=Done&sort=name&job={gamma}")
    page.reload()
    expect(page.get_by_label("Filter by run name")).to_have_value("a")
    expect(page.get_by_label("Filter by job state")).to_have_value("Done")
    expect(page.get_by_label("Sort")).to_have_value("name")
    expect(page.locator(".runs-body .runs-row.run")).to_have_count(4)  # not xi
    assert shown_runs(page) == ["alpha", "beta", "delta", "gamma"]
    expect(page.locator(".job-panel")).to_be_visible()
    expect(page.locator(".job-panel h2")).to_have_text(re.compile(rf"^Job {gamma}\b"))

    # Typing a filter replaces the address: no history entry per keystroke.
    entries = page.evaluate("history.length")
    page.get_by_label("Filter by run name").press("End")
    page.get_by_label("Filter by run name").press_sequentially("lph")
    expect(page).to_have_url(re.compile(r"name=alph(&|$)"))
    expect(page.locator(".runs-body .runs-row.run")).to_have_count(1)
    page.get_by_label("Sort").select_option("sort_order")
    expect(page).not_to_have_url(re.compile(r"sort="))
    assert page.evaluate("history.length") == entries
    assert f"job={gamma}" in page.url

    # Closing the job takes it out of the address (it was not opened by a click here).
    page.locator(".job-panel .close").click()
    expect(page.locator(".job-panel")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"job="))
    page.reload()
    expect(page.get_by_label("Filter by run name")).to_have_value("alph")
    expect(page.locator(".runs-body .runs-row.run")).to_have_count(1)
    expect(page.locator(".job-panel")).to_be_hidden()


def test_back_closes_a_job_opened_by_a_click_and_forward_opens_it_again(
    page: Page, lab: Installation, greek: str
) -> None:
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/workflows/{greek}?sort=name")
    expect(page.locator(".runs-body .runs-row.run")).to_have_count(len(NAMES))
    page.evaluate("document.querySelector('.runs-scroll').dataset.mark = 'same'")
    beta = serial_of(page, "beta")

    cell(page, "beta", "Source").click()
    expect(page.locator(".job-panel h2")).to_have_text(re.compile(rf"^Job {beta}\b"))
    expect(page).to_have_url(re.compile(rf"\?sort=name&job={beta}$"))
    page.go_back()
    expect(page.locator(".job-panel")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"\?sort=name$"))
    page.go_forward()
    expect(page.locator(".job-panel h2")).to_have_text(re.compile(rf"^Job {beta}\b"))
    # The table was not drawn anew: the same element, the sort kept.
    expect(page.locator(".runs-scroll")).to_have_attribute("data-mark", "same")
    assert shown_runs(page) == sorted(NAMES)

    # Escape closes it, going back to the entry before it.
    page.locator(".runs-scroll").focus()
    page.keyboard.press("Escape")
    expect(page.locator(".job-panel")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"\?sort=name$"))


def test_arrow_keys_move_the_active_cell_enter_opens_escape_closes_space_picks(
    page: Page, lab: Installation, lots: str
) -> None:
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/workflows/{lots}")
    table = page.get_by_role("grid")
    expect(cell(page, "r00", "Source")).to_have_attribute("data-state", "Done")
    table.focus()
    active = page.locator(".runs-body .cell.active")
    expect(active).to_have_attribute("data-serial", serial_of(page, "r00"))
    expect(table).to_have_attribute("aria-activedescendant", "runs-active-cell")
    expect(active).to_have_attribute("id", "runs-active-cell")

    page.keyboard.press("ArrowRight")
    expect(active).to_have_class(re.compile(r"\bnone\b"))  # Other: no job
    page.keyboard.press("ArrowRight")  # the last column: stays
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Home")
    r02 = serial_of(page, "r02")
    expect(active).to_have_attribute("data-serial", r02)

    # Enter opens the job; Escape closes it.
    page.keyboard.press("Enter")
    expect(page.locator(".job-panel h2")).to_have_text(re.compile(rf"^Job {r02}\b"))
    expect(page).to_have_url(re.compile(rf"job={r02}$"))
    page.keyboard.press("Escape")
    expect(page.locator(".job-panel")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"job="))

    # Space picks the cell into the selection of jobs, and drops it again.
    page.keyboard.press("Space")
    expect(active).to_have_attribute("aria-selected", "true")
    expect(active).to_have_class(re.compile(r"\bpicked\b"))
    expect(page.locator(".jobs-bulk .jobs-count")).to_have_text("1 job selected")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    expect(page.locator(".jobs-bulk .jobs-count")).to_have_text("2 jobs selected")
    screenshot(page, "runs-keyboard")
    page.keyboard.press("Space")
    expect(page.locator(".jobs-bulk .jobs-count")).to_have_text("1 job selected")
    expect(cell(page, "r02", "Source")).to_have_attribute("aria-selected", "true")


def test_the_active_cell_scrolls_into_view_and_survives_the_rows_drawn_again(
    page: Page, lab: Installation, lots: str
) -> None:
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/workflows/{lots}")
    table = page.get_by_role("grid")
    expect(cell(page, "r00", "Source")).to_have_attribute("data-state", "Done")
    table.focus()
    active = page.locator(".runs-body .cell.active")
    # The last run is not drawn until the table scrolls to it.
    expect(page.locator(".runs-body .runs-row.run", has_text="r59")).to_have_count(0)
    page.keyboard.press("Control+End")
    expect(active).to_have_attribute("data-serial", serial_of(page, "r59"))
    expect(active).to_be_in_viewport()
    page.keyboard.press("PageUp")
    page.keyboard.press("PageUp")
    expect(active).to_be_in_viewport()
    index = int(active.locator("xpath=..").get_attribute("data-index") or -1)
    assert 0 < index < MANY - 2
    page.keyboard.press("Control+Home")
    expect(active).to_have_attribute("data-serial", serial_of(page, "r00"))
    expect(page.locator(".runs-body .runs-row.run", has_text="r59")).to_have_count(0)

    # A new run: the rows in view are fetched and drawn again; the active cell and the focus
    # are kept.
    before = active.element_handle()
    lab.api(
        "POST",
        "/api/workflows/Lots/runs",
        {"task": "Source", "outputs": {"value": 1}, "name": "r60"},
    )
    expect(page.locator(".filters .count")).to_have_text(f"{MANY + 1} runs")
    page.wait_for_function("(old) => !old.isConnected", arg=before)
    expect(active).to_have_attribute("data-serial", serial_of(page, "r00"))
    assert page.evaluate("document.activeElement.classList.contains('runs-scroll')")
    page.keyboard.press("ArrowDown")
    expect(active).to_have_attribute("data-serial", serial_of(page, "r01"))


def test_the_user_data_folder_browsed_is_in_the_address(
    page: Page, lab: Installation, tmp_path: Path
) -> None:
    (tmp_path / "deep" / "deeper").mkdir(parents=True)
    (tmp_path / "deep" / "found.txt").write_text("here")
    lab.api("PUT", "/api/userdata/mappings", {"root": "/Addressed/", "folder": str(tmp_path)})
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/#/userdata?path=/Addressed/deep/")
    expect(page.locator(".ud-path")).to_contain_text("deep")
    expect(page.locator('tr[data-path="/Addressed/deep/found.txt"]')).to_be_visible()
    page.locator(".ud-list").get_by_role("link", name="deeper/").click()
    expect(page).to_have_url(re.compile(r"#/userdata\?path=%2FAddressed%2Fdeep%2Fdeeper%2F$"))
    page.reload()
    expect(page.locator(".ud-list")).to_contain_text("This folder is empty.")
    page.locator(".ud-path").get_by_role("link", name="User Data").click()
    expect(page).to_have_url(re.compile(r"#/userdata$"))
