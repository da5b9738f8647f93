"""What a bench run measures: the model sources (``--weights`` checkpoints and artifacts,
``--models`` with random weights) and the matrix cells planned for them on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeyolo.formats import ARTIFACT_SUFFIXES, format_of

from .matrix import Cell, Machine, Source, artifact_cell, build_matrix

if TYPE_CHECKING:
    from .runner import BenchOptions


def make_sources(o: BenchOptions) -> list[Source]:
    """One Source per --weights file (a .pt checkpoint or an exported artifact) and --models name."""
    from edgeyolo.models.checkpoint import read_checkpoint  # noqa: PLC0415
    out: list[Source] = []
    for w in o.weights:
        w = Path(w)
        if not w.is_file():
            raise ValueError(f"--weights {w}: file not found")
        if w.name.endswith(ARTIFACT_SUFFIXES):
            out.append(Source(w.name, "artifact", w))
        elif w.suffix == ".pt":
            ck = read_checkpoint(w)
            out.append(Source(str(ck["cfg"].get("name") or w.stem), "checkpoint", w, len(ck["names"])))
        else:
            raise ValueError(f"--weights {w}: expected a .pt checkpoint or an artifact ({', '.join(ARTIFACT_SUFFIXES)})")
    out += [Source(m, "random", None, o.nc) for m in o.models]
    if not out:
        raise ValueError("nothing to bench: give --weights and/or --models")
    return out


def plan(o: BenchOptions, sources: list[Source], machine: Machine) -> list[Cell]:
    """The matrix of the checkpoint/random sources, then one cell per artifact (its format from the
    file name; precision, size and batch from the file itself)."""
    from edgeyolo.runtime.backends import load_backend  # noqa: PLC0415
    built = [s for s in sources if s.kind != "artifact"]
    cells = build_matrix(built, o.formats, o.precisions, o.sizes, o.batch, machine, o.device)
    for s in sources:
        if s.kind == "artifact":
            fmt = format_of(s.path).name
            try:  # size/precision/batch come from the file; loading it here also checks it early
                info = load_backend(s.path, "cpu" if not machine.cuda else o.device, o.threads).info
                cells.append(artifact_cell(s, fmt, info.precision, info.imgsz or o.sizes[0], info.batch or o.batch, machine, o.device))
            except (ValueError, RuntimeError) as e:
                cells.append(Cell(s, fmt, "?", o.sizes[0], o.batch, f"cannot load: {str(e).splitlines()[0][:200]}"))
    return cells
