"""ONNX export: TorchScript-based exporter (its opset choice reaches back to 13 for TensorRT 8.2),
named ``images`` -> ``output``, optional dynamic batch, simplified, metadata in metadata_props."""
from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from edgeyolo.atomic import atomic_path

INPUT_NAME = "images"
OUTPUT_NAME = "output"


def output_names(model: nn.Module, example: torch.Tensor) -> list[str]:
    """``output`` for one tensor, ``output0..N`` for raw heads."""
    with torch.no_grad():
        y = model(example)
    return [OUTPUT_NAME] if isinstance(y, torch.Tensor) else [f"{OUTPUT_NAME}{i}" for i in range(len(y))]


def export_onnx(model: nn.Module, path: str | Path, imgsz: int, batch: int = 1, opset: int = 17,
                dynamic: bool = False, simplify: bool = True, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (eval mode, float32, CPU) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    # a DeployModel with uint8_input takes the letterboxed OpenCV image as it is: (B, H, W, 3) uint8 BGR
    x = (torch.zeros(batch, imgsz, imgsz, 3, dtype=torch.uint8) if getattr(model, "uint8_input", False)
         else torch.zeros(batch, 3, imgsz, imgsz))
    outs = output_names(model, x)
    dyn = {INPUT_NAME: {0: "batch"}, **{o: {0: "batch"} for o in outs}} if dynamic else None
    with atomic_path(path) as tmp:  # an interrupted export leaves no half-written model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python values
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=outs, dynamic_axes=dyn, do_constant_folding=True)
        proto = onnx.load(str(tmp))
        if simplify:
            proto = simplify_model(proto)
        set_metadata(proto, metadata or {})
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return path


def simplify_model(proto: onnx.ModelProto) -> onnx.ModelProto:
    """onnxslim (constant folding, dead/identity node removal, shape inference); onnxsim when only
    it is installed; the model unchanged when neither is."""
    try:
        import onnxslim
        return onnxslim.slim(proto)
    except ImportError:
        pass
    try:
        import onnxsim
        simplified, ok = onnxsim.simplify(proto)
        return simplified if ok else proto
    except ImportError:
        warnings.warn("neither onnxslim nor onnxsim is installed; ONNX left unsimplified", stacklevel=2)
        return proto


def set_metadata(proto: onnx.ModelProto, metadata: dict[str, Any]) -> None:
    """Write ``metadata`` into metadata_props: strings as-is, everything else as JSON."""
    existing = {p.key: p for p in proto.metadata_props}
    for k, v in metadata.items():
        text = v if isinstance(v, str) else json.dumps(v)
        if k in existing:
            existing[k].value = text
        else:
            proto.metadata_props.add(key=k, value=text)


def read_metadata(path_or_proto: str | Path | onnx.ModelProto) -> dict[str, Any]:
    """metadata_props back as a dict (JSON values decoded)."""
    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto),
                                                                                      load_external_data=False)
    out: dict[str, Any] = {}
    for p in proto.metadata_props:
        try:
            out[p.key] = json.loads(p.value)
        except json.JSONDecodeError:
            out[p.key] = p.value
    return out


def op_counts(path_or_proto: str | Path | onnx.ModelProto) -> Counter:
    """Node op types of the main graph, counted."""
    proto = path_or_proto if isinstance(path_or_proto, onnx.ModelProto) else onnx.load(str(path_or_proto),
                                                                                      load_external_data=False)
    return Counter(n.op_type for n in proto.graph.node)
