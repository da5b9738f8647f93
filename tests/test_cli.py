"""The ``edgeyolo`` group: its command table, and ``python -m edgeyolo.cli`` (what torchrun and the
studies launch)."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from edgeyolo.cli import COMMANDS, load_command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_table_help_is_the_command_s_own(name):
    """The command list prints the table's line without importing the command: it must be the
    first paragraph of the command's docstring, as click would have printed it."""
    command = load_command(name)
    first_paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0]
    assert COMMANDS[name].help == " ".join(first_paragraph.split())
    assert command.name == name


def test_python_m_edgeyolo_cli():
    out = subprocess.run([sys.executable, "-m", "edgeyolo.cli", "--help"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("Usage: edgeyolo ")
    assert all(name in out.stdout for name in COMMANDS)
