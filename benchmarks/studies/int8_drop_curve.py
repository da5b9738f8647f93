"""INT8 mAP drop against the number of layers kept in float (``--int8 auto``'s search space).

``--int8 auto`` ranks the quantized convs by sensitivity and keeps the k most sensitive in float,
searching for the fewest k whose measured mAP drop passes the gate. This script measures the drop
for every k in a range, in the same ranking, so the shape of that curve (and how noisy it is on a
small validation set) can be seen rather than guessed. Writes JSON and a PNG.

    python benchmarks/studies/int8_drop_curve.py --weights best.pt --data data.yaml [--target ort]
        [--imgsz 320] [--calib-images 512] [--calib-method entropy] [--ks 0-20,24,32] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import RESULTS, save_figure
from edgeyolo.export.evaluate import evaluate_map
from edgeyolo.export.int8.calibration import calibration_batches, calibration_cache_path
from edgeyolo.export.int8.qdq import quantize_qdq
from edgeyolo.export.int8.search import kept_nodes
from edgeyolo.export.int8.sensitivity import detection_error, ranked_layers
from edgeyolo.export.pipeline import ExportOptions, run_export
from edgeyolo.export.targets import get_target
from edgeyolo.formats import FORMATS
from edgeyolo.runtime.backends import OrtBackend


def parse_ks(text: str) -> list[int]:
    """'0-3,8' -> [0, 1, 2, 3, 8]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return sorted(set(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="data YAML: calibration (train) and mAP (val)")
    ap.add_argument("--target", default="ort")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--calib-images", type=int, default=512)
    ap.add_argument("--calib-method", default="entropy", choices=["entropy", "minmax", "percentile"])
    ap.add_argument("--ks", default="0-20,24,32")
    ap.add_argument("--out", type=Path, default=RESULTS / "cpu" / "int8_auto")
    a = ap.parse_args()
    runtime = get_target(a.target).runtime
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        o = ExportOptions(weights=a.weights, formats=[FORMATS["onnx"]], imgsz=a.imgsz, target=a.target, out=work,
                          verify=False)
        fp32 = Path(next(x.path for x in run_export(o, log=lambda m: None).artifacts if x.precision == "fp32"))
        batches = calibration_batches(a.data, a.imgsz, a.calib_images, 1)
        cache = calibration_cache_path(fp32, batches, a.calib_method, work)
        q = quantize_qdq(fp32, work / "q.onnx", batches, a.calib_method, cache=cache, runtime=runtime)
        ref = OrtBackend(fp32)
        ranking = ranked_layers(q, fp32, detection_error(ref, batches[:8], a.imgsz))
        nc = ref(batches[0])[0].shape[-1] - 5
        base = evaluate_map(ref, a.data, a.imgsz, nc).map50_95 * 100
        curve = {}
        for k in (k for k in parse_ks(a.ks) if k <= len(ranking)):
            t0 = time.perf_counter()
            p = quantize_qdq(fp32, work / "q.onnx", None, a.calib_method, cache=cache, runtime=runtime,
                             exclude=kept_nodes(ranking, k))
            curve[k] = round(base - evaluate_map(OrtBackend(p), a.data, a.imgsz, nc).map50_95 * 100, 3)
            print(f"k={k}: drop {curve[k]:.3f} ({time.perf_counter() - t0:.1f}s)", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    stem = f"drop_by_layers_kept_{a.target.replace('.', '')}"
    report = {"weights": str(a.weights), "data": str(a.data), "target": a.target, "imgsz": a.imgsz,
              "calibration": f"{a.calib_method}, {a.calib_images} images", "fp32_map50_95": round(base, 3),
              "ranked_layers": len(ranking), "drop_by_k": curve}
    atomic_write_text(a.out / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(list(curve), list(curve.values()), "o-")
    ax.axhline(1.0, color="red", ls="--", label="INT8 gate (1.0 point)")
    ax.set(xlabel="most sensitive layers kept in float (k)", ylabel="mAP@0.5:0.95 drop (points)",
           title=f"INT8 drop vs layers kept in float ({a.weights.name}, --target {a.target})")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, a.out / f"{stem}.png", dpi=120)
    print(f"wrote {a.out / stem}.json/.png")


if __name__ == "__main__":
    main()
