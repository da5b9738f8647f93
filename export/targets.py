"""Deploy targets (SPEC section 5): the runtime an ONNX graph is prepared for, which opset it gets
and which rewrites it needs. TensorRT versions, plus ``ort``: ONNX Runtime on a CPU."""
from __future__ import annotations

from dataclasses import dataclass

TENSORRT, ONNXRUNTIME = "tensorrt", "onnxruntime"


@dataclass(frozen=True)
class Target:
    name: str
    platforms: str
    opset: int  # the opset exported by default: the highest this runtime's parser reads
    max_opset: int
    hardswish: str | None  # None: keep HardSwish; "hardsigmoid" / "clip": rewrite style
    mish: str  # "keep" (one nn.Mish), "explicit" (Softplus/Tanh/Mul), "sigmoid" (see rewrite.MishSigmoid)
    implicit_int8: bool  # IInt8EntropyCalibrator2 still supported (deprecated in 10)
    runtime: str = TENSORRT

    @property
    def is_tensorrt(self) -> bool:
        return self.runtime == TENSORRT

    @property
    def label(self) -> str:
        return f"TensorRT {self.name}" if self.is_tensorrt else "ONNX Runtime (CPU)"


TARGETS: dict[str, Target] = {
    # 8.2 has no HardSwish importer and reads opset <= 13: rewrite to the Clip form.
    "8.2": Target("8.2", "JetPack 4.6 (Nano, TX2)", 13, 13, "clip", "explicit", True),
    # 8.5/8.6 parse HardSwish, but HardSigmoid * x keeps one activation layer type across the
    # zoo (SE gates already use HardSigmoid), and fuses the same; Mish is still unparsed.
    "8.5": Target("8.5", "JetPack 5.1 (Xavier, Orin)", 17, 17, "hardsigmoid", "explicit", True),
    "8.6": Target("8.6", "JetPack 6.0 (Orin)", 17, 17, "hardsigmoid", "explicit", True),
    # 10.x reads opset 9..20 and has a Mish importer, so Mish is not rewritten; the TorchScript-based
    # exporter still writes nn.Mish as Softplus/Tanh/Mul, which TensorRT 10 fuses the same.
    "10": Target("10", "JetPack 6.1/6.2 (Orin), desktop", 17, 20, "hardsigmoid", "keep", False),
    # ONNX Runtime's CPU Softplus is a scalar loop: 43% of yolov4s-mbv3s's latency at 320. The
    # sigmoid form of Mish runs on vectorised kernels (model 1.5-1.9x faster, benchmarks/results/cpu/
    # export_latency.md). HardSwish stays one native op. INT8 is written for ORT's QLinearConv
    # fusion (uint8 activations, conv outputs quantized), which TensorRT does not parse.
    "ort": Target("ort", "ONNX Runtime, CPU (x86-64, ARM64)", 17, 21, None, "sigmoid", False, ONNXRUNTIME),
}
DEFAULT_TARGET = "10"


def get_target(name: str | None) -> Target:
    """``"8.2"``, ``"8.5"``, ``"8.6"``, ``"10"`` (``"10.3"`` etc. map to ``"10"``) or ``"ort"``."""
    key = DEFAULT_TARGET if name is None else str(name).strip().lower()
    if key.startswith("10"):
        key = "10"
    if key not in TARGETS:
        raise ValueError(f"unknown --target {name!r}; valid: {', '.join(TARGETS)}")
    return TARGETS[key]


def tensorrt_target_names() -> str:
    """The TensorRT targets, for error messages: "8.2, 8.5, 8.6, 10"."""
    return ", ".join(t for t, v in TARGETS.items() if v.is_tensorrt)


def check_target_formats(target: Target, formats: list[str]) -> None:
    """An ONNX Runtime target cannot feed TensorRT: refuse the combination in one line."""
    if not target.is_tensorrt and {"engine", "torch-tensorrt"} & set(formats):
        raise ValueError(f"--target {target.name} prepares the graph for ONNX Runtime; TensorRT formats need a "
                         f"TensorRT target ({tensorrt_target_names()})")


def resolve_opset(target: Target, opset: int | None) -> int:
    """The user's --opset, checked against the target's parser, or the target's default."""
    if opset is None:
        return target.opset
    if not 11 <= opset <= target.max_opset:
        raise ValueError(f"--opset {opset} is outside what {target.label} reads (11..{target.max_opset})")
    return opset
