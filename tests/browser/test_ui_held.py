"""Why work waits, in a real browser: a reduce task held back by runs with upstream work
pending says so, with the runs it waits for, beside the runs table's filters and in its job's
panel (answering the run that holds it lets the next reduce job run); a Running job that its
worker claimed but has not started reads "Claimed" until the worker says the script started."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, new_workflow, output_of
from tests.browser.test_ui import cell

WHY = "waiting for 1 run (Waiting: 1)"


def held_workflow(lab: Installation) -> None:
    """Held: Source -> Double -> Table (a reduce of Double's values), started."""
    title = {"key": "title", "source": {"mode": "fixed", "fixed_value": "doubled"}}
    tasks = [
        {"name": "Source", "task_type": {"name": "Test.Source"}},
        {"name": "Double", "task_type": {"name": "Test.Double"},
         "inputs": [{"key": "value", "source": output_of("Source")}]},
        {"name": "Table", "task_type": {"name": "Test.Table"},
         "inputs": [{"key": "values", "source": output_of("Double")}, title]},
    ]  # fmt: skip
    new_workflow(lab, "Held", tasks)


def test_a_reduce_held_back_says_why_in_the_table_and_in_its_panel(
    page: Page, lab: Installation
) -> None:
    held_workflow(lab)
    one = {"task": "Source", "outputs": {"value": 1}, "name": "one"}
    lab.api("POST", "/api/workflows/Held/runs", one)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Held")
    table = page.locator('.reduce-job[data-task="Table"]')
    expect(table).to_have_attribute("data-state", "Done")
    expect(table).not_to_have_class(re.compile(r"\bheld\b"))
    done = table.get_attribute("data-serial")

    # A run whose source asks the user: the next Table job is held back, and says why.
    lab.api("POST", "/api/workflows/Held/runs", {"task": "Source", "name": "asks"})
    expect(table).to_have_class(re.compile(r"\bheld\b"))
    expect(table.locator(".held-note")).to_have_text(f"held back: {WHY}")
    expect(table).to_have_attribute("title", re.compile(f"held back: {re.escape(WHY)}"))
    table.click()
    panel = page.locator(".job-panel")
    expect(panel.locator(".job-head h2")).to_contain_text(f"Job {done}")
    expect(panel.locator(".held-note")).to_have_text(f"Next job held back: {WHY}")

    # Answered: the next Table job runs, and nothing is held back any more.
    cell(page, "asks", "Source").click()
    panel.locator('.field[data-field="value"] input').fill("2")
    panel.get_by_role("button", name="Submit").click()
    expect(table).not_to_have_attribute("data-serial", done or "")
    expect(table).to_have_attribute("data-state", "Done")
    expect(table).not_to_have_class(re.compile(r"\bheld\b"))
    expect(table.locator(".held-note")).to_have_count(0)


def test_a_job_claimed_but_not_started_shows_claimed_until_its_script_starts(
    page: Page, lab: Installation
) -> None:
    """A worker of the test's own (over HTTP, providing Tool.A, which the lab's worker lacks)
    claims the Tool job and says nothing more: the job is Running, but only claimed."""
    tasks = [
        {"name": "Source", "task_type": {"name": "Test.Source"}},
        {"name": "Tool", "task_type": {"name": "Test.NeedsTool"},
         "inputs": [{"key": "value", "source": output_of("Source")}]},
    ]  # fmt: skip
    new_workflow(lab, "Claims", tasks)
    run = {"task": "Source", "outputs": {"value": 1}, "name": "claimed"}
    # High priority: the test's worker claims this job before any other test's Queued one.
    run_id = lab.api("POST", "/api/workflows/Claims/runs", run)["run_id"]
    lab.api("PUT", f"/api/runs/{run_id}/priority", {"priority": "high"})
    token = lab.api("POST", "/api/tokens/worker", {"name": "zz-claims"})["token"]
    worker = {"Authorization": f"Bearer {token}"}
    register = {"name": "zz-claims", "provides": ["Tool.A"], "max_jobs": 1}
    httpx.post(lab.url + "/api/workers/register", json=register, headers=worker).raise_for_status()
    [claim] = httpx.post(
        lab.url + "/api/workers/claim", json={"worker": "zz-claims", "max": 1}, headers=worker
    ).json()
    serial = claim["job"]["serial"]
    assert claim["job"]["state"] == "Running"

    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Claims")
    tool = cell(page, "claimed", "Tool")
    expect(tool).to_have_attribute("data-serial", str(serial))
    expect(tool).to_have_attribute("data-state", "Running")
    expect(tool).to_have_attribute("data-claimed", "true")
    expect(tool.locator(".label")).to_have_text("Claimed")
    expect(tool).to_have_attribute("title", re.compile("Claimed, not started"))
    tool.click()
    panel = page.locator(".job-panel")
    expect(panel.locator(".job-head .claimed-tag")).to_have_text("claimed, not started")
    expect(panel.locator(".job-facts")).to_contain_text("Running (claimed, not started")

    # The worker says the script started: Running, plainly.
    beat = {"serial": serial, "lease": claim["lease"]["lease"], "started": True}
    httpx.post(
        lab.url + "/api/workers/heartbeat",
        json={"worker": "zz-claims", "beats": [beat]},
        headers=worker,
    ).raise_for_status()
    expect(panel.locator(".job-head .claimed-tag")).to_have_count(0)
    expect(tool.locator(".label")).to_have_text("Running")
    expect(tool).not_to_have_attribute("data-claimed", "true")
    lab.api("POST", f"/api/jobs/{serial}/state", {"state": "Aborted"})
