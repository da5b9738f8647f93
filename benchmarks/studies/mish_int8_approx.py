"""What an int8-friendly Mish would cost in accuracy, before any quantization: whether INT8 on
ONNX Runtime could run the Mish models' activations in int8 at all.

ONNX Runtime's CPU op set has no int8 Mish and no lookup-table op; its only int8 transcendental is
QLinearSigmoid. The one Mish that could run in int8 there is x * sigmoid(a x + b) (QLinearSigmoid,
with a and b folded into its input's scale and zero point, then QLinearMul). This script fits a, b
to Mish (least max error over [-8, 10]) and measures the FP32 mAP of the trained model with every
Mish replaced by that form: if the swap alone loses more than INT8's 1.0-point gate, the int8 path
is closed whatever the quantizer does. Writes JSON and prints one line.

    python benchmarks/studies/mish_int8_approx.py --weights best.pt --data data.yaml --out DIR [--imgsz 320]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from edgeyolo.atomic import atomic_write_text
from edgeyolo.export.deploy import DeployModel
from edgeyolo.export.evaluate import evaluate_map
from edgeyolo.export.rewrite import swap_modules
from edgeyolo.models.checkpoint import load_model
from edgeyolo.runtime.backends import TorchModuleBackend


class SigmoidMish(nn.Module):
    """x * sigmoid(a x + b): the Mish stand-in ONNX Runtime could run as QLinearSigmoid + QLinearMul."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.a * x + self.b)


def fit(lo: float = -8.0, hi: float = 10.0) -> tuple[float, float, float]:
    """(a, b, max |error|) of the grid-searched x * sigmoid(a x + b) closest to Mish on [lo, hi]."""
    x = torch.linspace(lo, hi, 20001, dtype=torch.float64)
    mish = nn.functional.mish(x)
    a = torch.arange(0.9, 1.6, 0.005, dtype=torch.float64).view(-1, 1, 1)
    b = torch.arange(-0.2, 0.8, 0.005, dtype=torch.float64).view(1, -1, 1)
    err = torch.stack([(x * torch.sigmoid(ai * x + b[0]) - mish).abs().amax(-1) for ai in a])  # (na, nb)
    i, j = divmod(int(err.argmin()), err.shape[1])
    return float(a[i]), float(b[0, j]), float(err[i, j])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--out", type=Path, required=True, help="folder for mish_int8_approx.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    ca, cb, max_err = fit()
    model, _ = load_model(a.weights)
    exact = evaluate_map(TorchModuleBackend(DeployModel(model).eval()), a.data, a.imgsz, model.nc)
    approx_model, n = swap_modules(model, lambda m: isinstance(m, nn.Mish), lambda m: SigmoidMish(ca, cb))
    approx = evaluate_map(TorchModuleBackend(DeployModel(approx_model).eval()), a.data, a.imgsz, model.nc)
    res = {"weights": str(a.weights), "imgsz": a.imgsz, "images": exact.images, "mish_replaced": n,
           "a": round(ca, 4), "b": round(cb, 4), "max_abs_error": round(max_err, 4),
           "fp32_map50_95": round(exact.map50_95 * 100, 2), "approx_map50_95": round(approx.map50_95 * 100, 2),
           "drop": round((exact.map50_95 - approx.map50_95) * 100, 2), "seconds": round(time.perf_counter() - t0, 1)}
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out / "mish_int8_approx.json", json.dumps(res, indent=1) + "\n")
    print(f"{n} Mish -> x*sigmoid({res['a']}x+{res['b']}) (max error {res['max_abs_error']}): mAP50-95 "
          f"{res['fp32_map50_95']} -> {res['approx_map50_95']} (drop {res['drop']} points, FP32, {res['images']} images)")


if __name__ == "__main__":
    main()
