"""The README's scenario reference is the schema's, and its Quickstart is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from simulator.scenario.reference import reference_markdown

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_reference_matches_schema() -> None:
    found = re.search(r"<!-- reference:start -->\n(.*)<!-- reference:end -->", README, re.S)
    assert found, "README lost its reference markers"
    assert found.group(1) == reference_markdown(), "regenerate: python -m simulator.scenario.reference"


def test_quickstart_has_two_commands_and_ci_runs_the_second() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line for line in quickstart.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "plgsim compare scenarios/*.toml" in commands[0]
    assert "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
