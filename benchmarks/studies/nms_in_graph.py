"""In-graph NMS (ONNX NonMaxSuppression, what TensorRT builds INMSLayer from) against the runtime's
host NMS (numpy / OpenCV after a decoded output), on this CPU with ONNX Runtime.

Both get the same decoded (1, 25200, 9) prediction of yolov4s-mbv3s at 640 (the runtime_overhead
case: 100 objects, 3 overlapping candidates each, over low-objectness background), at the
deployment setting (conf 0.25, IoU 0.45) and the mAP-evaluation one (conf 0.001, IoU 0.65). The
in-graph side is timed as the runtime pays for it: the NMS tail alone in an ONNX Runtime session
(plain (K, 7) output, and the fixed (300, 7) rows an engine gets) plus the runtime's reading of its
rows. The detections of both sides are compared. A GPU's INMSLayer is not measured here (no
TensorRT on this machine): this says what the CPU path costs, which is where a Jetson's host NMS runs.

    python benchmarks/studies/nms_in_graph.py [--iters 30] [--out benchmarks/results/cpu]
"""
from __future__ import annotations

import argparse
import os
import platform

import numpy as np

from edgeyolo.bench.studies import write_answer
from edgeyolo.bench.studies.runtime_overhead import hundred_detections
from edgeyolo.ops.nms_numpy import non_max_suppression_numpy
from edgeyolo.runtime.info import ModelInfo
from edgeyolo.runtime.latency import time_calls
from edgeyolo.runtime.processing import Letterboxed, postprocess

IMGSZ, NC, N_ANCHORS = 640, 4, 25200
SETTINGS = {"deploy": (0.25, 0.45), "map_eval": (0.001, 0.65)}


def nms_session(n: int, nc: int, conf: float, iou: float, rows: int | None, threads: int | None):
    """An ONNX Runtime session of the NMS tail alone: decoded (1, n, 5 + nc) in, the in-graph NMS out."""
    import onnxruntime as ort  # noqa: PLC0415  (the export layer builds the graph; the timed part is ONNX Runtime)
    from onnx import TensorProto, helper  # noqa: PLC0415

    from edgeyolo.export.onnx_nms import add_onnx_nms  # noqa: PLC0415
    g = helper.make_graph([helper.make_node("Identity", ["images"], ["output"])], "tail",
                          [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, n, 5 + nc])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, 5 + nc])])
    model = add_onnx_nms(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), nc, conf, iou, rows=rows)
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _key(d: np.ndarray) -> list[tuple]:
    return sorted((int(r[5]), round(float(r[4]), 4), *(round(float(v), 1) for v in r[:4])) for r in d)


def run(iters: int, warmup: int, threads: int | None, anchors: int = N_ANCHORS) -> dict:
    pred = hundred_detections(anchors, IMGSZ, NC)
    info = ModelInfo("nms.onnx", "onnx", ["motorcycle", "car", "bus", "truck"], imgsz=IMGSZ, layout="onnx-nms")
    lb = [Letterboxed((IMGSZ, IMGSZ), (IMGSZ, IMGSZ), 1.0, (0.0, 0.0))]
    out: dict = {}
    for name, (conf, iou) in SETTINGS.items():
        host = non_max_suppression_numpy(pred, conf, iou, max_det=300)[0]
        row = {"conf": conf, "iou": iou, "host_detections": len(host),
               "host_ms": time_calls(lambda: non_max_suppression_numpy(pred, conf, iou, max_det=300), iters, warmup).__dict__}
        for kind, rows in (("in_graph", None), ("in_graph_fixed_rows", 300)):
            s = nms_session(anchors, NC, conf, iou, rows, threads)

            def call(s=s):
                return postprocess(s.run(None, {"images": pred}), info, lb, conf, iou, 300)[0]
            dets = call()
            row[f"{kind}_ms"] = time_calls(call, iters, warmup).__dict__
            row[f"{kind}_detections"] = len(dets)
            row[f"{kind}_same_as_host"] = _key(dets) == _key(host)
        out[name] = row
    return {"imgsz": IMGSZ, "anchors": anchors, "nc": NC, "threads": threads or os.cpu_count(), "settings": out}


def markdown(r: dict, machine: str) -> str:
    lines = [f"# In-graph NMS vs host NMS (CPU, ONNX Runtime)\n\n{machine}; `python benchmarks/studies/nms_in_graph.py`. "
             f"Decoded (1, {r['anchors']}, {5 + r['nc']}) input, {r['threads']} threads; p50 ms (mean).\n",
             "| setting | host NMS | in-graph NonMaxSuppression | in-graph, fixed 300 rows | detections host / in-graph / fixed | same boxes |",
             "|---|---|---|---|---|---|"]
    for name, s in r["settings"].items():
        ms = [f"{s[k]['p50']:.2f} ({s[k]['mean']:.2f})" for k in ("host_ms", "in_graph_ms", "in_graph_fixed_rows_ms")]
        same = "yes" if s["in_graph_same_as_host"] and s["in_graph_fixed_rows_same_as_host"] else "no"
        lines.append(f"| {name} (conf {s['conf']}, IoU {s['iou']}) | {' | '.join(ms)} | {s['host_detections']} / "
                     f"{s['in_graph_detections']} / {s['in_graph_fixed_rows_detections']} | {same} |")
    d = r["settings"]["deploy"]
    host_wins = d["host_ms"]["p50"] <= d["in_graph_fixed_rows_ms"]["p50"]
    lines.append(f"\nDefault chosen from the deploy row: {'host NMS' if host_wins else 'in-graph NMS'} is faster at "
                 f"conf 0.25 ({d['host_ms']['p50']:.2f} vs {d['in_graph_fixed_rows_ms']['p50']:.2f} ms), so "
                 + ("exports keep the decoded output and `--nms` stays opt-in; with `--nms`, engines get "
                    "NonMaxSuppression (INMSLayer) from TensorRT 8.5, EfficientNMS_TRT only on 8.2 or with `--nms efficient`."
                    if host_wins else "`--nms` should become the default for engines.")
                 + " The in-graph NMS wins at conf 0.001, an evaluation setting, where the host NMS meets its "
                   "30,000-candidate cap.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/cpu")
    a = ap.parse_args()
    r = run(a.iters, a.warmup, a.threads)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    r["machine"] = machine
    write_answer(a.out, "nms_in_graph", r, markdown(r, machine))


if __name__ == "__main__":
    main()
