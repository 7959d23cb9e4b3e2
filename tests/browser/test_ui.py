"""The web UI in a real browser: log in, the workflows list, start a workflow, New Run and
cells turning Done without a reload, job information with its live log, restarting a job,
the workers and activity views, and hostile text shown as text."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import confirm, log_in, log_out, screenshot, use_a_token

HOSTILE_NAME = "<img src=x onerror=\"window.__pwned='name'\"><script>window.__pwned=1</script>"


def run_row(page: Page, name: str) -> Locator:
    return page.locator(".runs-row.run").filter(
        has=page.locator(".run-name .text", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def cell(page: Page, run: str, task: str) -> Locator:
    return run_row(page, run).locator(f'.cell[data-task="{task}"]')


def new_run(page: Page, *, name: str, value: int) -> None:
    """New Run at the source task Source (Test.Source asks the user for its output value)."""
    page.get_by_role("button", name="New Run").click()
    dialog = page.locator("dialog.new-run-dialog")
    dialog.get_by_label("Run name").fill(name)
    dialog.locator('.field[data-field="value"] input').fill(str(value))
    dialog.get_by_role("button", name="Start run").click()
    expect(dialog).to_be_hidden()


def test_log_in_with_the_admin_token_shows_the_workflows_list(
    page: Page, lab: Installation
) -> None:
    # A Draft workflow of this test's own (another test starts Linear, in any order).
    lab.api("POST", "/api/workflows", {"name": "Never started", "remarks": ""})
    page.goto(lab.url + "/")
    expect(page).to_have_url(lab.url + "/ui/")
    screenshot(page, "login")
    use_a_token(page)
    page.get_by_label("Admin token").fill("ry_admin_not-the-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".login-error")).to_contain_text("not valid")
    log_in(page, lab)
    talk = page.locator('tr[data-workflow="Talk"]')
    expect(talk.locator(".wf-state")).to_have_text("Started")
    expect(page.locator('tr[data-workflow="Never started"] .wf-state')).to_have_text("Draft")
    expect(talk.get_by_role("link", name="Export")).to_have_attribute(
        "href", "/api/workflows/Talk/export"
    )
    cookies = page.context.cookies()
    [session] = [c for c in cookies if c["name"] == "runyard_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    # The session survives a reload; logging out ends it.
    page.reload()
    expect(talk.locator(".wf-state")).to_have_text("Started")
    log_out(page)
    expect(page.get_by_label("Admin token")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Admin token")).to_be_visible()


def test_start_a_workflow_then_new_run_cells_turn_done_without_reload(
    page: Page, lab: Installation
) -> None:
    log_in(page, lab)
    linear = page.locator('tr[data-workflow="Linear"]')
    linear.get_by_role("button", name="Start").click()
    expect(linear.locator(".wf-state")).to_have_text("Started")
    linear.get_by_role("link", name="Linear").click()
    expect(page.locator(".runs-head")).to_contain_text("Double")
    page.evaluate("window.__notReloaded = true")
    new_run(page, name="first", value=4)
    new_run(page, name="second", value=-3)
    for task in ("Source", "Double", "Add"):
        expect(cell(page, "first", task)).to_have_attribute("data-state", "Done")
    # Add refuses negative numbers: the cell turns Failed, with the message in its title.
    expect(cell(page, "second", "Add")).to_have_attribute("data-state", "Failed")
    expect(cell(page, "second", "Add")).to_have_attribute("title", re.compile("negative value"))
    assert page.evaluate("window.__notReloaded") is True
    # Filters: by state and by name.
    page.get_by_label("Filter by job state").select_option("Failed")
    expect(page.locator(".runs-row.run")).to_have_count(1)
    expect(page.locator(".count")).to_have_text("1 run")
    page.get_by_label("Filter by job state").select_option("")
    page.get_by_label("Filter by run name").fill("FIR")
    expect(page.locator(".runs-row.run")).to_have_count(1)
    expect(run_row(page, "first")).to_be_visible()
    page.get_by_label("Filter by run name").fill("")
    expect(page.locator(".runs-row.run")).to_have_count(2)
    page.get_by_label("Sort").select_option("name")
    expect(page.locator(".runs-row.run .run-name .text").first).to_have_text("first")
    screenshot(page, "runs")


def test_job_information_follows_the_log_live_and_restarts_the_job(
    page: Page, lab: Installation
) -> None:
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Talk")
    expect(page.locator(".runs-head")).to_contain_text("Talk")
    new_run(page, name="talker", value=20)
    talk = cell(page, "talker", "Talk")
    expect(talk).to_have_attribute("data-state", "Running")
    talk.click()
    panel = page.locator(".job-panel")
    log = panel.locator("pre.log")
    # The log grows while the job runs, without a reload.
    expect(log).to_contain_text("tick 2 of 20")
    expect(panel.locator(".job-head .state")).to_have_text(re.compile("Running"))
    expect(log).to_contain_text("tick 20 of 20")
    expect(panel.locator(".job-head .state")).to_have_text(re.compile("Done"))
    expect(panel.locator(".values.inputs")).to_contain_text("20")
    expect(panel.locator(".job-facts")).to_contain_text("Attempt")
    screenshot(page, "job")
    first_serial = talk.get_attribute("data-serial")
    panel.get_by_role("button", name="Restart new job").click()
    confirm(page, "Restart new job", says=f"Job {first_serial} of task Talk in run talker")
    expect(page.locator(".notice")).to_contain_text("Restarted")
    # The table shows the new job in the cell; it runs again and ends Done.
    expect(talk).not_to_have_attribute("data-serial", first_serial or "")
    expect(talk).to_have_attribute("data-state", "Done", timeout=20_000)
    expect(cell(page, "talker", "Add")).to_have_attribute("data-state", "Done")
    # The job page shows the same information at its own address.
    page.goto(f"{lab.url}/ui/#/jobs/{first_serial}")
    expect(page.locator(".job-page .job-head .state")).to_have_text(re.compile("Obsolete"))
    # ... with the way back to its workflow's runs table.
    page.locator(".job-page a.workflow-link").click()
    expect(cell(page, "talker", "Talk")).to_have_attribute("data-state", "Done")


def test_abort_a_running_job(page: Page, lab: Installation) -> None:
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Talk")
    new_run(page, name="aborted", value=200)
    talk = cell(page, "aborted", "Talk")
    expect(talk).to_have_attribute("data-state", "Running")
    talk.click()
    page.locator(".job-panel").get_by_role("button", name="Abort").click()
    confirm(page, "Abort job", says="Its script is stopped")
    expect(talk).to_have_attribute("data-state", "Aborted")
    expect(page.locator(".job-panel .job-head .state")).to_have_text(re.compile("Aborted"))


def test_hostile_run_name_and_log_line_are_shown_as_text(page: Page, lab: Installation) -> None:
    lab.api(
        "POST",
        "/api/workflows/Talk/runs",
        {"task": "Source", "outputs": {"value": 0}, "name": HOSTILE_NAME},
    )
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Talk")
    page.get_by_label("Filter by run name").fill("onerror")
    row = page.locator(".runs-row.run")
    expect(row).to_have_count(1)
    expect(row.locator(".run-name .text")).to_have_text(HOSTILE_NAME)
    talk = row.locator('.cell[data-task="Talk"]')
    expect(talk).to_have_attribute("data-state", "Done")
    talk.click()
    log = page.locator(".job-panel pre.log")
    expect(log).to_contain_text("<img src=x onerror=\"window.__pwned='log'\"><script>")
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.goto(lab.url + "/ui/#/activity")
    expect(page.locator("table.activity")).to_contain_text("onerror")
    assert page.locator("main img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_workers_and_activity_views(page: Page, lab: Installation, tmp_path: Path) -> None:
    # A run of its own, so that Talk has jobs to count whichever tests ran before.
    lab.api("POST", "/api/workflows/Talk/runs", {"task": "Source", "outputs": {"value": 0}})
    log_in(page, lab)
    expect(page.locator('tr[data-workflow="Talk"] .chip').first).to_be_visible()
    screenshot(page, "workflows")
    page.get_by_role("link", name="Workers").click()
    worker = page.locator("table.workers tbody tr").first
    expect(worker).to_contain_text("connected")
    # Set limit: the UI's own dialog (no native prompt); a bad number is refused in it.
    worker.get_by_role("button", name="Set limit").click()
    limit = page.locator("dialog.limit-dialog")
    limit.get_by_label("No limit").uncheck()
    limit.get_by_label("At most (0: none)").fill("-1")
    limit.get_by_role("button", name="Set limit").click()
    expect(limit.locator(".form-error")).to_contain_text('"-1" is not a whole number')
    limit.get_by_label("At most (0: none)").fill("1")
    limit.get_by_role("button", name="Set limit").click()
    expect(limit).to_have_count(0)
    expect(worker.locator(".max-jobs")).to_contain_text("1 of 2 (limited)")
    screenshot(page, "workers")
    worker.get_by_role("button", name="Set limit").click()
    limit.get_by_label("No limit").check()
    limit.get_by_role("button", name="Set limit").click()
    expect(worker.locator(".max-jobs .limit")).to_have_text("2")
    # Installs: an admin forbids and allows them; an environment's state and install log.
    name = worker.get_attribute("data-worker")
    assert name
    worker.get_by_role("button", name="Forbid installs").click()
    expect(worker.get_by_role("button", name="Allow installs")).to_be_visible()
    assert not next(w for w in lab.api("GET", "/api/workers") if w["name"] == name)[
        "installs_allowed"
    ]
    worker.get_by_role("button", name="Allow installs").click()
    expect(worker.get_by_role("button", name="Forbid installs")).to_be_visible()
    lab.api(
        "POST",
        "/api/workers/environments",
        {"worker": name, "key": "0123abcd", "packages": [{"name": "Py.skimage",
         "version": "1.0.0.0", "install": "exit 3"}], "state": "Failed", "log": "exit 3: boom"},
    )  # fmt: skip
    environment = worker.locator('[data-environment="0123abcd"]')
    expect(environment).to_have_attribute("data-state", "Failed", timeout=15_000)
    environment.get_by_role("button", name="log").click()
    expect(environment.locator("pre.install-log")).to_contain_text("boom")
    # Install dependency package: the worker makes it at its next heartbeat.
    lab.cli("import", str(echo_package(tmp_path)))
    page.reload()
    worker.get_by_role("button", name="Install dependency package").click()
    page.locator("dialog.install-dialog select").select_option(label="Test.Dep.Echo 1.0.0.0")
    page.locator("dialog.install-dialog").get_by_role("button", name="Install").click()
    expect(page.locator(".notice")).to_contain_text("Test.Dep.Echo 1.0.0.0 on")
    made = worker.locator('[data-state="Ready"]')
    expect(made).to_have_count(1, timeout=60_000)
    made.get_by_role("button", name="log").click()
    expect(made.locator("pre.install-log")).to_contain_text("made by echo")
    page.get_by_role("link", name="Activity").click()
    expect(page.locator("table.activity")).to_contain_text("logged in to the web UI")
    screenshot(page, "activity")


def echo_package(root: Path) -> Path:
    """A dependency package whose install command only prints."""
    folder = root / "Test.Dep.Echo"
    folder.mkdir()
    metadata = {
        "package_format": "XFP-DEP1.0",
        "name": "Test.Dep.Echo",
        "version": "1.0.0.0",
        "display_name": "Echo",
        "summary": "Installs nothing; says so.",
        "install": "echo made by echo",
        "dependencies": [{"name": "Core.Host.Python3", "version": "3.11.0.0"}],
    }
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_import_a_package_from_the_workflows_list(page: Page, lab: Installation) -> None:
    log_in(page, lab)
    export = page.locator('tr[data-workflow="Talk"]').get_by_role("link", name="Export")
    with page.expect_download() as download:
        export.click()
    path = download.value.path()
    assert path is not None
    # Importing the exported package again is refused: its name is taken.
    page.locator("input.import-file").set_input_files(str(path))
    expect(page.locator(".notice.error")).to_contain_text("exists already")
