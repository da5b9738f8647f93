"""TensorRT targets (SPEC section 5): which opset to export and which rewrites each needs."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    platforms: str
    opset: int  # the opset exported by default: the highest this parser reads
    max_opset: int
    hardswish: str | None  # None: keep HardSwish; "hardsigmoid" / "clip": rewrite style
    explicit_mish: bool  # Mish -> Softplus/Tanh/Mul
    implicit_int8: bool  # IInt8EntropyCalibrator2 still supported (deprecated in 10)


TARGETS: dict[str, Target] = {
    # 8.2 has no HardSwish importer and reads opset <= 13: rewrite to the Clip form.
    "8.2": Target("8.2", "JetPack 4.6 (Nano, TX2)", 13, 13, "clip", True, True),
    # 8.5/8.6 parse HardSwish, but HardSigmoid * x keeps one activation layer type across the
    # zoo (SE gates already use HardSigmoid), and fuses the same; Mish is still unparsed.
    "8.5": Target("8.5", "JetPack 5.1 (Xavier, Orin)", 17, 17, "hardsigmoid", True, True),
    "8.6": Target("8.6", "JetPack 6.0 (Orin)", 17, 17, "hardsigmoid", True, True),
    # 10.x reads opset 9..20 and has a Mish importer, so Mish is not rewritten; the TorchScript-based
    # exporter still writes nn.Mish as Softplus/Tanh/Mul, which TensorRT 10 fuses the same.
    "10": Target("10", "JetPack 6.1/6.2 (Orin), desktop", 17, 20, "hardsigmoid", False, False),
}
DEFAULT_TARGET = "10"


def get_target(name: str | None) -> Target:
    """``"8.2"``, ``"8.5"``, ``"8.6"``, ``"10"`` (``"10.3"`` etc. map to ``"10"``)."""
    key = DEFAULT_TARGET if name is None else str(name).strip()
    if key.startswith("10"):
        key = "10"
    if key not in TARGETS:
        raise ValueError(f"unknown --trt-target {name!r}; valid: {', '.join(TARGETS)}")
    return TARGETS[key]


def resolve_opset(target: Target, opset: int | None) -> int:
    """The user's --opset, checked against the target's parser, or the target's default."""
    if opset is None:
        return target.opset
    if not 11 <= opset <= target.max_opset:
        raise ValueError(f"--opset {opset} is outside what TensorRT {target.name} reads (11..{target.max_opset})")
    return opset
