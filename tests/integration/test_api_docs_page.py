"""``/docs``, the API's Swagger UI page, works offline: it names no other host, and the
script, style and icon it loads are served by the server itself."""

from __future__ import annotations

import re

from tests.integration.conftest import Server


def test_the_docs_page_loads_its_assets_from_the_server_itself(server: Server) -> None:
    client = server.client
    client.headers.pop("Authorization")  # the page and its assets need no token
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert not re.search(r"https?:|//[a-z]", page.text, re.IGNORECASE), page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a.rsplit(".", 1)[-1] for a in assets} == {"js", "css", "png"}, assets
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 0, asset
    script = next(a for a in assets if a.endswith(".js"))
    assert "SwaggerUIBundle" in client.get(script).text
    assert "url: '/openapi.json'" in page.text
    assert '"validatorUrl": null' in page.text, "no call to the online validator"
    assert client.get("/openapi.json").status_code == 200


def test_there_is_no_redoc_page_that_would_load_from_a_cdn(server: Server) -> None:
    assert server.client.get("/redoc").status_code == 404
