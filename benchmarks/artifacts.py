"""Artifacts for the bench cells, built through the export layer (``run_export``) and cached by a
content hash of (weights bytes, format, precision, imgsz, batch, export options, the code that
writes them), so a second run of the same matrix exports nothing; and the random-weights
checkpoints of ``--models``.

A cache entry is a folder named by the hash, renamed into place only when complete (a killed
export leaves a ``.tmp-*`` folder, never a half-written entry).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ENTRY_FILE = "bench-artifact.json"


def default_cache_dir() -> Path:
    """``$EDGEYOLO_CACHE/bench`` or ``~/.cache/edgeyolo/bench``."""
    env = os.environ.get("EDGEYOLO_CACHE")
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "edgeyolo") / "bench"


@dataclass(frozen=True)
class ExportSpec:
    """What decides an artifact's bytes besides the weights."""
    format: str
    precision: str
    imgsz: int
    batch: int
    calib_data: str | None = None  # data YAML (INT8 only)
    calib_images: int = 0
    calib_method: str = ""
    target: str | None = None  # export --target; None: the export default
    int8_mode: str = "on"  # export --int8 on|auto (auto measures mAP on calib_data's val split)

    def options(self) -> dict[str, Any]:
        d = {"format": self.format, "precision": self.precision, "imgsz": self.imgsz, "batch": self.batch,
             "target": self.target, "producer": producer_digest()}
        if self.precision == "int8":
            d.update(calib_data=self.calib_data, calib_images=self.calib_images, calib_method=self.calib_method,
                     int8_mode=self.int8_mode)
        return d


# What writes an artifact besides the options: edgeyolo's export and model code (sources and model
# YAMLs) and these libraries. A manual cache version would be forgotten sooner or later; an artifact
# the current code would not write must never be served from the cache.
PRODUCER_PACKAGES = ("edgeyolo.export", "edgeyolo.models")
PRODUCER_LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxslim", "onnxsim")


def source_digest(roots: list[Path], suffixes: tuple[str, ...] = (".py", ".yaml")) -> str:
    """sha256 over the relative paths and bytes of the files under ``roots`` with these suffixes."""
    h = hashlib.sha256()
    for root in roots:
        for f in sorted(p for p in Path(root).rglob("*") if p.suffix in suffixes and "__pycache__" not in p.parts):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def producer_digest() -> str:
    """16 hex digits over PRODUCER_PACKAGES' files and PRODUCER_LIBRARIES' versions."""
    import importlib.metadata  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415
    roots = [Path(r) for pkg in PRODUCER_PACKAGES for r in importlib.util.find_spec(pkg).submodule_search_locations]
    h = hashlib.sha256(source_digest(roots).encode())
    for lib in PRODUCER_LIBRARIES:
        try:
            h.update(f"{lib}={importlib.metadata.version(lib)};".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{lib}=-;".encode())
    return h.hexdigest()[:16]


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_key(weights: Path, spec: ExportSpec) -> str:
    """sha256 over the weights file's bytes and the export options (sorted JSON), 20 hex digits."""
    h = hashlib.sha256(file_digest(weights).encode())
    h.update(json.dumps(spec.options(), sort_keys=True).encode())
    return h.hexdigest()[:20]


def random_checkpoint(name: str, nc: int, cache_dir: Path, seed: int = 0) -> Path:
    """A checkpoint of zoo model ``name`` with seeded random weights, written once and reused (so
    its bytes, and the export cache keys derived from them, are stable across runs)."""
    import torch  # noqa: PLC0415

    from edgeyolo.models import build_model  # noqa: PLC0415
    from edgeyolo.models.checkpoint import save_checkpoint  # noqa: PLC0415
    path = cache_dir / "random" / f"{name}-nc{nc}-seed{seed}.pt"
    if path.is_file():
        return path
    torch.manual_seed(seed)
    model = build_model(name, nc=nc)  # an unknown name is build_model's one-line ValueError
    save_checkpoint(path, model.eval(), [f"class{i}" for i in range(nc)], {"random_weights": True, "seed": seed})
    return path


def cached_export(weights: Path, spec: ExportSpec, cache_dir: Path, log: Callable[[str], None] = print) -> tuple[Path, bool]:
    """The artifact of ``weights`` for ``spec``: from the cache, else exported now. Returns
    (artifact path, whether it came from the cache)."""
    key = content_key(weights, spec)
    entry = cache_dir / "exports" / key
    meta = entry / ENTRY_FILE
    if meta.is_file():
        art = entry / json.loads(meta.read_text())["artifact"]
        if art.is_file():
            return art, True
    from edgeyolo.formats import FORMATS  # noqa: PLC0415
    from edgeyolo.export.pipeline import ExportOptions, run_export  # noqa: PLC0415
    tmp = cache_dir / "exports" / f".tmp-{key}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        o = ExportOptions(weights=weights, formats=[FORMATS[spec.format]], imgsz=spec.imgsz, batch=spec.batch,
                          fp16=spec.precision == "fp16", int8=spec.int8_mode if spec.precision == "int8" else None,
                          calib_data=Path(spec.calib_data) if spec.calib_data else None,
                          calib_images=spec.calib_images or 512, calib_method=spec.calib_method or "entropy",
                          target=spec.target, out=tmp, verify=False,
                          data=Path(spec.calib_data) if spec.int8_mode == "auto" and spec.calib_data else None)
        rep = run_export(o, log=lambda m: log(f"  export: {m}"))
        arts = [a for a in rep.artifacts if a.format == spec.format and a.precision == spec.precision
                and not a.path.endswith("_nms.onnx")]
        if not arts:
            raise ValueError(f"{weights}: the export wrote no {spec.format} {spec.precision} artifact")
        if arts[-1].error:
            log(f"  export warning: {arts[-1].error}")
        name = Path(arts[-1].path).name
        (tmp / ENTRY_FILE).write_text(json.dumps({"artifact": name, "weights": str(weights), **spec.options(),
                                                  "seconds": arts[-1].seconds}, indent=1))
        try:
            os.rename(tmp, entry)
        except OSError:  # another run finished the same entry first: use it
            shutil.rmtree(tmp, ignore_errors=True)
        return entry / name, False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
