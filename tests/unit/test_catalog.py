import subprocess
import sys
from pathlib import Path

from support.catalog import readable

ROOT = Path(__file__).resolve().parents[2]


def test_docs_steps_md_is_generated_and_current() -> None:
    fresh = subprocess.run([sys.executable, "-m", "support.cli", "steps", "--markdown"], cwd=ROOT,
                           capture_output=True, text=True, check=True, timeout=60).stdout
    committed = (ROOT / "docs" / "steps.md").read_text()
    assert fresh == committed, "docs/steps.md is stale: run `make docs`"


def test_every_step_has_a_description_and_an_example() -> None:
    text = subprocess.run([sys.executable, "-m", "support.cli", "steps"], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60).stdout
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) >= 10
    for block in blocks:
        lines = block.splitlines()
        assert len(lines) == 3 and lines[2].strip().startswith("e.g. "), f"undocumented step: {lines[0]}"


def test_placeholders_are_readable() -> None:
    assert readable('"{dc}" takes over within {limit:Duration}') == '"<dc>" takes over within <limit>'
