"""Users, groups and sharing in a real browser: two users log in with their names and
passwords; one's workflow is hidden from the other until shared, then seen at the level
shared (view: New Run disabled, and refused by the server); admins manage users and groups,
users do not see that; personal tokens and passwords; the activity view filtered by user
and paged by address; hostile names shown as text."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.acceptance.conftest import Installation
from tests.browser.conftest import confirm, log_in, log_in_as, log_out, screenshot

ANN, BEN = "ann-ui", "ben-ui"  # names of their own: the server is shared by every test module
PASSWORD = "correct horse battery"
HOSTILE = "<img src=x onerror=\"window.__pwned='wf'\">Trap"
HOSTILE_REMARKS = (
    "<script>window.__pwned='remarks'</script> <img src=x onerror=\"window.__pwned=2\">"
)


def call(lab: Installation, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method, lab.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def token_of(lab: Installation, name: str, password: str = PASSWORD) -> str:
    answer = httpx.post(
        lab.url + "/api/login", json={"name": name, "password": password}, timeout=30
    )
    answer.raise_for_status()
    token: str = answer.json()["token"]
    return token


@pytest.fixture(scope="module")
def people(lab: Installation) -> dict[str, str]:
    """Ann and Ben (plain users, made with the admin token), and a personal token of each.
    The server lives for the session, and pytest-xdist may set this fixture up again in the
    same process (worksteal), so users made before are taken as they are."""
    for name in (ANN, BEN):
        made = call(
            lab,
            lab.admin_token,
            "POST",
            "/api/users",
            {"name": name, "password": PASSWORD, "admin": False},
        )
        assert made.status_code in (200, 409), made.text
    return {name: token_of(lab, name) for name in (ANN, BEN)}


def make_workflow(lab: Installation, token: str, name: str, remarks: str = "") -> None:
    answer = call(lab, token, "POST", "/api/workflows", {"name": name, "remarks": remarks})
    assert answer.status_code == 200, answer.text


def row(page: Page, workflow: str) -> Any:
    return page.locator("table.workflows tr[data-workflow]").filter(
        has=page.locator(".workflow-name", has_text=re.compile(f"^{re.escape(workflow)}$"))
    )


def test_a_workflow_is_hidden_until_shared_then_view_disables_new_run(
    page: Page, lab: Installation, people: dict[str, str]
) -> None:
    make_workflow(lab, people[ANN], "Ann's study", "Ann's own")
    # Ben does not see it: not in his list, and its address says there is no such workflow.
    log_in_as(page, lab, BEN, PASSWORD)
    expect(page.locator("table.workflows")).to_be_visible()
    expect(page.locator("table.workflows tbody")).not_to_contain_text("Ann's study")
    page.goto(lab.url + "/ui/#/workflows/" + quote("Ann's study"))
    expect(page.locator(".notice.error")).to_contain_text("no workflow named")
    log_out(page)

    # Ann shares it with Ben to view, in the share dialog.
    log_in_as(page, lab, ANN, PASSWORD)
    mine = row(page, "Ann's study")
    expect(mine.locator(".access")).to_contain_text("owner")
    mine.get_by_role("button", name="Share…").click()
    dialog = page.locator("dialog.share-dialog")
    expect(dialog.locator(".share-owner")).to_contain_text(f"Owner: {ANN}")
    dialog.get_by_label("User or group name").fill(BEN)
    dialog.get_by_label("Level", exact=True).select_option("view")
    dialog.get_by_role("button", name="Share", exact=True).click()
    shared = dialog.locator('tr.share[data-name="ben-ui"]')
    expect(shared.locator(".share-level")).to_have_value("view")
    screenshot(page, "share")
    dialog.get_by_role("button", name="Close", exact=True).click()
    log_out(page)

    # Ben sees it at view: New Run and Start are disabled, saying the level they need.
    log_in_as(page, lab, BEN, PASSWORD)
    theirs = row(page, "Ann's study")
    expect(theirs.locator(".access")).to_contain_text("may view")
    expect(theirs.locator(".access")).to_contain_text(f"owner {ANN}")
    expect(theirs.get_by_role("button", name="Start")).to_be_disabled()
    expect(theirs.get_by_role("button", name="Share…")).to_have_count(0)
    theirs.locator(".workflow-name").click()
    new_run = page.get_by_role("button", name="New Run")
    expect(new_run).to_be_disabled()
    expect(new_run).to_have_attribute("title", re.compile("operate"))
    expect(page.locator(".level-note")).to_have_text("you may view")
    expect(page.get_by_role("button", name="Share…")).to_be_hidden()
    # The server refuses it too (the page only mirrors its rules).
    refused = call(
        lab,
        people[BEN],
        "POST",
        "/api/workflows/" + quote("Ann's study") + "/runs",
        {"task": "Source", "outputs": {}},
    )
    assert refused.status_code == 403, refused.text

    # Raised to operate, New Run is enabled (the workflow has no source task yet: it says so).
    call(
        lab,
        people[ANN],
        "PUT",
        "/api/workflows/" + quote("Ann's study") + "/shares",
        {"user": BEN, "level": "operate"},
    ).raise_for_status()
    page.reload()
    expect(page.get_by_role("button", name="New Run")).to_be_enabled()
    expect(page.locator(".level-note")).to_have_text("you may operate")


def test_admins_manage_users_and_groups_and_users_do_not_see_it(
    page: Page, lab: Installation, people: dict[str, str]
) -> None:
    log_in(page, lab)
    page.get_by_role("link", name="Users").click()
    users = page.locator("table.users")
    expect(users.locator(f'tr[data-user="{ANN}"]')).to_be_visible()
    # Add a user, disable and enable it, set its password.
    page.get_by_label("New user's name").fill("cal-ui")
    page.get_by_label("New user's password").fill(PASSWORD)
    page.get_by_role("button", name="Add user").click()
    cal = users.locator('tr[data-user="cal-ui"]')
    expect(cal.locator(".user-status")).to_have_text("active")
    cal.get_by_role("button", name="Disable").click()
    confirm(page, "Disable user", says="cal-ui's sessions and tokens stop working")
    expect(cal.locator(".user-status")).to_have_text("disabled")
    assert httpx.post(
        lab.url + "/api/login", json={"name": "cal-ui", "password": PASSWORD}, timeout=30
    ).status_code in (401, 403)
    cal.get_by_role("button", name="Enable").click()
    expect(cal.locator(".user-status")).to_have_text("active")
    cal.get_by_role("button", name="Set password…").click()
    dialog = page.locator("dialog.password-dialog")
    dialog.get_by_label("New password", exact=True).fill("a new password")
    dialog.get_by_label("New password again").fill("a new password")
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog).to_be_hidden()
    token_of(lab, "cal-ui", "a new password")
    # Groups: add one, add a member, remove it, delete the group.
    page.get_by_label("New group's name").fill("lab-ui")
    page.get_by_role("button", name="Add group").click()
    group = page.locator('table.groups tr[data-group="lab-ui"]')
    group.get_by_label("User to add to lab-ui").select_option(BEN)
    group.get_by_role("button", name="Add member").click()
    expect(group.locator(f'.member[data-member="{BEN}"]')).to_be_visible()
    expect(users.locator(f'tr[data-user="{BEN}"] .user-groups')).to_contain_text("lab-ui")
    screenshot(page, "users")
    group.get_by_role("button", name=f"Remove {BEN} from lab-ui").click()
    expect(group.locator(".member")).to_have_count(0)
    # Removing a member can be undone from the notice; then removed again.
    page.locator(".notice").get_by_role("button", name="Undo").click()
    expect(group.locator(f'.member[data-member="{BEN}"]')).to_be_visible()
    group.get_by_role("button", name=f"Remove {BEN} from lab-ui").click()
    expect(group.locator(".member")).to_have_count(0)
    group.get_by_role("button", name="Delete").click()
    confirm(page, "Delete group", says="Workflows shared with lab-ui")
    expect(page.locator('table.groups tr[data-group="lab-ui"]')).to_have_count(0)
    log_out(page)

    # Ben: no Users, no Workers, no mappings to manage; the pages say so instead of breaking.
    log_in_as(page, lab, BEN, PASSWORD)
    expect(page.get_by_role("link", name="Workflows")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_be_hidden()
    expect(page.get_by_role("link", name="Workers")).to_be_hidden()
    page.goto(lab.url + "/ui/#/users")
    expect(page.locator(".admins-only")).to_be_visible()
    expect(page.locator("table.users")).to_have_count(0)
    page.goto(lab.url + "/ui/#/userdata")
    expect(page.get_by_role("heading", name="User Data")).to_be_visible()
    expect(page.locator("table.mappings")).to_have_count(0)
    page.goto(lab.url + "/ui/#/workflows")
    expect(page.locator("table.workflows")).to_be_visible()
    expect(page.locator(".notice.error")).to_be_hidden()


def test_my_tokens_and_changing_my_password(
    page: Page, lab: Installation, people: dict[str, str]
) -> None:
    lab.api("POST", "/api/users", {"name": "dee-ui", "password": PASSWORD})
    log_in_as(page, lab, "dee-ui", PASSWORD)
    page.locator("header.top .user-menu-button").click()
    page.get_by_role("menuitem", name="My tokens").click()
    page.get_by_label("Token label").fill("laptop CLI")
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_label("New token")
    expect(shown).to_have_value(re.compile(".{20,}"))
    token = shown.input_value()
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    listed = page.locator("table.tokens tbody tr[data-token]")
    expect(listed.locator(".token-used")).to_have_text("never")  # not used yet
    assert call(lab, token, "GET", "/api/me").json()["name"] == "dee-ui"
    expect(listed).to_have_count(1)
    expect(listed.locator(".token-label")).to_have_text("laptop CLI")
    # Shown once: the list never shows it again.
    expect(page.locator("table.tokens")).not_to_contain_text(token)
    listed.get_by_role("button", name="Revoke").click()
    confirm(page, "Revoke token", says="stops working at once")
    expect(listed).to_have_count(0)
    assert call(lab, token, "GET", "/api/me").status_code == 401

    page.locator("header.top .user-menu-button").click()
    page.get_by_role("menuitem", name="Change password…").click()
    dialog = page.locator("dialog.password-dialog")
    dialog.get_by_label("Current password").fill("not my password")
    dialog.get_by_label("New password", exact=True).fill("another good one")
    dialog.get_by_label("New password again").fill("another good one")
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog.locator(".form-error")).not_to_be_empty()
    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_role("button", name="Set password").click()
    expect(dialog).to_be_hidden()
    log_out(page)
    log_in_as(page, lab, "dee-ui", "another good one")


def test_hostile_workflow_and_group_names_show_as_text(
    page: Page, lab: Installation, people: dict[str, str]
) -> None:
    make_workflow(lab, people[ANN], HOSTILE, HOSTILE_REMARKS)
    call(
        lab,
        people[ANN],
        "PUT",
        "/api/workflows/" + quote(HOSTILE, safe="") + "/shares",
        {"user": BEN, "level": "operate"},
    ).raise_for_status()
    log_in_as(page, lab, BEN, PASSWORD)
    hostile = row(page, HOSTILE)
    expect(hostile.locator(".workflow-name")).to_have_text(HOSTILE)
    expect(hostile.locator(".remarks")).to_contain_text("<script>")
    hostile.locator(".workflow-name").click()
    expect(page.locator("main h1")).to_have_text(HOSTILE)
    page.goto(lab.url + "/ui/#/activity?workflow=" + quote(HOSTILE, safe=""))
    expect(page.locator("table.activity tbody tr.entry").first).to_be_visible()
    expect(page.locator("table.activity .workflow").first).to_have_text(HOSTILE)
    assert page.locator("main img, main script").count() == 0
    log_out(page)

    # An admin shares it with a group; a hostile group name is refused, shown as text.
    log_in(page, lab)
    page.get_by_role("link", name="Users").click()
    page.get_by_label("New group's name").fill("<img src=x onerror=\"window.__pwned='group'\">")
    page.get_by_role("button", name="Add group").click()
    expect(page.locator(".notice.error")).to_contain_text("<img src=x onerror=")
    page.goto(lab.url + "/ui/#/workflows")
    row(page, HOSTILE).get_by_role("button", name="Share…").click()
    dialog = page.locator("dialog.share-dialog")
    expect(dialog.locator(".share-workflow")).to_have_text(HOSTILE)
    expect(dialog.locator(f'tr.share[data-name="{BEN}"] .share-level')).to_have_value("operate")
    assert page.locator("img, script:not([src])").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_the_activity_view_filters_by_user_and_pages_by_address(
    page: Page, lab: Installation, people: dict[str, str]
) -> None:
    make_workflow(lab, people[ANN], "Ann's log", "")
    log_in(page, lab)
    page.get_by_role("link", name="Activity").click()
    page.get_by_label("Filter by user").fill(ANN)
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(f"#/activity\\?actor={ANN}$"))
    entries = page.locator("table.activity tbody tr.entry")
    expect(entries.filter(has_text="created workflow Ann's log")).to_have_count(1)
    actors = set(entries.evaluate_all("rows => rows.map(r => r.dataset.actor)"))
    assert actors == {ANN}
    screenshot(page, "activity-filtered")
    # A user link narrows to that user; the address keeps the filter and the page.
    newest = int(entries.first.get_attribute("data-id") or 0)
    page.goto(lab.url + f"/ui/#/activity?actor={ANN}&before={newest}")
    expect(page.locator(".page-note")).to_contain_text(f"#{newest}")
    expect(page.get_by_role("link", name="Newest")).to_be_visible()
    ids = page.locator("table.activity tbody tr.entry").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.id))"
    )
    assert ids and max(ids) < newest
    # Ben sees his own entries and those on workflows shared with him, not Ann's others.
    log_out(page)
    log_in_as(page, lab, BEN, PASSWORD)
    page.goto(lab.url + f"/ui/#/activity?actor={ANN}")
    expect(page.locator("table.activity tbody")).to_be_visible()
    expect(page.locator("table.activity tbody")).not_to_contain_text("created workflow Ann's log")
