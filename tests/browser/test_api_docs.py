"""``/docs`` in a real browser with every request to another host refused: Swagger UI still
draws the API's operations (its files come from the server itself)."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from tests.acceptance.conftest import Installation


def test_the_api_docs_page_draws_the_operations_without_the_internet(
    page: Page, lab: Installation
) -> None:
    elsewhere: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(lab.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(lab.url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 50
    expect(page.locator(".info").first).to_contain_text("Runyard")
    assert not elsewhere, elsewhere
