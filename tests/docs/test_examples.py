"""The README's "Using it" block runs as written: in an empty folder holding this checkout's
``examples/``, with ``. .venv/bin/activate`` standing for this test's Python environment,
``runyard up`` in the background as the block says; every command must exit 0. Then the
``run`` blocks of docs/*.md, on the same server and example study (``RUNYARD_DATA_DIR=./lab``,
as docs/study.md says).

Every ``sh`` block of README.md and docs/*.md is marked: ``<!-- docs-test: run ... -->`` (this
test runs it) or ``<!-- docs-test: skip (why) -->`` (e.g. it needs another machine or runs
the whole suite)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.acceptance.conftest import clean_env

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# A block: its docs-test mark (if any), then ```sh (with or without more words) to ```.
BLOCK = re.compile(
    r"(?:<!-- docs-test: (\w+)[^\n]*-->\n)?```sh(?:[ \t][^\n]*)?\n(.*?)```", re.DOTALL
)
# A deadline, not a measurement: a block that hangs fails here instead.
DEADLINE = 120


def sh_blocks(path: Path) -> list[tuple[str | None, str]]:
    """Each ``sh`` block of a Markdown file with its docs-test mark (None: unmarked)."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(path.read_text())]


def test_every_sh_block_of_the_readme_and_the_docs_is_marked_run_or_skip() -> None:
    marks = {path.name: [mark for mark, _ in sh_blocks(path)] for path in [README, *DOCS]}
    unmarked = {name: m for name, m in marks.items() if not all(k in ("run", "skip") for k in m)}
    assert not unmarked, f"sh blocks without <!-- docs-test: run|skip (why) -->: {unmarked}"
    assert "run" in marks["README.md"] and "run" in marks["study.md"]


def docs_blocks() -> str:
    """The ``run`` blocks of docs/*.md, in page order, each under a comment naming its page."""
    return "".join(
        f"# -- {path.name}\n{text}" for path in DOCS for mark, text in sh_blocks(path)
        if mark == "run"
    )  # fmt: skip


def test_the_readme_using_it_block_runs_as_written(tmp_path: Path) -> None:
    (block,) = [text for mark, text in sh_blocks(README) if mark == "run"]
    assert "runyard up --data-dir ./lab &" in block
    # The docs' blocks go before the README's last line, which stops the server.
    *commands, last = block.rstrip("\n").split("\n")
    assert last.startswith("kill %1"), last
    block = "\n".join([*commands, "export RUNYARD_DATA_DIR=./lab", docs_blocks(), last, ""])
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    activate = tmp_path / ".venv" / "bin" / "activate"
    activate.parent.mkdir(parents=True)
    activate.write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    script = (
        # Each command must succeed; the one that does not is named. The server started in
        # the background is stopped however the block ends.
        "set -e\n"
        "trap 'echo \"exit status $? from: $BASH_COMMAND\" >&2' ERR\n"
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + block
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert re.search(r"sample-1 .*Done #\d+ .*Done #\d+", result.stdout), result.stdout
    assert re.search(r"reduce Total: Done #\d+", result.stdout), result.stdout
    # docs/study.md: the changed factor made Scale and the reduce stale; re-run, they are not.
    assert "2 stale jobs" in result.stdout, result.stdout
    assert "re-run" in result.stdout, result.stdout
    final = result.stdout[result.stdout.rindex("Study (Started)") :]
    assert "stale" not in final and re.search(r"reduce Total: Done #\d+", final), final
    assert not (tmp_path / "lab" / "server.json").exists(), "kill %1 stopped it cleanly"
