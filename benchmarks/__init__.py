"""Stage 3 of the pipeline (installed as ``edgeyolo.bench``): the accuracy-vs-latency runner, its
scripts, and committed results under ``benchmarks/results/<device>/``. Never imports ``edgeyolo.train``."""
