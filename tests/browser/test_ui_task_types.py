"""Task types in a real browser: the task type list and the documentation its package brought
(a Markdown description drawn safely, readme.txt, CITATION.cff, the author), the same
documentation opened from the editor, and the job information panel showing values of
XamFlow's Core.Type.Base types: a CSV as a table, a Bitmap as the picture, a Mesh as a
download, a chart report as JSON."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation
from tests.browser.conftest import log_in, screenshot

DESCRIPTION = (
    "# Threshold\n\n"
    "Splits **bone** from background.\n\n"
    "## Usage\n\n"
    "```\nthreshold(image, 500)\n```\n\n"
    "| Input | Meaning |\n|---|---|\n| image | the scan |\n\n"
    '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>\n'
)
CITATION = 'cff-version: 1.2.0\ntitle: "Threshold showcase"\n'
README = "Threshold\n=========\nRead me first.\n"
CSV = "sample,volume,density\nfemur 1,12.5,0.31\nfemur 2,13.25,0.29\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def post(lab: Installation, path: str, content: bytes, params: Any = None) -> Any:
    response = httpx.post(
        lab.url + path,
        content=content,
        params=params,
        headers={"Authorization": f"Bearer {lab.admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def png(width: int, height: int) -> bytes:
    """A grey-gradient PNG of ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes((x * 255 // width) for x in range(width)) for _ in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def upload(lab: Installation, data: bytes, filename: str) -> dict[str, Any]:
    params = {"filename": filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    stored: dict[str, Any] = post(lab, "/api/files", data, params)
    return stored


@pytest.fixture(scope="module")
def documented(lab: Installation, tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """Task types Docs.Threshold (every documented metadata field) and Docs.Pictures (a
    source of a Bitmap, a CSV, a Mesh and a chart report), and a workflow Pictures of it."""
    root = tmp_path_factory.mktemp("docs")
    metadata = {
        "package_format": "XFP-TT1.0",
        "name": "Docs.Threshold",
        "version": "1.2.0.0",
        "display_name": "Documented threshold",
        "summary": "Binarises an image, with documentation.",
        "description_filename": "description.md",
        "citation_cff_filename": "CITATION.cff",
        "remarks": "Written for the *bone* study.",
        "author": {"name": "Ada Lab", "email": "ada@lab.org", "website": "https://lab.org/ada"},
        "timeout_seconds": 60,
        "jobs_per_process": 4,
    }
    interface = {
        "inputs": [{"key": "level", "type": "Int", "description": "The grey level."}],
        "outputs": [{"key": "mask", "type": "Image"}],
    }
    threshold = write(
        root / "threshold",
        {
            "metadata.json": json.dumps(metadata),
            "interface.json": json.dumps(interface),
            "main.py": "print('threshold')\n",
            "description.md": DESCRIPTION,
            "CITATION.cff": CITATION,
            "readme.txt": README,
        },
    )
    outputs = [
        {"key": "picture", "type": "Bitmap"},
        {"key": "table", "type": "CSV"},
        {"key": "surface", "type": "Mesh"},
        {"key": "chart", "type": "ChartReport"},
    ]
    pictures = write(
        root / "pictures",
        {
            "metadata.json": json.dumps(
                {"package_format": "XFP-TT1.0", "name": "Docs.Pictures", "version": "1.0.0.0"}
            ),
            "interface.json": json.dumps({"kind": "interactive", "outputs": outputs}),
            "main.py": "print('source')\n",
        },
    )
    for folder in (threshold, pictures):
        post(lab, "/api/packages", folder_zip_bytes(folder))
    # The server lives for the session and pytest-xdist may set this fixture up again in the
    # same process (worksteal): the workflow made before is taken as it is.
    if not any(w["name"] == "Pictures" for w in lab.api("GET", "/api/workflows")):
        lab.api("POST", "/api/workflows", {"name": "Pictures", "remarks": ""})
        lab.api(
            "POST",
            "/api/workflows/Pictures/tasks",
            {"name": "S", "task_type": {"name": "Docs.Pictures"}},
        )
    return lab


def test_the_task_type_list_links_each_task_type_to_its_documentation(
    page: Page, documented: Installation
) -> None:
    log_in(page, documented)
    page.get_by_role("link", name="Task types").click()
    row = page.locator('table.task-types tr[data-task-type="Docs.Threshold"]')
    expect(row).to_contain_text("Documented threshold")
    expect(row).to_contain_text("Ada Lab")
    expect(row.locator("td.versions")).to_have_text("1.2.0.0")
    screenshot(page, "task-types")
    page.get_by_label("Filter task types").fill("binarises")
    expect(page.locator("table.task-types tbody tr")).to_have_count(1)
    row.get_by_role("link", name="Documentation").click()

    docs = page.locator('.task-type-docs[data-task-type="Docs.Threshold"]')
    expect(docs.locator(".doc-description h4")).to_have_text("Threshold")
    expect(docs.locator(".doc-description h5")).to_have_text("Usage")
    expect(docs.locator(".doc-description strong")).to_have_text("bone")
    expect(docs.locator(".doc-description pre.doc-code")).to_have_text("threshold(image, 500)")
    expect(docs.locator(".doc-description table.doc-table td").first).to_have_text("image")
    expect(docs.locator(".doc-readme pre")).to_have_text(README)
    expect(docs.locator(".doc-citation pre")).to_contain_text("Threshold showcase")
    expect(docs.locator(".doc-remarks em")).to_have_text("bone")
    expect(docs.locator("a.author-email")).to_have_attribute("href", "mailto:ada@lab.org")
    expect(docs.locator("a.author-website")).to_have_attribute("href", "https://lab.org/ada")
    expect(docs.locator('tr[data-key="level"]')).to_contain_text("The grey level.")
    expect(docs.locator(".process-mode")).to_have_text("reused process, up to 4 jobs")
    # The Markdown's HTML is shown as text: no element was made of it, no script ran.
    expect(docs.locator(".doc-description")).to_contain_text("<script>window.pwned=2</script>")
    assert docs.locator(".doc-description img, .doc-description script").count() == 0
    assert page.evaluate("window.pwned") is None
    screenshot(page, "task-type-docs")


def test_a_task_type_without_documentation_files_says_so(
    page: Page, documented: Installation
) -> None:
    log_in(page, documented)
    page.goto(documented.url + "/ui/#/task-types/Docs.Pictures/1.0.0.0")

    docs = page.locator('.task-type-docs[data-task-type="Docs.Pictures"]')
    expect(docs.locator(".no-docs")).to_have_text("The package brought no documentation files.")
    expect(docs.locator(".process-mode")).to_have_count(0)  # interactive: runs on no worker
    expect(docs.locator('table.outputs tr[data-key="picture"] .param-type')).to_have_text("Bitmap")


def test_the_editor_opens_the_documentation_of_a_task_type(
    page: Page, documented: Installation
) -> None:
    log_in(page, documented)
    page.goto(documented.url + "/ui/#/workflows/Pictures/edit")
    form = page.locator("form.add-task-form")
    form.get_by_label("Task type").select_option("Docs.Threshold")
    expect(form.locator(".task-type-about")).to_contain_text("by Ada Lab")
    form.get_by_role("button", name="Documentation").click()

    dialog = page.locator("dialog.docs-dialog")
    expect(dialog.locator(".doc-description h4")).to_have_text("Threshold")
    expect(dialog.locator(".doc-citation pre")).to_contain_text("Threshold showcase")
    dialog.get_by_title("Close").click()
    expect(dialog).to_have_count(0)

    page.get_by_role("button", name="Documentation of Docs.Pictures").click()
    expect(page.locator("dialog.docs-dialog .no-docs")).to_be_visible()


def test_the_job_panel_shows_a_csv_as_a_table_and_a_bitmap_as_a_picture(
    page: Page, documented: Installation
) -> None:
    outputs = {
        "picture": upload(documented, png(40, 30), "slice.png") | {"type": "Bitmap"},
        "table": upload(documented, CSV.encode(), "volumes.csv") | {"type": "CSV"},
        "surface": upload(documented, b"solid s\nendsolid s\n", "bone.stl") | {"type": "Mesh"},
        "chart": {"title": "Density", "series": [{"x": [1, 2], "y": [3, 4]}]},
    }
    job = documented.api("POST", "/api/workflows/Pictures/runs", {"task": "S", "outputs": outputs})
    log_in(page, documented)
    page.goto(documented.url + f"/ui/#/jobs/{job['serial']}")

    values = page.locator(".values.outputs")
    table = values.locator("table.csv-preview")
    expect(table.locator("th")).to_have_text(["sample", "volume", "density"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").nth(1).locator("td")).to_have_text(
        ["femur 2", "13.25", "0.29"]
    )
    picture = values.locator("img.bitmap-preview")
    expect(picture).to_have_attribute("alt", "slice.png")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 40", arg=picture.element_handle()
    )
    expect(values.get_by_role("link", name="bone.stl")).to_have_attribute("download", "bone.stl")
    expect(values.locator("pre.value")).to_contain_text('"title": "Density"')
    screenshot(page, "job-files")
