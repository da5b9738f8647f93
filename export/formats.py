"""The one table of export formats: argument checking in ``edgeyolo export`` and backend
selection in the bench runner both read ``FORMATS``."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    backend: str  # what runs it: torch.jit | onnxruntime | tensorrt
    options: frozenset[str]  # export options that apply (the CLI's option names, dashes as underscores)
    requires: tuple[str, ...]  # importable modules it needs
    needs_cuda: bool
    install_hint: str

    def missing(self) -> list[str]:
        """What is missing here to build or run this format (empty when it can)."""
        out = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if self.needs_cuda:
            import torch
            if not torch.cuda.is_available():
                out.append("a CUDA GPU")
        return out

    def runnable_here(self) -> bool:
        return not self.missing()


# Options every format accepts.
COMMON = frozenset({"imgsz", "batch", "raw", "out", "verify", "data", "max_map_drop"})
_INT8 = frozenset({"int8", "calib_data", "calib_images", "calib_method", "keep_fp16", "max_int8_drop"})

FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("torchscript", ".torchscript", "torch.jit", COMMON | {"fp16"}, ("torch",), False,
           "torch (installed with edgeyolo); --fp16 needs a CUDA GPU"),
    Format("onnx", ".onnx", "onnxruntime", COMMON | _INT8 | {"fp16", "dynamic", "opset", "simplify", "nms", "target", "uint8_input"},
           ("onnx", "onnxruntime"), False, "onnx and onnxruntime (installed with edgeyolo)"),
    Format("engine", ".engine", "tensorrt",
           COMMON | _INT8 | {"fp16", "dynamic", "opset", "simplify", "nms", "target", "workspace", "dla", "uint8_input"},
           ("tensorrt",), True, "pip install 'edgeyolo[trt]' on a machine with TensorRT and a CUDA GPU"),
    Format("torch-tensorrt", ".trt.ts", "torch.jit", COMMON | {"fp16", "workspace"},
           ("torch_tensorrt",), True,
           "a CUDA GPU and the torch-tensorrt built for your torch: pip install 'torch-tensorrt==<torch major.minor>.*'"),
)}


def parse_formats(text: str) -> list[Format]:
    """``"torchscript,onnx"`` -> the Format entries, in the order given, without repeats."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError("--format is empty; choose from " + ", ".join(FORMATS))
    out: list[Format] = []
    for n in names:
        if n not in FORMATS:
            raise ValueError(f"unknown format {n!r}; choose from {', '.join(FORMATS)}")
        if FORMATS[n] not in out:
            out.append(FORMATS[n])
    return out


def check_options(formats: list[Format], given: dict[str, object]) -> None:
    """Refuse an option that applies to none of the chosen formats, with a one-line reason.

    ``given`` holds only the options the user set explicitly (name -> value).
    """
    for opt in given:
        if not any(opt in f.options for f in formats):
            takers = [f.name for f in FORMATS.values() if opt in f.options]
            flag = "--" + opt.replace("_", "-")
            chosen = ",".join(f.name for f in formats)
            raise ValueError(f"{flag} does not apply to --format {chosen}"
                             + (f" (it applies to {', '.join(takers)})" if takers else ""))


def check_requirements(formats: list[Format]) -> None:
    """One line naming what is missing for the first format that cannot be built here."""
    for f in formats:
        missing = f.missing()
        if missing:
            raise ValueError(f"--format {f.name} needs {', '.join(missing)}: {f.install_hint}")


def format_of(path: str | Path) -> Format:
    """The format of an artifact, from its file name."""
    name = Path(path).name
    for f in sorted(FORMATS.values(), key=lambda f: -len(f.suffix)):  # .trt.ts before .ts-like suffixes
        if name.endswith(f.suffix):
            return f
    raise ValueError(f"{path}: unknown artifact type; suffixes: {', '.join(f.suffix for f in FORMATS.values())}")
