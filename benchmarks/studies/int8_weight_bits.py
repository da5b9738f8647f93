"""ONNX Runtime INT8 with 8-bit weights against 7-bit ones, on this CPU: does the export's choice of
7-bit weights for the ``ort`` target (``export/int8/qdq.py``) cost accuracy, and what does it save?

On x86 CPUs without VNNI (AVX2 only) ORT's U8S8 convolution kernels add pairs of uint8 x int8
products in int16 and saturate with full-range weights; with VNNI (or on ARM) they do not, and 8
bits are only finer. The two models come from the same FP32 ONNX and calibration, one with ORT's
``reduce_range`` and one without; the row for this CPU says which case it is (its ISA flags).
Writes ``int8_weight_bits.{json,md}`` and prints the table.

    python benchmarks/studies/int8_weight_bits.py --weights best.pt --data data.yaml --out DIR [--imgsz 320]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.device import cpu_features
from edgeyolo.export.evaluate import evaluate_map
from edgeyolo.export.int8.calibration import calibration_batches
from edgeyolo.export.int8.qdq import quantize_qdq
from edgeyolo.export.onnx_export import export_onnx
from edgeyolo.export.deploy import prepare_model
from edgeyolo.export.targets import get_target
from edgeyolo.models.checkpoint import load_model
from edgeyolo.runtime.backends import OrtBackend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--calib-images", type=int, default=256)
    ap.add_argument("--out", type=Path, required=True, help="folder for int8_weight_bits.{json,md}")
    a = ap.parse_args()
    model, _ = load_model(a.weights)
    deploy, _ = prepare_model(model, get_target("ort"))
    batches = calibration_batches(a.data, a.imgsz, a.calib_images)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(deploy, Path(tmp) / "fp32.onnx", a.imgsz)
        paths = {"FP32": fp32, "INT8, 7-bit weights (the export's)": quantize_qdq(fp32, Path(tmp) / "w7.onnx", batches, "entropy",
                                                                   runtime="onnxruntime"),
                 "INT8, 8-bit weights": quantize_qdq(fp32, Path(tmp) / "w8.onnx", batches, "entropy",
                                                     runtime="onnxruntime", full_range_weights=True)}
        for label, path in paths.items():
            t0 = time.perf_counter()
            r = evaluate_map(OrtBackend(path), a.data, a.imgsz, model.nc)
            rows[label] = {**r.as_dict(), "seconds": round(time.perf_counter() - t0, 1)}
    res = {"weights": str(a.weights), "data": str(a.data), "imgsz": a.imgsz, "calib_images": a.calib_images,
           "cpu_isa": " ".join(cpu_features()) or "?", "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    lines = [f"# ORT INT8: 7-bit against 8-bit weights (CPU flags: {res['cpu_isa']})", "",
             f"{res['date']}; `{a.weights}` on `{a.data}` at {a.imgsz}, entropy calibration on {a.calib_images} "
             "training images, ONNX Runtime CPU. Produced by `python benchmarks/studies/int8_weight_bits.py`. Compare the "
             "two INT8 rows; for INT8 against FP32 with an interval on the drop, `edgeyolo export --int8 --data`.", "",
             "| model | mAP@0.5 | mAP@0.5:0.95 | images | eval s |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['mAP50']:.2f} | {v['mAP50-95']:.2f} | {v['images']} | {v['seconds']} |" for k, v in rows.items()]
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out / "int8_weight_bits.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(a.out / "int8_weight_bits.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
