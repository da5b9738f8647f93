"""One-off studies: each answers one question once (which backbone, what a timing harness costs,
whether INT8 keeps the mAP...) and writes its answer under ``benchmarks/results/<device>/``.

Each runs as ``python benchmarks/studies/<name>.py`` (or ``python -m edgeyolo.bench.studies.<name>``)
and, like the CLI, may drive any stage; no library module imports a study, so the bench library
stays free of training code (tests/test_import_rules.py).
"""
import json
from pathlib import Path
from typing import Any

from edgeyolo.atomic import atomic_path, atomic_write_text

# Where the studies write their committed results (the bench library's folder, not this one).
RESULTS = Path(__file__).resolve().parents[1] / "results"


def write_answer(out: str | Path, stem: str, result: dict[str, Any], markdown: str) -> None:
    """``out/stem.json`` (the numbers) and ``out/stem.md`` (the table people read), each atomic;
    the table is printed too."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / f"{stem}.md", markdown)
    print(markdown)


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """A study's matplotlib figure laid out, written atomically to ``path`` (PNG) and closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
