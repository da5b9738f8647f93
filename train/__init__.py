"""Stage 1 of the pipeline (installed as ``edgeyolo.train``): loss, training loop, validation."""
