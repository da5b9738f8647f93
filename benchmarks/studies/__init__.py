"""One-off studies: each answers one question once (which backbone, what a timing harness costs,
whether INT8 keeps the mAP...) and writes its answer under ``benchmarks/results/<device>/``.

Each runs as ``python benchmarks/studies/<name>.py`` (or ``python -m edgeyolo.bench.studies.<name>``)
and, like the CLI, may drive any stage; no library module imports a study, so the bench library
stays free of training code (tests/test_import_rules.py).
"""
from pathlib import Path

# Where the studies write their committed results (the bench library's folder, not this one).
RESULTS = Path(__file__).resolve().parents[1] / "results"
