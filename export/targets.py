"""Deploy targets: the runtime an ONNX graph is prepared for, which opset it gets
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
    implicit_int8: bool  # IInt8EntropyCalibrator2 still supported (deprecated in 10, removed in 11)
    runtime: str = TENSORRT
    # precision from the ONNX's own types, no FP16/INT8 builder flags: --fp16 builds from the FP16 ONNX
    strongly_typed: bool = False
    # the parser builds INMSLayer from ONNX NonMaxSuppression (8.5+); 8.2 maps it to a plugin
    nms_layer: bool = True

    @property
    def is_tensorrt(self) -> bool:
        return self.runtime == TENSORRT

    @property
    def label(self) -> str:
        return f"TensorRT {self.name}" if self.is_tensorrt else "ONNX Runtime (CPU)"


TARGETS: dict[str, Target] = {
    # 8.2 has no HardSwish importer and reads opset <= 13: rewrite to the Clip form.
    "8.2": Target("8.2", "JetPack 4.6 (Nano, TX2)", 13, 13, "clip", "explicit", True, nms_layer=False),
    # 8.5/8.6 parse HardSwish, but HardSigmoid * x keeps one activation layer type across the
    # zoo (SE gates already use HardSigmoid), and fuses the same; Mish is still unparsed.
    "8.5": Target("8.5", "JetPack 5.1 (Xavier, Orin)", 17, 17, "hardsigmoid", "explicit", True),
    "8.6": Target("8.6", "JetPack 6.0 (Orin)", 17, 17, "hardsigmoid", "explicit", True),
    # 10.x reads opset 9..20 and has a Mish importer, so Mish is not rewritten; the TorchScript-based
    # exporter still writes nn.Mish as Softplus/Tanh/Mul, which TensorRT 10 fuses the same.
    "10.3": Target("10.3", "JetPack 6.1/6.2 (Orin), Python 3.10", 17, 20, "hardsigmoid", "keep", False),
    # 10.16 parses what 10.3 does; it deprecates the precision flags and EfficientNMS_TRT (10.12).
    "10.16": Target("10.16", "JetPack 7.2 (Orin, Thor)", 17, 20, "hardsigmoid", "keep", False),
    # 11.x: strongly typed only (FP16 = an FP16 ONNX, INT8 = Q/DQ), no calibrators. The opset
    # ceiling is 10.16's: no 11.x operator matrix was read here, so the lint stays conservative.
    "11": Target("11", "JetPack 7.2.2+ (AGX Orin, Thor), desktop (pip install tensorrt)", 17, 20, "hardsigmoid",
                 "keep", False, strongly_typed=True),
    # ONNX Runtime's CPU Softplus is a scalar loop: 43% of yolov4s-mbv3s's latency at 320. The
    # sigmoid form of Mish runs on vectorised kernels (model 1.5-1.9x faster, benchmarks/results/cpu/
    # export_latency.md). HardSwish stays one native op. INT8 is written for ORT's QLinearConv
    # fusion (uint8 activations, conv outputs quantized), which TensorRT does not parse.
    "ort": Target("ort", "ONNX Runtime, CPU (x86-64, ARM64)", 17, 21, None, "sigmoid", False, ONNXRUNTIME),
}
DEFAULT_TARGET = "10.3"


def target_key(version: str) -> str:
    """A TensorRT version (``"10.8.0.43"``, ``"11.4"``, ``"10"``) -> its TARGETS key: 10.0-10.15 read
    as 10.3 (no parser or API difference the export uses), 10.16+ as 10.16, any 11.x as 11."""
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    if not parts:
        return version
    major, minor = parts[0], parts[1] if len(parts) > 1 else None
    if major == 10:
        return "10.16" if minor is not None and minor >= 16 else "10.3"
    if major >= 11:
        return "11"
    if major == 8 and minor is not None:
        return "8.2" if minor < 5 else "8.5" if minor == 5 else "8.6"
    return "8.5" if major == 8 else version


def get_target(name: str | None) -> Target:
    """``"8.2"``, ``"8.5"``, ``"8.6"``, ``"10.3"``, ``"10.16"``, ``"11"`` (any TensorRT version string maps
    to one of them, ``"10"`` to 10.3) or ``"ort"``."""
    key = DEFAULT_TARGET if name is None else str(name).strip().lower()
    if key not in TARGETS:
        key = target_key(key)
    if key not in TARGETS:
        raise ValueError(f"unknown --target {name!r}; valid: {', '.join(TARGETS)}")
    return TARGETS[key]


def engine_target(asked: str | None, version: str) -> Target:
    """The target of an engine built by TensorRT ``version`` (engines are built where they run): no
    --target means that version's; one of the other typing generation (10.x precision flags vs
    strongly typed 11.x) is refused in one line."""
    here = get_target(target_key(version))
    if asked is None:
        return here
    target = get_target(asked)
    if target.strongly_typed != here.strongly_typed:
        raise ValueError(f"--target {target.name}: this machine has TensorRT {version}, which builds --target "
                         f"{here.name} graphs; pass that, or build the engine on the device it is for")
    return target


def tensorrt_target_names() -> str:
    """The TensorRT targets, for error messages: "8.2, 8.5, 8.6, 10.3, 10.16, 11"."""
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
