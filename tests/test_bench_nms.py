"""benchmarks/studies/nms_in_graph.py on a small prediction: in-graph NonMaxSuppression (plain and the
engine's fixed rows) keeps the same detections as the runtime's host NMS at both settings."""
from __future__ import annotations


def test_in_graph_and_host_nms_agree():
    from edgeyolo.bench.studies.nms_in_graph import markdown, run
    r = run(iters=1, warmup=0, threads=1, anchors=1200)
    for name, s in r["settings"].items():
        assert s["host_detections"] == (100 if name == "deploy" else 300), name
        assert s["in_graph_same_as_host"] and s["in_graph_fixed_rows_same_as_host"], name
    md = markdown(r, "test machine")
    assert "| deploy (conf 0.25, IoU 0.45) |" in md and "Default chosen from the deploy row" in md
