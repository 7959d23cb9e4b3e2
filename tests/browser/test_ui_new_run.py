"""New Run in a real browser, at a source task that asks the user (an interactive task type):
the dialog is the form of the task type's outputs (as for an interactive job), every output
is required, the server's refusal is shown beside the field it names, and nothing is created
until the values are good; the run then starts Done at its source with those outputs."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, new_workflow, output_of, screenshot
from tests.browser.test_ui import cell


def asked_workflow(lab: Installation, name: str) -> None:
    """Workflow ``name``: Source (Test.Source, interactive: its output value is asked) ->
    Double, started."""
    tasks = [
        {"name": "Source", "task_type": {"name": "Test.Source"}},
        {"name": "Double", "task_type": {"name": "Test.Double"},
         "inputs": [{"key": "value", "source": output_of("Source")}]},
    ]  # fmt: skip
    new_workflow(lab, name, tasks)


def runs(lab: Installation, workflow: str) -> list[dict[str, object]]:
    answer = lab.api("GET", f"/api/workflows/{workflow}/runs")
    return list(answer["runs"])


def test_new_run_asks_the_source_outputs_in_a_form_and_shows_refusals_by_field(
    page: Page, lab: Installation
) -> None:
    asked_workflow(lab, "Asked")
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Asked")
    page.get_by_role("button", name="New Run").click()
    dialog = page.locator("dialog.new-run-dialog")
    value = dialog.locator('.field[data-field="value"]')
    # The output's own field, from the interface: a whole number, described.
    expect(value.locator("input")).to_have_attribute("type", "number")
    expect(value).to_contain_text("Int")
    expect(value).to_contain_text("The number the run starts from.")
    expect(dialog.locator("textarea")).to_have_count(0)

    # Left empty: the field says it is required, and no run is made.
    dialog.get_by_label("Run name").fill("asked")
    dialog.get_by_role("button", name="Start run").click()
    expect(value.locator(".field-error")).to_have_text("a value is required")
    expect(dialog).to_be_visible()
    assert runs(lab, "Asked") == []

    # Not a whole number: the server refuses, its message beside the field.
    value.locator("input").fill("2.5")
    dialog.get_by_role("button", name="Start run").click()
    expect(value.locator(".field-error")).to_contain_text("Int")
    expect(value.locator(".field-error")).to_contain_text("2.5")
    expect(value).to_have_class("field invalid")
    screenshot(page, "new-run-form")
    assert runs(lab, "Asked") == []

    # A good value: the run starts Done at its source with it, and goes on.
    value.locator("input").fill("7")
    dialog.get_by_role("button", name="Start run").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".notice")).to_contain_text("is Done")
    expect(cell(page, "asked", "Source")).to_have_attribute("data-state", "Done")
    expect(cell(page, "asked", "Double")).to_have_attribute("data-state", "Done")
    serial = cell(page, "asked", "Source").get_attribute("data-serial")
    assert lab.api("GET", f"/api/jobs/{serial}")["outputs"] == {"value": 7}


def test_new_run_at_a_computed_source_asks_nothing_and_queues_its_job(
    page: Page, lab: Installation
) -> None:
    count = {"key": "value", "source": {"mode": "fixed", "fixed_value": 3}}
    tasks = [{"name": "Noisy", "task_type": {"name": "Test.NoisyLog"}, "inputs": [count]}]
    new_workflow(lab, "Computed", tasks)
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Computed")
    page.get_by_role("button", name="New Run").click()
    dialog = page.locator("dialog.new-run-dialog")
    expect(dialog.locator(".source-note")).to_contain_text("computed by a worker")
    expect(dialog.locator(".field")).to_have_count(0)
    dialog.get_by_label("Run name").fill("computed")
    dialog.get_by_role("button", name="Start run").click()
    expect(dialog).to_be_hidden()
    expect(cell(page, "computed", "Noisy")).to_have_attribute("data-state", "Done")
    serial = cell(page, "computed", "Noisy").get_attribute("data-serial")
    assert lab.api("GET", f"/api/jobs/{serial}")["worker"], "computed by a worker"
