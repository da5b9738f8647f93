"""What the runtime needs to know about a deployed artifact, read from the artifact itself:
ONNX ``metadata_props`` (through ONNX Runtime, no ``onnx`` package), the engine's JSON sidecar,
TorchScript extra files. The export layer writes all three from the same dict."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Output layouts the post-processing understands (see processing.postprocess).
DECODED, RAW, ONNX_NMS, EFFICIENT_NMS = "decoded", "raw", "onnx-nms", "efficient-nms"
EFFICIENT_NMS_OUTPUTS = ("num_dets", "det_boxes", "det_scores", "det_classes")
TORCHSCRIPT_METADATA = "config.json"  # the extra file a TorchScript export carries its metadata in
# Input formats, the ``input`` metadata key: float (B, 3, H, W) RGB in 0..1 (the default, also when
# the key is absent), or the letterboxed OpenCV image as it is, (B, H, W, 3) uint8 BGR, converted in
# the graph (``edgeyolo export --uint8-input``).
FLOAT_INPUT, UINT8_INPUT = "float_nchw_rgb", "uint8_nhwc_bgr"


@dataclass
class ModelInfo:
    """``imgsz`` None means any multiple of the largest stride; ``batch`` None means dynamic, up to
    ``max_batch`` when the artifact bounds it (a TensorRT profile), else any."""

    path: str
    format: str  # onnx | engine | torchscript | pytorch
    names: list[str]
    imgsz: int | None = None
    batch: int | None = 1
    stride: list[int] = field(default_factory=lambda: [8, 16, 32])
    anchors: list[list[list[float]]] | None = None  # (nl, na, 2) pixels, needed to decode --raw outputs
    layout: str = DECODED
    precision: str = "fp32"
    metadata: dict[str, Any] = field(default_factory=dict)
    max_batch: int | None = None

    @property
    def nc(self) -> int:
        return len(self.names)

    @property
    def input(self) -> str:
        return str(self.metadata.get("input") or FLOAT_INPUT)

    def describe(self) -> str:
        """What the artifact declares, a line per field (``edgeyolo info`` / ``edgeyolo-run info``)."""
        return "\n".join(f"{k:>10}: {getattr(self, k)}" for k in ("format", "precision", "imgsz", "batch", "input",
                                                                   "layout", "stride", "anchors", "names"))


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """metadata_props / TorchScript extra files store strings as-is and everything else as JSON."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except (json.JSONDecodeError, TypeError):
            out[k] = v
    return out


def precision_of(path: str | Path, meta: dict[str, Any]) -> str:
    """An artifact's precision: its metadata, else its name (``*_int8.onnx`` is the export layer's)."""
    if meta.get("half"):
        return "fp16"
    if meta.get("precision") in ("fp32", "fp16", "int8"):
        return str(meta["precision"])
    return "int8" if "_int8" in Path(path).name else "fp32"


def layout_of(output_names: list[str], output_ranks: list[int], meta: dict[str, Any]) -> str:
    """Which post-processing an artifact's outputs need, from their names and ranks."""
    if tuple(output_names[:4]) == EFFICIENT_NMS_OUTPUTS:
        return EFFICIENT_NMS
    if len(output_names) == 1 and output_ranks[0] == 2:
        return ONNX_NMS  # (K, 7) batch, x1, y1, x2, y2, score, class
    if meta.get("decode") is False or (len(output_names) > 1 and all(r == 5 for r in output_ranks)):
        return RAW
    return DECODED


def model_info(path: str | Path, fmt: str, meta: dict[str, Any], output_names: list[str], output_ranks: list[int],
               input_shape: tuple | list | None = None) -> ModelInfo:
    """A ModelInfo from an artifact's metadata and its I/O signature; one-line error when the
    metadata is not an edgeyolo export's."""
    names = meta.get("names")
    if isinstance(names, dict):  # {"0": "car", ...}
        names = [names[k] for k in sorted(names, key=int)]
    if not names:
        nc = int(meta.get("nc") or 0)
        if nc < 1:
            raise ValueError(f"{path}: no class names in the artifact's metadata (not an edgeyolo export?)")
        names = [str(i) for i in range(nc)]
    batch = meta.get("batch", 1)
    if input_shape is not None and len(input_shape) == 4:
        b = input_shape[0]
        batch = b if isinstance(b, int) and b > 0 else None  # a name or -1: dynamic batch
        if meta.get("imgsz") is None and all(isinstance(s, int) and s > 0 for s in input_shape[2:]):
            meta = {**meta, "imgsz": int(input_shape[2])}
    layout = layout_of(output_names, output_ranks, meta)
    anchors = meta.get("anchors")
    if layout == RAW and not anchors:
        raise ValueError(f"{path}: raw head outputs but no anchors in the metadata; re-export it with this edgeyolo")
    imgsz = meta.get("imgsz")
    if meta.get("input", FLOAT_INPUT) not in (FLOAT_INPUT, UINT8_INPUT):
        raise ValueError(f"{path}: unknown input format {meta['input']!r} in the metadata; update edgeyolo")
    return ModelInfo(str(path), fmt, [str(n) for n in names], int(imgsz) if imgsz else None, batch,
                     [int(s) for s in meta.get("stride") or (8, 16, 32)], anchors, layout, precision_of(path, meta),
                     meta)
