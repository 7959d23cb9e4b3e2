"""The timeline, notices and everyday ergonomics in a real browser: a finished workflow's jobs
are bars in its worker's lane and a bar opens its job; a job that fails raises an in-page
notice with a link to it; the page is dark when the system is; at 800 px nothing sticks out
sideways."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, new_workflow, output_of, screenshot

TASKS: list[dict[str, Any]] = [
    {"name": "Source", "task_type": {"name": "Test.Source"}},
    {
        "name": "Double",
        "task_type": {"name": "Test.Double"},
        "inputs": [{"key": "value", "source": output_of("Source")}],
    },
    {
        "name": "Add",
        "task_type": {"name": "Test.Add"},
        "inputs": [
            {"key": "value", "source": output_of("Double")},
            {"key": "offset", "source": {"mode": "fixed", "fixed_value": 1}},
        ],
    },
]
# Timed also sleeps for its run's value in seconds: bars one can see.
NAP = {
    "name": "Nap",
    "task_type": {"name": "Test.Sleep"},
    "inputs": [{"key": "seconds", "source": output_of("Source")}],
}


def new_run(lab: Installation, workflow: str, name: str, value: int) -> None:
    body = {"task": "Source", "outputs": {"value": value}, "name": name}
    lab.api("POST", f"/api/workflows/{workflow}/runs", body)


def timed(lab: Installation) -> None:
    """The workflow Timed, with two runs (made once) whose jobs the lab's worker runs."""
    if not any(w["name"] == "Timed" for w in lab.api("GET", "/api/workflows")):
        new_workflow(lab, "Timed", [*TASKS, NAP])
        new_run(lab, "Timed", "one", 1)
        new_run(lab, "Timed", "two", 2)


@pytest.fixture
def context_page(browser: Browser) -> Iterator[Any]:
    """A page in a browser context made with ``options`` (a dark scheme, a narrow window)."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Page:
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"errors in the page's scripts: {errors}"


def test_the_timeline_shows_a_finished_workflows_jobs_per_worker_and_a_bar_opens_its_job(
    page: Page, lab: Installation
) -> None:
    timed(lab)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Timed")
    page.get_by_role("link", name="Timeline").click()
    expect(page).to_have_url(re.compile("#/workflows/Timed/timeline$"))
    # Live: the bars turn Done as the worker runs the jobs (Double, Add, Nap of two runs).
    expect(page.locator(".tl-bar.s-done")).to_have_count(6)
    # The lab is shared by this process's browser tests: other tests may register workers.
    [worker] = {bar["worker"] for bar in lab.api("GET", "/api/workflows/Timed/timeline")["jobs"]}
    expect(page.locator(".tl-lane")).to_have_count(1)
    expect(page.locator(".tl-lane")).to_have_attribute("data-lane", worker)
    expect(page.locator(".throughput h3")).to_contain_text("last hour: 6")
    # Per task: a lane of Double, one of Add.
    page.locator("select.tl-by").select_option("task")
    expect(page.locator(".tl-lane")).to_have_count(3)
    lanes = page.locator(".tl-lane").evaluate_all("lanes => lanes.map(l => l.dataset.lane)")
    assert sorted(lanes) == ["Add", "Double", "Nap"]
    page.locator("select.tl-by").select_option("worker")
    # Zooming in halves the time in view, a wheel turn zooms out, Fit shows it all again.
    chart = page.locator("svg.tl-svg")
    whole = int(chart.get_attribute("data-span") or 0)
    page.get_by_role("button", name="+").click()
    expect(chart).not_to_have_attribute("data-span", str(whole))
    half = int(chart.get_attribute("data-span") or 0)
    assert abs(half - whole / 2) <= 1
    chart.hover()
    page.mouse.wheel(0, 100)
    expect(chart).not_to_have_attribute("data-span", str(half))
    page.get_by_role("button", name="Fit").click()
    expect(chart).to_have_attribute("data-span", str(whole))
    screenshot(page, "timeline")
    bar = page.locator(".tl-lane .tl-bar").first
    serial = bar.get_attribute("data-serial")
    expect(bar.locator("title")).to_contain_text(f"Job {serial}: ")
    expect(bar.locator("title")).to_contain_text(f"worker: {worker}")
    bar.locator(".tl-run").click()
    expect(page).to_have_url(re.compile(f"#/jobs/{serial}$"))
    expect(page.locator(".job-page")).to_contain_text(f"{serial}")


def test_a_failing_job_raises_an_in_page_notice_that_links_to_it(
    page: Page, lab: Installation
) -> None:
    new_workflow(lab, "Failing", TASKS)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Failing")
    expect(page.locator(".wf-state")).to_have_text("Started")  # its live changes arrive
    new_run(lab, "Failing", "negative", -3)  # Add refuses a negative value
    failed = page.locator(".live-notice.failed")
    expect(failed).to_contain_text(re.compile(r"Job \d+ \(Add, run negative\) of Failing failed"))
    expect(page.locator(".live-notice.finished")).to_contain_text("Workflow Failing finished")
    link = failed.get_by_role("link")
    serial = re.search(r"\d+", link.inner_text())
    assert serial is not None
    link.click()
    expect(page).to_have_url(re.compile(f"#/jobs/{serial.group()}$"))
    expect(failed).to_have_count(0)


def test_desktop_notifications_are_asked_for_once_and_can_be_turned_off(
    context_page: Any, lab: Installation
) -> None:
    page = context_page(permissions=["notifications"])
    log_in(page, lab)
    button = page.locator("header.top .desktop-notifications")
    expect(button).to_have_text("Desktop notifications")
    button.click()
    expect(button).to_have_text("Desktop notifications: on")
    page.reload()
    expect(button).to_have_text("Desktop notifications: on")
    button.click()
    expect(button).to_have_text("Desktop notifications")


def background_of(page: Page, selector: str) -> tuple[int, ...]:
    colour = page.locator(selector).first.evaluate("el => getComputedStyle(el).backgroundColor")
    return tuple(int(n) for n in re.findall(r"\d+", colour)[:3])


def test_the_page_is_dark_when_the_system_is(context_page: Any, lab: Installation) -> None:
    timed(lab)
    page = context_page(color_scheme="dark", viewport={"width": 1400, "height": 820})
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Timed")
    expect(page.locator(".runs-row.run")).to_have_count(2)
    assert sum(background_of(page, "body")) < 3 * 60
    assert sum(background_of(page, ".runs-scroll")) < 3 * 60
    screenshot(page, "dark")
    light = context_page(color_scheme="light")
    log_in(light, lab)
    assert sum(background_of(light, "body")) > 3 * 200


@pytest.mark.parametrize(
    "address", ["#/workflows", "#/workflows/Timed", "#/workflows/Timed/timeline"]
)
def test_at_800_px_the_page_has_no_sideways_overflow(
    context_page: Any, lab: Installation, address: str
) -> None:
    timed(lab)
    page = context_page(viewport={"width": 800, "height": 900})
    log_in(page, lab)
    page.goto(f"{lab.url}/ui/{address}")
    expect(page.locator("main").locator("h1, table, .runs-row").first).to_be_visible()
    assert page.evaluate("document.body.scrollWidth") <= 800
    header = page.locator("header.top").bounding_box()
    assert header is not None and header["width"] <= 800
