"""What each artifact kind is, in one table: its file suffixes, the runtime backend that loads it,
the precisions export writes it in, what it needs to run, the export options that apply to it and
the export function that writes it. The runtime (``load_backend``), ``edgeyolo export`` (argument
checks, the per-format writers) and the bench (the matrix's skip reasons) all read ``FORMATS``.

Torch-free and Python 3.8 (the device runtime imports it on JetPack 5). The writer is named as
data, ``"module:function"``, so the core never imports the export stage; export resolves it.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]  # lower case; the first is what export writes, all are loaded (.plan: TensorRT's name)
    backend: str  # the runtime backend that loads it: onnxruntime | tensorrt | torch.jit | torch_tensorrt
    # precision -> "" when export writes it in that precision, else why not (a line for the bench table)
    precisions: dict[str, str] = field(compare=False)
    cuda_precisions: frozenset[str]  # precisions whose kernels do not run on the CPU (FP16 convs)
    options: frozenset[str]  # export options that apply (the CLI's option names, dashes as underscores)
    requires: tuple[str, ...]  # importable modules it needs
    needs_cuda: bool
    install_hint: str
    from_onnx: bool  # export builds it from the exported ONNX graph (its FP32/FP16/INT8 ONNX files)
    writer: str  # "module:function" of the export writer (a module of edgeyolo.export); "" when export writes none

    @property
    def suffix(self) -> str:
        """The suffix export writes."""
        return self.suffixes[0]

    def why_not(self, precision: str) -> str:
        """Empty when export writes this format in ``precision``, else why not."""
        return self.precisions[precision]

    def missing(self) -> list[str]:
        """What is missing here to build or run this format (empty when it can)."""
        out = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if self.needs_cuda:
            import torch  # noqa: PLC0415  (only formats that need a GPU ask, and they need torch to build)
            if not torch.cuda.is_available():
                out.append("a CUDA GPU")
        return out

    def runnable_here(self) -> bool:
        return not self.missing()


# Options every format accepts.
COMMON = frozenset({"imgsz", "batch", "raw", "out", "verify", "data", "max_map_drop"})
_INT8 = frozenset({"int8", "calib_data", "calib_images", "calib_method", "keep_fp16", "max_int8_drop"})
_ONNX_GRAPH = frozenset({"fp16", "dynamic", "opset", "simplify", "nms", "target", "uint8_input"})
_ALL = {"fp32": "", "fp16": "", "int8": ""}

FORMATS: dict[str, Format] = {f.name: f for f in (
    Format(name="torchscript", suffixes=(".torchscript",), backend="torch.jit",
           precisions={**_ALL, "int8": "TorchScript has no INT8 export; bench onnx or engine int8"},
           cuda_precisions=frozenset({"fp16"}), options=COMMON | {"fp16"}, requires=("torch",), needs_cuda=False,
           install_hint="torch (installed with edgeyolo); --fp16 needs a CUDA GPU",
           from_onnx=False, writer="edgeyolo.export.writers:write_torchscript"),
    Format(name="onnx", suffixes=(".onnx",), backend="onnxruntime",
           precisions={**_ALL, "fp16": "the export layer writes no FP16 ONNX; bench engine fp16"},
           cuda_precisions=frozenset(), options=COMMON | _INT8 | _ONNX_GRAPH, requires=("onnx", "onnxruntime"),
           needs_cuda=False, install_hint="onnx and onnxruntime (installed with edgeyolo)",
           from_onnx=True, writer="edgeyolo.export.writers:write_onnx"),
    Format(name="engine", suffixes=(".engine", ".plan"), backend="tensorrt", precisions=dict(_ALL),
           cuda_precisions=frozenset(), options=COMMON | _INT8 | _ONNX_GRAPH | {"workspace", "dla"},
           requires=("tensorrt",), needs_cuda=True,
           install_hint="pip install 'edgeyolo[trt]' on a machine with TensorRT and a CUDA GPU",
           from_onnx=True, writer="edgeyolo.export.writers:write_engine"),
    Format(name="torch-tensorrt", suffixes=(".trt.ts",), backend="torch_tensorrt",
           precisions={**_ALL, "int8": "torch-tensorrt INT8 is not exported; bench engine int8"},
           cuda_precisions=frozenset(), options=COMMON | {"fp16", "workspace"}, requires=("torch_tensorrt",),
           needs_cuda=True, install_hint="a CUDA GPU and the torch-tensorrt built for your torch: "
                                         "pip install 'torch-tensorrt==<torch major.minor>.*'",
           from_onnx=False, writer="edgeyolo.export.writers:write_torch_tensorrt"),
)}

# A training checkpoint run eagerly (the bench's "pytorch" rows): no export, no runtime backend.
CHECKPOINT = Format(name="pytorch", suffixes=(".pt",), backend="torch",
                    precisions={**_ALL, "int8": "PyTorch eager has no INT8 path here; bench onnx or engine int8"},
                    cuda_precisions=frozenset({"fp16"}), options=frozenset(), requires=(), needs_cuda=False,
                    install_hint="", from_onnx=False, writer="")

ARTIFACT_SUFFIXES = tuple(s for f in FORMATS.values() for s in f.suffixes)


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
    """The format of an artifact, from its file name (case-insensitive)."""
    name = Path(path).name.lower()
    by_length = sorted(((s, f) for f in FORMATS.values() for s in f.suffixes), key=lambda sf: -len(sf[0]))
    for suffix, f in by_length:  # longest first: .trt.ts is not read as another format's shorter suffix
        if name.endswith(suffix):
            return f
    raise ValueError(f"{path}: unknown artifact type {Path(path).suffix.lower()!r} "
                     f"(expected one of {', '.join(ARTIFACT_SUFFIXES)})")
