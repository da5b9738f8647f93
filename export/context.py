"""What the format writers of one ``edgeyolo export`` share: the options, the prepared graph, the
metadata every artifact carries, the report they add to, and the ONNX files built once for every
format that starts from the ONNX graph (the FP32 ONNX, its FP16 copy, the INT8 Q/DQ model)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

from edgeyolo.formats import FORMATS

from .report import ExportReport
from .targets import Target

if TYPE_CHECKING:
    from .pipeline import ExportOptions


@dataclass
class ExportContext:
    o: ExportOptions
    target: Target
    opset: int
    deploy: nn.Module  # the prepared DeployModel every format is traced or exported from
    meta: dict[str, Any]  # names, stride, anchors, imgsz, ...: written into every artifact
    rep: ExportReport
    out: Path  # the folder artifacts are written to
    stem: str  # the weights' stem, which artifact names start with (``artifact_path``)
    nc: int
    log: Callable[[str], None]
    onnx: Path | None = None  # the FP32 ONNX (formats built from the ONNX graph)
    fp16_onnx: Path | None = None  # written for --format onnx --fp16, or for a strongly typed engine
    _int8_onnx: Path | None = None

    def artifact_path(self, fmt: str, variant: str = "") -> Path:
        """Where an artifact of format ``fmt`` goes: ``<out>/<stem><variant><suffix>``, e.g.
        ``best_int8.onnx`` for ("onnx", "_int8")."""
        return self.out / f"{self.stem}{variant}{FORMATS[fmt].suffix}"

    @property
    def fnames(self) -> set[str]:
        """The requested format names."""
        return {f.name for f in self.o.formats}

    def int8_onnx(self) -> Path | None:
        """The Q/DQ INT8 ONNX, written on first use (the onnx and engine formats share it); None
        without --int8, or with --int8 implicit (TensorRT 8.x calibrates the FP32 ONNX itself)."""
        if self._int8_onnx is None and self.o.int8 and self.o.int8 != "implicit":
            from .int8.write import write_int8  # noqa: PLC0415
            if self.onnx is None:  # pragma: no cover - int8 applies to onnx/engine, which export the ONNX first
                raise ValueError("--int8 needs the ONNX export")
            self._int8_onnx = write_int8(self.o, self.onnx, self.artifact_path("onnx", "_int8"), self.rep, self.nc,
                                         self.target.runtime, self.log)
        return self._int8_onnx
