"""Browser tests: Debian's Chromium, driven by Playwright, against a real ``runyard up`` on a
loopback port (SQLite), with the test task types and the workflows Talk (Started) and
Linear (Draft) imported. One server and one browser serve the whole module; each test gets
a fresh browser context (no cookie) and logs in."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation, start_up, stop
from tests.conftest import TASK_TYPES, WORKFLOWS

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 820}
# How long an expectation waits (jobs run for real; a loaded CI machine is slow).
expect.set_options(timeout=20_000)


def chromium_path() -> str:
    """Debian's Chromium (scripts/test installs it); Playwright downloads no browser here."""
    found = os.environ.get("RUNYARD_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail("Chromium is not installed: apt-get install chromium (scripts/test does)")
    return found


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    installation = start_up(tmp_path_factory.mktemp("browser") / "lab")
    headers = {"Authorization": f"Bearer {installation.admin_token}"}
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Talk", WORKFLOWS / "Linear"]:
        httpx.post(
            installation.url + "/api/packages",
            content=folder_zip_bytes(folder),
            headers=headers,
            timeout=30,
        ).raise_for_status()
    installation.api("POST", "/api/workflows/Talk/start")
    yield installation
    stop(installation)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: the tests may run as root (CI does), where Chromium's sandbox refuses.
    instance = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
    yield instance
    instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(15_000)
    instance = context.new_page()
    errors: list[str] = []
    instance.on("pageerror", lambda exc: errors.append(str(exc)))
    yield instance
    context.close()
    assert not errors, f"errors in the page's scripts: {errors}"


def log_in(page: Page, lab: Installation) -> None:
    """Log in with the admin token (the log in form's "Use a token instead")."""
    page.goto(lab.url + "/")
    use_a_token(page)
    page.get_by_label("Admin token").fill(lab.admin_token)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("header.top")).to_be_visible()


def use_a_token(page: Page) -> None:
    """Switch the log in form to a token (it remembers the way last used)."""
    expect(page.locator("form.login-form")).to_be_visible()
    switch = page.get_by_role("button", name="Use a token instead")
    if switch.is_visible():
        switch.click()


def log_in_as(page: Page, lab: Installation, name: str, password: str) -> None:
    """Log in with a user's name and password."""
    page.goto(lab.url + "/")
    expect(page.locator("form.login-form")).to_be_visible()
    switch = page.get_by_role("button", name="Use a user name and password")
    if switch.is_visible():
        switch.click()
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("header.top .who")).to_have_text(name)


def log_out(page: Page) -> None:
    """Log out through the user's menu in the header."""
    page.locator("header.top .user-menu-button").click()
    page.get_by_role("menuitem", name="Log out").click()
    expect(page.locator("form.login-form")).to_be_visible()


def screenshot(page: Page, name: str) -> None:
    """Save the page as docs/screenshots/NAME.png when RUNYARD_SCREENSHOTS=1 (to refresh the
    documentation's pictures), else take it into a temporary folder: a test run leaves the
    checkout as it was."""
    if os.environ.get("RUNYARD_SCREENSHOTS") == "1":
        folder = SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "runyard-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def confirm(page: Page, action: str, *, says: str = "") -> None:
    """Answer the UI's confirmation dialog (confirm.js) by pressing ``action``, after checking
    that it says ``says``."""
    dialog = page.locator("dialog.confirm-dialog")
    expect(dialog).to_be_visible()
    if says:
        expect(dialog).to_contain_text(says)
    dialog.get_by_role("button", name=action, exact=True).click()
    expect(dialog).to_have_count(0)


def output_of(task: str, key: str = "value") -> dict[str, str]:
    """An input source: output ``key`` of ``task``."""
    return {"mode": "output", "task": task, "key": key}


def new_workflow(lab: Installation, name: str, tasks: list[dict[str, Any]]) -> None:
    """Workflow ``name`` with ``tasks`` (as ``POST /api/workflows/{name}/tasks`` takes them),
    started."""
    lab.api("POST", "/api/workflows", {"name": name, "remarks": ""})
    for task in tasks:
        lab.api("POST", f"/api/workflows/{name}/tasks", task)
    lab.api("POST", f"/api/workflows/{name}/start")
