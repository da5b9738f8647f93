"""Import rules: the core never imports a stage; export and bench never import train; the CLI
imports stages lazily. Checked by walking every module's AST."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> package name, as mapped in setup.cfg
PACKAGES = {"edgeyolo": "edgeyolo", "train": "edgeyolo.train", "export": "edgeyolo.export", "benchmarks": "edgeyolo.bench"}
STAGES = ("edgeyolo.train", "edgeyolo.export", "edgeyolo.bench")


def _modules():
    for folder, pkg in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if folder == "edgeyolo" and parts and parts[0] in ("train", "export", "bench"):
                continue
            yield ".".join([pkg, *parts]), path


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _is_benchmark_script(path: Path) -> bool:
    """benchmarks/*.py run as ``python benchmarks/x.py`` (a ``__main__`` guard, imported by no
    module) are entry points, like the CLI: they may drive any stage. The runner's library
    modules may not."""
    if path.parent != ROOT / "benchmarks" or "if __name__ == \"__main__\":" not in path.read_text():
        return False
    stem = path.stem
    return not any(f"import {stem}" in p.read_text() or f".{stem} import" in p.read_text()
                   for p in (ROOT / "benchmarks").glob("*.py") if p != path)


def _violations(prefixes: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for name, path in _modules():
        if name.startswith(prefixes) and not _is_benchmark_script(path):
            for imp in _imports(name, path):
                if imp.startswith(forbidden):
                    bad.append(f"{name} imports {imp}")
    return bad


def test_core_imports_no_stage():
    assert _violations(("edgeyolo.models", "edgeyolo.ops", "edgeyolo.data", "edgeyolo.runtime"), STAGES) == []


def test_export_and_bench_never_import_train():
    assert _violations(("edgeyolo.export", "edgeyolo.bench"), ("edgeyolo.train",)) == []


def test_only_scripts_are_exempt():
    assert _is_benchmark_script(ROOT / "benchmarks" / "train_throughput.py")
    assert not _is_benchmark_script(ROOT / "benchmarks" / "__init__.py")


def test_walker_sees_every_package():
    names = {n for n, _ in _modules()}
    assert {"edgeyolo.models.builder", "edgeyolo.cli", "edgeyolo.runtime.backends", "edgeyolo.train", "edgeyolo.export",
            "edgeyolo.bench"} <= names


def test_cli_imports_stages_lazily():
    # The command group itself imports no stage (each command module imports its stage when run)...
    assert not any(i.startswith(STAGES) for i in _imports("edgeyolo.cli", ROOT / "edgeyolo" / "cli" / "__init__.py"))
    # ...and running a core command must not load any stage.
    code = ("import sys; from edgeyolo.cli import main\n"
            "try:\n    main(['info', '--model', 'yolov4s-mbv3s', '--imgsz', '64'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('edgeyolo.train', 'edgeyolo.export', 'edgeyolo.bench'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


TORCH_FREE = ["edgeyolo.ops.nms_numpy", "edgeyolo.ops.boxes", "edgeyolo.data.letterbox",
              *(n for n, _ in _modules() if n.startswith("edgeyolo.runtime"))]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_modules(module):
    """No torch import at module level in what the runtime loads (the TorchScript backend and the
    sidecar's GPU query import it inside a function, only where it is installed)."""
    path = dict(_modules())[module]
    top = ast.parse(path.read_text()).body
    names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in top if isinstance(n, ast.ImportFrom)}
    assert not any(i == "torch" or i.startswith(("torch.", "torchvision")) for i in names)
