"""The documents in docs/ that must follow the code: the CLI reference, the state diagram and
the glossary."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import typer

from runyard.cli import app
from runyard.states import TRANSITIONS, WORKFLOW_TRANSITIONS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# SPEC.md section 1, word for word.
GLOSSARY_TERMS = [
    "Task type",
    "Workflow",
    "Task",
    "Input source",
    "Run",
    "Job",
    "Source job",
    "Follower",
    "Processing / interactive / reduce",
    "Entity",
    "Worker",
    "Dependency package",
    "Package (`.xfp`)",
    "User Data",
    "File store",
    "Spawn",
    "Sort order",
]
RUNYARD_TERMS = ["Lease", "Attempt", "Job token", "Worker token", "Admin token", "Data directory"]

ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\w+)\s*(?::\s*(.*?))?\s*$")


def plain(text: str) -> str:
    return text.replace("`", "").strip()


@pytest.fixture(scope="module")
def cli_reference() -> ModuleType:
    """scripts/cli_reference.py, imported from its path (scripts/ is not a package)."""
    path = ROOT / "scripts" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated_cli_md(cli_reference: ModuleType) -> str:
    text: str = cli_reference.generate()
    return text


def mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, flags=re.DOTALL)


def diagram_arrows(block: str) -> dict[tuple[str, str], str]:
    """(from, to) -> label of every arrow of a state diagram, leaving out ``[*]`` arrows."""
    arrows = {}
    for line in block.splitlines():
        match = ARROW.match(line)
        if match and match[1] != "[*]":
            arrows[(match[1], match[2])] = match[3] or ""
    return arrows


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.lstrip().startswith("|")
    ]


@pytest.fixture(scope="module")
def states_doc() -> str:
    return (DOCS / "states.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def job_diagram(states_doc: str) -> dict[tuple[str, str], str]:
    blocks = [b for b in mermaid_blocks(states_doc) if "Queued" in b]
    assert len(blocks) == 1, "docs/states.md needs exactly one Mermaid diagram of job states"
    assert blocks[0].lstrip().startswith("stateDiagram-v2")
    return diagram_arrows(blocks[0])


@pytest.fixture(scope="module")
def legend(states_doc: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(from, to) -> (letter, name) of the legend table of the job diagram."""
    rows = [r for r in table_rows(states_doc) if len(r) == 5 and re.fullmatch(r"[a-z]", r[0])]
    return {(plain(r[1]), plain(r[2])): (r[0], r[3]) for r in rows}


def test_cli_reference_is_what_the_generator_writes_now(generated_cli_md: str) -> None:
    current = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert current == generated_cli_md, (
        "docs/cli.md is out of date with the CLI; run: python scripts/cli_reference.py"
    )


def test_cli_reference_has_a_help_section_for_every_command_and_subcommand(
    cli_reference: ModuleType, generated_cli_md: str
) -> None:
    paths = list(cli_reference.command_paths(typer.main.get_command(app)))
    assert ("workflow", "start") in paths
    for path in paths:
        title = " ".join(("runyard", *path))
        assert f"## {title}\n\n```text\nUsage: {title} " in generated_cli_md


def test_state_diagram_draws_every_transition_of_the_table_and_no_other(
    job_diagram: dict[tuple[str, str], str],
) -> None:
    assert set(job_diagram) == {(str(a), str(b)) for a, b in TRANSITIONS}


def test_state_legend_lists_every_transition_with_its_name(
    legend: dict[tuple[str, str], tuple[str, str]],
) -> None:
    assert {pair: name for pair, (_, name) in legend.items()} == {
        (str(a), str(b)): name for (a, b), name in TRANSITIONS.items()
    }


def test_state_diagram_arrows_carry_the_letters_of_the_legend(
    job_diagram: dict[tuple[str, str], str],
    legend: dict[tuple[str, str], tuple[str, str]],
) -> None:
    assert job_diagram == {pair: letter for pair, (letter, _) in legend.items()}
    letters = [letter for letter, _ in legend.values()]
    assert len(set(letters)) == len(letters), "each transition needs its own letter"


def test_workflow_diagram_draws_every_workflow_transition(states_doc: str) -> None:
    blocks = [b for b in mermaid_blocks(states_doc) if "Draft" in b]
    assert len(blocks) == 1, "docs/states.md needs exactly one Mermaid diagram of workflows"
    assert set(diagram_arrows(blocks[0])) == {(str(a), str(b)) for a, b in WORKFLOW_TRANSITIONS}


def test_glossary_has_an_entry_for_every_term_of_the_spec_and_of_runyard() -> None:
    text = (DOCS / "glossary.md").read_text(encoding="utf-8")
    headings = {plain(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}
    first_cells = {plain(row[0]) for row in table_rows(text) if row}
    entries = headings | first_cells
    missing = [t for t in GLOSSARY_TERMS + RUNYARD_TERMS if plain(t) not in entries]
    assert not missing, f"docs/glossary.md has no heading or table row for {missing}"
