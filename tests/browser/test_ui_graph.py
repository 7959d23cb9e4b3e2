"""The workflow graph in a real browser: dragging a wire from an output to an input connects
it (the server's workflow says so), a drop on an input of another type is refused with the
reason, a moved node is where it was after a reload, and the runs page's graph shows each
task's jobs by state (and one run's job states)."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, output_of, screenshot

SOURCE = {"name": "Source", "task_type": {"name": "Test.Source"}}
DOUBLE = {
    "name": "Double",
    "task_type": {"name": "Test.Double"},
    "inputs": [{"key": "value", "source": {"mode": "fixed", "fixed_value": 3}}],
}
SCALE = {
    "name": "Scale",
    "task_type": {"name": "Test.XfScale"},
    "inputs": [
        {"key": "value", "source": output_of("Source")},
        {"key": "factor", "source": {"mode": "fixed", "fixed_value": 2}},
        {"key": "previous", "source": {"mode": "none"}},
    ],
}
# Its previous table is Scale's (a CSV input that may also take none).
RESCALE = {
    **SCALE,
    "name": "Rescale",
    "inputs": [*SCALE["inputs"][:2], {"key": "previous", "source": output_of("Scale", "table")}],
}


def drag(page: Page, start: Locator, end: Locator) -> None:
    """Press the mouse on ``start``, move it over ``end`` in steps, release it there."""
    a = start.bounding_box()
    b = end.bounding_box()
    assert a is not None and b is not None
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()


def port(page: Page, side: str, task: str, key: str) -> Locator:
    return page.locator(f'.graph-port.{side}[data-task="{task}"][data-key="{key}"] circle')


def source_of(lab: Installation, workflow: str, task: str, key: str) -> dict[str, object]:
    tasks = lab.api("GET", f"/api/workflows/{workflow}")["tasks"]
    inputs = next(t for t in tasks if t["name"] == task)["inputs"]
    return next(i for i in inputs if i["key"] == key)["source"]


def open_editor(page: Page, lab: Installation, workflow: str) -> None:
    page.goto(f"{lab.url}/#/workflows/{workflow}/edit")
    expect(page.locator('.graph-node[data-task="Double"]')).to_be_visible()


def test_dragging_a_wire_connects_an_input_and_another_type_is_refused(
    page: Page, lab: Installation
) -> None:
    lab.api("POST", "/api/workflows", {"name": "Wired", "remarks": ""})
    for task in (SOURCE, DOUBLE, SCALE, RESCALE):
        lab.api("POST", "/api/workflows/Wired/tasks", task)
    log_in(page, lab)
    open_editor(page, lab, "Wired")
    expect(page.locator(".graph-wire")).to_have_count(3)

    # An Int output on a CSV input: refused here, with the reason; nothing changes.
    drag(page, port(page, "output", "Source", "value"), port(page, "input", "Rescale", "previous"))
    expect(page.locator(".notice.error")).to_contain_text("needs CSV, output value is Int")
    assert source_of(lab, "Wired", "Rescale", "previous") == output_of("Scale", "table")

    drag(page, port(page, "output", "Source", "value"), port(page, "input", "Double", "value"))
    expect(page.locator(".notice")).to_contain_text("Connected Source.value")
    wire = page.locator('.graph-wire[data-from="Source.value"][data-to="Double.value"]')
    expect(wire).to_have_count(1)
    assert source_of(lab, "Wired", "Double", "value") == output_of("Source")
    screenshot(page, "workflow-graph")

    # A wire selected and deleted with the keyboard: the input takes no value ("none").
    page.locator('.graph-wire[data-to="Rescale.previous"]').focus()
    page.keyboard.press("Delete")
    expect(page.locator('.graph-wire[data-to="Rescale.previous"]')).to_have_count(0)
    assert source_of(lab, "Wired", "Rescale", "previous") == {"mode": "none"}
    # Double's value must then be fixed, with no default: the server refuses, saying why.
    wire.click()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator(".notice.error")).to_contain_text("value")
    expect(wire).to_have_count(1)
    assert source_of(lab, "Wired", "Double", "value") == output_of("Source")


def test_a_moved_node_keeps_its_place_after_a_reload(page: Page, lab: Installation) -> None:
    lab.api("POST", "/api/workflows", {"name": "Placed", "remarks": ""})
    for task in (SOURCE, DOUBLE):
        lab.api("POST", "/api/workflows/Placed/tasks", task)
    log_in(page, lab)
    open_editor(page, lab, "Placed")
    node = page.locator('.graph-node[data-task="Double"]')
    before = node.get_attribute("transform")
    head = node.locator(".graph-name")
    with page.expect_response(lambda r: r.url.endswith("/api/workflows/Placed/layout")) as saved:
        drag(page, head, page.locator(".graph-fit"))  # anywhere else: it moves
    assert saved.value.ok
    # The keyboard moves it too: two steps down.
    with page.expect_response(lambda r: r.url.endswith("/api/workflows/Placed/layout")) as again:
        node.focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
    assert again.value.ok
    moved = node.get_attribute("transform")
    assert moved != before
    layout = lab.api("GET", "/api/workflows/Placed")["layout"]["positions"]["Double"]
    assert moved == f"translate({layout['x']:g} {layout['y']:g})"
    page.reload()
    expect(page.locator('.graph-node[data-task="Double"]')).to_have_attribute("transform", moved)


def test_the_runs_page_graph_shows_each_tasks_jobs_by_state(page: Page, lab: Installation) -> None:
    # A Draft workflow: its runs are made, but no job of it starts (Double's stay Queued).
    lab.api("POST", "/api/workflows", {"name": "Counted", "remarks": ""})
    for task in (SOURCE, {**DOUBLE, "inputs": [{"key": "value", "source": output_of("Source")}]}):
        lab.api("POST", "/api/workflows/Counted/tasks", task)
    for i in range(2):
        lab.api(
            "POST",
            "/api/workflows/Counted/runs",
            {"task": "Source", "outputs": {"value": i}, "name": f"r{i}"},
        )
    log_in(page, lab)
    page.goto(f"{lab.url}/#/workflows/Counted")
    page.get_by_role("button", name="Graph", exact=True).click()
    source = page.locator('.runs-graph .graph-node[data-task="Source"]')
    double = page.locator('.runs-graph .graph-node[data-task="Double"]')
    expect(source.locator('tspan[data-state="Done"]')).to_contain_text("2")
    expect(double.locator('tspan[data-state="Queued"]')).to_contain_text("2")
    expect(page.locator('.runs-graph .graph-wire[data-from="Source.value"]')).to_have_count(1)
    screenshot(page, "runs-graph")

    # A new run: the counts follow live.
    lab.api(
        "POST",
        "/api/workflows/Counted/runs",
        {"task": "Source", "outputs": {"value": 9}, "name": "r9"},
    )
    expect(source.locator('tspan[data-state="Done"]')).to_contain_text("3")

    # One run picked (its name clicked): its jobs' states on the nodes.
    page.locator(".runs-row.run .run-name .text", has_text="r0").click()
    expect(double).to_have_class(re.compile(r"\bs-queued\b"))
    expect(source).to_have_class(re.compile(r"\bs-done\b"))
    page.get_by_role("button", name="All runs").click()
    expect(double.locator('tspan[data-state="Queued"]')).to_contain_text("3")
