"""The ``edgeyolo`` console script: checks the full toolkit is installed before loading the CLI,
so an install of only ``edgeyolo[runtime]`` gets one line pointing at the right command, not a
traceback."""
from __future__ import annotations

import importlib.util
import sys


def main() -> None:
    if sys.version_info < (3, 10):  # the toolkit evaluates `X | None` unions at import; the runtime needs 3.8
        sys.exit(f"edgeyolo: the toolkit needs Python >= 3.10, this is {sys.version.split()[0]} "
                 "(deployed models run on 3.8+ through `edgeyolo-run`)")
    missing = [m for m in ("click", "torch", "yaml") if importlib.util.find_spec(m) is None]
    if missing:
        sys.exit(f"edgeyolo: {', '.join(missing)} not installed: the toolkit needs `pip install \"edgeyolo[full]\"` "
                 "(deployed models run without torch through `edgeyolo-run`)")
    from .cli import main as cli_main  # noqa: PLC0415
    cli_main()
