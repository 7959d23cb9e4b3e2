"""The web UI's scripts use no character that common fonts lack: emoji (outside the Basic
Multilingual Plane) and U+23F8 (pause) show as an empty box in Debian's Chromium with its
usual fonts (DejaVu, Liberation), where the browser tests and many lab machines run."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "runyard" / "web" / "static"
VENDOR = STATIC / "vendor"
# Written as escapes (\uD83D\uDD12) or as the characters themselves.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
MISSING = {"\u23f8": "\\u23F8"}


def test_no_script_or_style_uses_a_glyph_common_fonts_lack() -> None:
    found = []
    for path in sorted([*STATIC.rglob("*.js"), *STATIC.rglob("*.css"), *STATIC.rglob("*.html")]):
        if VENDOR in path.parents:  # others' code, kept as published (its own README)
            continue
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if (
                SURROGATE_ESCAPE.search(line)
                or any(ord(c) > 0xFFFF for c in line)
                or any(c in line or escape.lower() in line.lower() for c, escape in MISSING.items())
            ):
                found.append(f"{path.relative_to(STATIC)}:{number}: {line.strip()}")
    assert not found, "glyphs missing from common fonts:\n" + "\n".join(found)
