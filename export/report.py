"""export.json: artifacts, sizes, graph rewrites, parity errors, mAPs, gate failures."""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeyolo.atomic import atomic_write_text


@dataclass
class Artifact:
    format: str
    path: str
    precision: str  # fp32 | fp16 | int8
    size_mb: float = 0.0
    seconds: float = 0.0
    parity: dict[str, Any] | None = None  # max_abs, max_rel, images
    map: dict[str, Any] | None = None  # mAP50-95, mAP50, images, drop
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class ExportReport:
    weights: str
    model: str
    imgsz: int
    batch: int
    target: str
    opset: int
    prep: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    pytorch_map: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # checks that could not run here, and why

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def add(self, artifact: Artifact) -> Artifact:
        p = Path(artifact.path)
        if p.is_file():
            artifact.size_mb = round(p.stat().st_size / 2**20, 3)
        self.artifacts.append(artifact)
        return artifact

    def write(self, path: str | Path) -> Path:
        data = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **asdict(self),
                "failed": self.failed}
        return atomic_write_text(path, json.dumps(data, indent=2) + "\n")
