"""The bench matrix: (model source, format, precision, image size) cells, and for each the reason
this machine cannot run it, if any. Pure: what the machine has is passed in (``Machine``)."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from edgeyolo.formats import CHECKPOINT, FORMATS, PRECISIONS, Format

# A matrix column: the checkpoint run eagerly ("pytorch", no export), then every export format.
ROWS: dict[str, Format] = {CHECKPOINT.name: CHECKPOINT, **FORMATS}
BENCH_FORMATS = tuple(ROWS)


@dataclass(frozen=True)
class Machine:
    cuda: bool
    modules: frozenset[str]  # importable modules among those the formats need
    ort_cuda: bool = False  # onnxruntime has the CUDAExecutionProvider (onnxruntime-gpu)

    @staticmethod
    def here() -> Machine:
        import torch  # noqa: PLC0415
        need = {m for f in FORMATS.values() for m in f.requires}
        modules = frozenset(m for m in need if importlib.util.find_spec(m) is not None)
        ort_cuda = False
        if "onnxruntime" in modules:
            import onnxruntime  # noqa: PLC0415
            ort_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        return Machine(torch.cuda.is_available(), modules, ort_cuda)


@dataclass(frozen=True)
class Source:
    """What a row of the matrix is built from: a checkpoint (exported per cell), an artifact
    (benched as it is), or a zoo name with random weights."""
    name: str  # model name for the tables
    kind: str  # checkpoint | artifact | random
    path: Path | None = None
    nc: int = 4


@dataclass
class Cell:
    source: Source
    format: str
    precision: str
    imgsz: int
    batch: int
    skip: str = ""  # why it is not run, empty when it is
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.source.name} {self.format} {self.precision} {self.imgsz}"


def parse_list(text: str, option: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    """``"a, b,a"`` -> ``["a", "b"]``; unknown entries are a one-line error naming ``option``."""
    items = list(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    if not items:
        raise ValueError(f"{option} is empty")
    if allowed is not None:
        bad = [i for i in items if i not in allowed]
        if bad:
            raise ValueError(f"{option}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}")
    return items


def parse_sizes(text: str) -> list[int]:
    out = []
    for t in parse_list(text, "--imgsz"):
        if not t.isdigit() or int(t) <= 0 or int(t) % 32:
            raise ValueError(f"--imgsz: {t!r} is not a positive multiple of 32 (the largest stride)")
        out.append(int(t))
    return out


def skip_reason(fmt: str, precision: str, machine: Machine, device: str) -> str:
    """Empty when ``fmt``/``precision`` can be built and run here on ``device``, else why not."""
    f = ROWS[fmt]
    why = f.why_not(precision)
    if why:
        return why
    missing = [m for m in f.requires if m not in machine.modules]
    if f.needs_cuda and not machine.cuda:
        missing.append("a CUDA GPU")
    if missing:
        return f"needs {', '.join(missing)} ({f.install_hint})"
    if f.needs_cuda and not device.startswith("cuda"):
        return f"{fmt} runs on the GPU only; pass --device cuda:0"
    if precision in f.cuda_precisions:
        if not machine.cuda:
            return f"{fmt} {precision} needs a CUDA GPU (FP16 kernels do not run on the CPU)"
        if not device.startswith("cuda"):
            return f"{fmt} {precision} needs --device cuda:0"
    if device.startswith("cuda") and not machine.cuda:
        return "--device cuda requested but torch sees no CUDA GPU"
    if fmt == "onnx" and device.startswith("cuda") and not machine.ort_cuda:
        # not run on the CPU provider instead: a GPU table would show a CPU latency under cuda:0
        return "onnx on the GPU needs onnxruntime-gpu (CUDAExecutionProvider); bench onnx with --device cpu"
    return ""


def artifact_cell(source: Source, fmt: str, precision: str, imgsz: int, batch: int, machine: Machine,
                  device: str) -> Cell:
    """The single cell of a given artifact (its format, precision and size are fixed by the file)."""
    return Cell(source, fmt, precision, imgsz, batch, skip_reason(fmt, precision, machine, device))


def build_matrix(sources: list[Source], formats: list[str], precisions: list[str], sizes: list[int], batch: int,
                 machine: Machine, device: str) -> list[Cell]:
    """Every (source, format, precision, size) of checkpoint/random sources, each with its skip
    reason; artifact sources are added by the caller with :func:`artifact_cell`."""
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    cells = []
    for s in sources:
        for size in sizes:
            for fmt in formats:
                for prec in precisions:
                    cells.append(Cell(s, fmt, prec, size, batch, skip_reason(fmt, prec, machine, device)))
    return cells
