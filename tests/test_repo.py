"""Repository rules a green CI cannot see otherwise."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    match = re.search(r"^# (?:and )?test command: (.+)$", readme, re.M) or re.search(r"<!-- test-command: (.+?) -->", readme)
    assert match, "README.md must state its test command"
    assert ci[-1].strip() == match.group(1).strip()


def test_no_init_in_tests():
    assert not (ROOT / "tests" / "__init__.py").exists()
