"""The web UI shows what a person expects: a reduce task's list inputs connected in the editor,
and job values as values (a User Data path, not its JSON; numbers rounded; one value per run
on a line), and an empty runs table saying what to do."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in
from tests.conftest import WORKFLOWS


def test_the_editor_shows_a_reduce_tasks_list_input_connected(
    page: Page, lab: Installation
) -> None:
    httpx.post(
        lab.url + "/api/packages",
        content=folder_zip_bytes(WORKFLOWS / "Reduced"),
        headers={"Authorization": f"Bearer {lab.admin_token}"},
        timeout=30,
    ).raise_for_status()
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Reduced/edit")
    # Table's values (List[Int], one per run) take Double's value (Int).
    table = page.locator('.task-box[data-task="Table"]')
    expect(table.get_by_label("Output for values")).to_have_value("Double\u0000value")
    add = page.locator("form.add-task-form")
    add.get_by_label("Task type").select_option("Test.Table")
    expect(add.get_by_label("Source of values")).to_have_value("output")
    expect(add.get_by_label("Output for values")).to_contain_text("Double \u2192 value")


def test_job_values_are_shown_as_values(page: Page, lab: Installation) -> None:
    log_in(page, lab)
    shown = page.evaluate(
        """async () => {
        const { renderValue } = await import("/ui/static/js/job.js");
        const show = (value) => {
          const el = renderValue(value);
          return [el.textContent, el.getAttribute("title") || ""];
        };
        return [
          show(0.26214398242187537),
          show(32768),
          show({ type: "Folder", source: "userdata", virtualpath: "/Scans/2026/" }),
          show({
            type: "ForeignFile", source: "userdata", virtualpath: "/Scans/", filename: "a.ISQ;1",
          }),
          show({ type: "Entity", uuid: "u-1", name: "femur 7" }),
          show([0.5, 2, 1 / 3]),
          show(Array.from({ length: 30 }, (_, i) => i)),
          show({ any: "thing" }),
        ];
      }"""
    )
    assert shown[0] == ["0.262144", "0.26214398242187537"]
    assert shown[1] == ["32768", ""]
    assert shown[2][0] == "/Scans/2026/"
    assert shown[3][0] == "/Scans/a.ISQ;1"
    assert shown[4][0] == "femur 7"
    assert shown[5][0] == "0.5, 2, 0.333333"
    assert shown[6][0].startswith("30 values: 0, 1, 2, 3, \u2026")
    assert '"any": "thing"' in shown[7][0]


def test_an_empty_runs_table_says_what_to_do(page: Page, lab: Installation) -> None:
    lab.api("POST", "/api/workflows", {"name": "Empty", "remarks": ""})
    log_in(page, lab)
    page.goto(lab.url + "/ui/#/workflows/Empty")
    expect(page.locator(".runs-empty")).to_have_text("No task yet: Edit workflow adds them.")
    source = {"name": "S", "task_type": {"name": "Test.Source"}}
    lab.api("POST", "/api/workflows/Empty/tasks", source)
    page.reload()
    expect(page.locator(".count")).to_have_text("0 runs")
    expect(page.locator(".runs-empty")).to_contain_text("No run yet: New Run starts one")
    page.get_by_label("Filter by run name").fill("nothing")
    expect(page.locator(".runs-empty")).to_have_text("No run matches these filters.")
