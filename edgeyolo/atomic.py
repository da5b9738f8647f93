"""Atomic file writes: every file edgeyolo produces (checkpoints, exported models, reports, plots,
results) is written to a temporary file beside its destination and renamed onto it, so an
interrupted run leaves the previous file or none, never a half-written one. Standard library only:
the torch-free runtime uses it too."""
from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from pathlib import Path
from typing import Iterator


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it; put back at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same folder, same suffix, so writers that infer the format
    from it still work) to write to; renamed onto ``path`` when the block ends normally, deleted
    when it raises. The folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600: the file gets the mode open() would give it
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
