"""Runtime pre/post-processing cost against inference, so a deployment's time goes to the model:
for yolov4s-mbv3s at 640 on this CPU, pre-processing (letterbox + BGR->RGB + scale + NCHW of a camera frame) and
post-processing (NMS of a decoded (1, 25200, 9) output that keeps 100 detections, boxes mapped
back to the frame) must stay under 10% of ONNX Runtime's inference time.

The inference is the real exported graph (random weights: latency does not depend on them). The
post-processing input is built to the stated case: 100 separated objects, each predicted by 3
overlapping candidates (300 boxes for NMS), over a background of low-objectness predictions; the
typical case (conf 0.25) and the mAP-evaluation setting (conf 0.001) are both timed.

The same model is also exported with ``--uint8-input`` (BGR->RGB, /255 and NCHW in the graph): its
pre-processing is the letterbox alone. Float and uint8 pre-processing and inference are timed in
alternating blocks, so a change of machine load during the run hits both alike.

    python benchmarks/studies/runtime_overhead.py [--imgsz 640] [--iters 50] [--out benchmarks/results/<machine>]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeyolo.atomic import atomic_write_text
from edgeyolo.bench.studies import write_answer
from edgeyolo.runtime.backends import load_backend
from edgeyolo.runtime.detector import Detector
from edgeyolo.ops.nms_numpy import non_max_suppression_numpy
from edgeyolo.runtime.latency import Timing, time_calls


def export_model(name: str, imgsz: int, out: Path, uint8_input: bool = False) -> Path:
    import torch  # noqa: PLC0415  (only to build and export the model; the timed runtime never imports it)

    from edgeyolo.formats import parse_formats  # noqa: PLC0415
    from edgeyolo.export.pipeline import ExportOptions, run_export  # noqa: PLC0415
    from edgeyolo.models import build_model  # noqa: PLC0415
    from edgeyolo.models.checkpoint import save_checkpoint  # noqa: PLC0415
    torch.manual_seed(0)
    ckpt = save_checkpoint(out / f"{name}.pt", build_model(name, nc=4).eval(), ["motorcycle", "car", "bus", "truck"])
    rep = run_export(ExportOptions(weights=ckpt, formats=parse_formats("onnx"), imgsz=imgsz, out=out, verify=False,
                                   uint8_input=uint8_input), log=lambda s: None)
    return Path(rep.artifacts[-1].path)


def conversion_probe(imgsz: int, out: Path) -> Path:
    """The --uint8-input conversion alone (Transpose, Slice, Cast, Div): a DeployModel whose model
    returns its input, so its time is what the conversion adds to the graph (plus copying out a
    float image: an upper bound)."""
    import torch  # noqa: PLC0415

    from edgeyolo.export.deploy import DeployModel  # noqa: PLC0415
    from edgeyolo.export.onnx_export import export_onnx  # noqa: PLC0415

    class Identity(torch.nn.Module):
        def forward_raw(self, x):
            return [x + 0.0]
    return export_onnx(DeployModel(Identity(), decode=False, uint8_input=True).eval(), out / "probe.onnx", imgsz)


def hundred_detections(n_anchors: int, imgsz: int, nc: int = 4, seed: int = 0) -> np.ndarray:
    """A decoded (1, n_anchors, 5 + nc) output whose NMS at conf 0.25 keeps exactly 100 boxes."""
    rng = np.random.default_rng(seed)
    pred = np.zeros((1, n_anchors, 5 + nc), np.float32)
    pred[0, :, :2] = rng.random((n_anchors, 2)) * imgsz
    pred[0, :, 2:4] = rng.random((n_anchors, 2)) * 60 + 4
    pred[0, :, 4] = rng.random(n_anchors) * 0.02  # background: objectness under 0.02
    pred[0, :, 5:] = rng.random((n_anchors, nc))
    idx = rng.choice(n_anchors, 300, replace=False)
    step = imgsz / 10
    for k, i in enumerate(idx):
        obj = k // 3  # 100 objects on a 10 x 10 grid, 3 candidates each
        cx, cy = (obj % 10 + 0.5) * step, (obj // 10 + 0.5) * step
        pred[0, i, :4] = (cx + (k % 3) * 2, cy + (k % 3), step * 0.6, step * 0.5)
        pred[0, i, 4] = 0.9 - 0.1 * (k % 3)
        pred[0, i, 5:] = 0.05
        pred[0, i, 5 + obj % nc] = 0.95
    return pred


def alternating(fns: dict, iters: int, warmup: int, blocks: int = 5) -> dict[str, Timing]:
    """Each of ``fns`` timed in ``blocks`` interleaved blocks (warm-up before each block), the order
    rotated every block so that no function always runs right after the same other one."""
    ms: dict[str, list[float]] = {k: [] for k in fns}
    items = list(fns.items())
    for b in range(blocks):
        for k, fn in items[b % len(items):] + items[:b % len(items)]:
            for _ in range(warmup):
                fn()
            for _ in range(max(iters // blocks, 1)):
                t0 = time.perf_counter()
                fn()
                ms[k].append((time.perf_counter() - t0) * 1e3)
    return {k: Timing.of(v) for k, v in ms.items()}


def uint8_input_case(det: Detector, float_x: np.ndarray, img: np.ndarray, onnx_u8: Path, probe: Path,
                     threads: int | None, iters: int, warmup: int) -> dict[str, Timing]:
    """Float vs --uint8-input: the same frame, the same weights; outputs checked equal first."""
    from edgeyolo.runtime.backends import OrtBackend  # noqa: PLC0415
    det8 = Detector(load_backend(onnx_u8, threads=threads), conf=0.25, iou=0.45)
    x8, _ = det8.preprocess([img])
    assert x8.dtype == np.uint8 and x8.shape[-1] == 3, (x8.dtype, x8.shape)
    np.testing.assert_allclose(det8.infer(x8)[0], det.infer(float_x)[0], rtol=1e-4, atol=1e-3)
    conv = OrtBackend(probe, threads=threads)
    np.testing.assert_allclose(conv(x8)[0], float_x, atol=1e-7)  # the graph sees what the float path feeds
    return alternating({"in_graph_conversion_only": lambda: conv(x8),"preprocess_float_input": lambda: det.preprocess([img]),
                        "preprocess_uint8_input": lambda: det8.preprocess([img]),
                        "inference_float_input": lambda: det.infer(float_x),
                        "inference_uint8_input": lambda: det8.infer(x8)}, iters, warmup)


def run(imgsz: int, iters: int, warmup: int, threads: int | None, frame: tuple[int, int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_model("yolov4s-mbv3s", imgsz, Path(tmp))
        onnx_u8 = export_model("yolov4s-mbv3s", imgsz, Path(tmp) / "uint8", uint8_input=True)
        probe = conversion_probe(imgsz, Path(tmp))
        backend = load_backend(onnx_path, threads=threads)
        det = Detector(backend, conf=0.25, iou=0.45)
        img = np.random.default_rng(1).integers(0, 256, (frame[1], frame[0], 3), dtype=np.uint8)
        x, lbs = det.preprocess([img])
        n_anchors = backend(x)[0].shape[1]
        pred = [hundred_detections(n_anchors, imgsz)]
        kept = det.postprocess(pred, lbs)[0]
        assert len(kept) == 100, len(kept)
        t = {"inference": time_calls(lambda: det.infer(x), iters, warmup),
             "preprocess": time_calls(lambda: det.preprocess([img]), iters, warmup),
             "postprocess_conf0.25_100det": time_calls(lambda: det.postprocess(pred, lbs), iters, warmup)}
        det_val = Detector(backend, conf=0.001, iou=0.65)
        t["postprocess_conf0.001"] = time_calls(lambda: det_val.postprocess(pred, lbs), iters, warmup)
        # what the numpy switch above CV2_MAX_BOXES avoids: OpenCV's NMS alone on the same 30,000 candidates
        t["nms_conf0.001_opencv_only"] = time_calls(
            lambda: non_max_suppression_numpy(pred[0], 0.001, 0.65, max_det=300, backend="cv2"), 3, 0)
        t.update(uint8_input_case(det, x, img, onnx_u8, probe, threads, iters, warmup))
    inf = t["inference"].p50
    share = (t["preprocess"].p50 + t["postprocess_conf0.25_100det"].p50) / inf
    return {"model": "yolov4s-mbv3s", "imgsz": imgsz, "frame": f"{frame[0]}x{frame[1]}", "detections": 100,
            "threads": threads or os.cpu_count(), "timings_ms": {k: v.__dict__ for k, v in t.items()},
            "pre_plus_post_share_of_inference": round(share, 4), "target": "< 0.10", "met": share < 0.10}


def markdown(r: dict, machine: str) -> str:
    rows = "\n".join(f"| {k} | {v['p50']:.2f} | {v['p90']:.2f} | {v['mean']:.2f} | {v['p50'] / r['timings_ms']['inference']['p50'] * 100:.1f}% |"
                     for k, v in r["timings_ms"].items())
    return (f"# Runtime pre/post-processing vs inference\n\n{machine}; `python benchmarks/studies/runtime_overhead.py`.\n"
            f"{r['model']} exported to ONNX at {r['imgsz']}, ONNX Runtime CPU, {r['threads']} threads; "
            f"a {r['frame']} BGR frame; post-processing keeps {r['detections']} detections (300 candidates).\n\n"
            "| step | p50 ms | p90 ms | mean ms | share of inference (p50) |\n|---|---|---|---|---|\n" + rows +
            f"\n\nPre-processing + post-processing (conf 0.25, 100 detections) = "
            f"**{r['pre_plus_post_share_of_inference'] * 100:.1f}%** of inference (target {r['target'].replace('< 0.10', 'under 10%')}: "
            f"{'met' if r['met'] else 'NOT met'}).\n\n"
            "`postprocess_conf0.001` is the mAP-evaluation setting, not a deployment one: every background "
            "prediction of this adversarial input passes conf 0.001, so NMS sees the 30,000-candidate cap "
            f"(`nms_conf0.001_opencv_only`: OpenCV's NMS alone took {r['timings_ms']['nms_conf0.001_opencv_only']['p50'] / 1e3:.1f} s there, "
            "which is why the runtime switches to its early-stopping numpy loop above 2,000 candidates).\n"
            + uint8_markdown(r))


def uint8_markdown(r: dict) -> str:
    t = r["timings_ms"]
    if "preprocess_uint8_input" not in t:
        return ""
    pf, pu = t["preprocess_float_input"]["p50"], t["preprocess_uint8_input"]["p50"]
    inf_f, inf_u = t["inference_float_input"]["p50"], t["inference_uint8_input"]["p50"]
    return ("\n## Float vs uint8 input (`edgeyolo export --uint8-input`)\n\n"
            "The same frame and weights; the uint8 artifact's pre-processing is the letterbox alone (BGR->RGB, /255 and "
            "NCHW run in its graph). Timed in 5 alternating blocks (order rotated); outputs checked equal (1e-3) before "
            "timing.\n\n"
            "| per image, p50 ms | float input | uint8 input | difference |\n|---|---|---|---|\n"
            f"| pre-processing (host CPU) | {pf:.2f} | {pu:.2f} | {pu - pf:+.2f} ({(pu - pf) / pf * 100:+.0f}%) |\n"
            f"| inference (ONNX Runtime, same CPU) | {inf_f:.2f} | {inf_u:.2f} | {inf_u - inf_f:+.2f} |\n"
            f"| pre-processing + inference | {pf + inf_f:.2f} | {pu + inf_u:.2f} | {pu + inf_u - pf - inf_f:+.2f} |\n"
            f"| the in-graph conversion alone (upper bound) | | {t['in_graph_conversion_only']['p50']:.2f} | |\n\n"
            "Here the graph runs on the same CPU, so the conversion moves rather than disappears: what it adds to the "
            "graph is the last row (a graph of only Transpose, Slice, Cast, Div, timed with its float output copied "
            "out); the inference rows differ by more than that only through the load of this shared machine. On a "
            "Jetson the graph runs on the GPU, and the host saving is the pre-processing row. "
            f"Load average {r.get('load', '?')} at the start and {r.get('load_end', '?')} at the end.\n")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--frame", default="1280x720", help="camera frame size WxH")
    ap.add_argument("--out", default="benchmarks/results/cpu")
    ap.add_argument("--render", default=None, help="only rewrite the .md from this runtime_overhead.json")
    a = ap.parse_args()
    if a.render:
        r = json.loads(Path(a.render).read_text())
        atomic_write_text(Path(a.render).with_suffix(".md"), markdown(r, r["machine"]))
        return
    frame = tuple(int(v) for v in a.frame.lower().split("x"))
    load = os.getloadavg()
    r = run(a.imgsz, a.iters, a.warmup, a.threads, frame)
    r["load"], r["load_end"] = round(load[0], 2), round(os.getloadavg()[0], 2)
    machine = f"{cpu_name()}, {os.cpu_count()} cores, load {r['load']:.2f} (start) / {r['load_end']:.2f} (end)"
    r["machine"] = machine
    write_answer(a.out, "runtime_overhead", r, markdown(r, machine))


if __name__ == "__main__":
    main()
