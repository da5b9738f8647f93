"""The device runtime (``edgeyolo.runtime``, ``edgeyolo-run``) runs on Python 3.8: JetPack 5 ships
it and a Jetson cannot simply upgrade. The toolkit (train/export/bench) may use newer Python; the
runtime and every ``edgeyolo`` module it imports may not. Checked statically with vermin, plus the
few 3.9+ calls vermin cannot see (it only knows ``s.removeprefix`` is ``str``'s when it can infer
``s``'s type), plus, where a Python 3.8 interpreter is installed, its own parser."""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGET = (3, 8)
# 3.9+ methods vermin reports only when it can infer the receiver's type (str/bytes, pathlib)
_UNTYPED_39 = re.compile(r"\.(removeprefix|removesuffix|is_relative_to|with_stem|bit_count)\(")


def _module_file(mod: str) -> Path | None:
    base = ROOT / Path(*mod.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def runtime_files() -> list[Path]:
    """edgeyolo/runtime/*.py and every edgeyolo module they import (anywhere in the file, lazy
    imports included), with the packages on the way (their __init__ runs on import)."""
    todo = sorted((ROOT / "edgeyolo" / "runtime").glob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "edgeyolo":
                    continue
                for i in range(1, len(parts) + 1):  # the package __init__s import too
                    f = _module_file(".".join(parts[:i]))
                    if f is not None and f not in seen:
                        todo.append(f)
    return sorted(seen)


def test_runtime_closure_is_what_the_runtime_imports():
    files = {p.relative_to(ROOT).as_posix() for p in runtime_files()}
    assert {"edgeyolo/__init__.py", "edgeyolo/atomic.py", "edgeyolo/data/__init__.py", "edgeyolo/data/letterbox.py",
            "edgeyolo/ops/nms_numpy.py", "edgeyolo/runtime/cli.py"} <= files
    assert not any(f.startswith(("train/", "export/", "benchmarks/", "edgeyolo/models/")) for f in files)


def test_vermin_finds_nothing_newer_than_python_38():
    pytest.importorskip("vermin", reason="vermin is not installed (it is in the [dev] extra)")
    files = runtime_files()
    # annotations are strings under `from __future__ import annotations`; elsewhere they run on import
    lazy = [p for p in files if "from __future__ import annotations" in p.read_text()]
    eager = [p for p in files if p not in lazy]
    out = []
    for group, extra in ((lazy, []), (eager, ["--eval-annotations"])):
        if not group:
            continue
        r = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", f"--target={TARGET[0]}.{TARGET[1]}-", "--violations",
                            "--no-tips", "--no-parse-comments", *extra, *map(str, group)],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            out.append(r.stdout + r.stderr)
    assert not out, "runtime code needs Python > 3.8:\n" + "\n".join(out)


def test_no_untyped_39_methods_in_the_runtime():
    bad = [f"{p.relative_to(ROOT)}:{i}: {m.group(1)}" for p in runtime_files()
           for i, line in enumerate(p.read_text().splitlines(), 1) if not line.lstrip().startswith("#")
           for m in _UNTYPED_39.finditer(line)]
    assert not bad, "3.9+ methods in runtime code (Python 3.8 on JetPack 5):\n" + "\n".join(bad)


def _python38() -> str | None:
    cands = [os.environ.get("EDGEYOLO_PYTHON38"), *map(str, sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python"))),
             shutil.which("python3.8")]
    check = "import sys; sys.exit(sys.version_info[:2] != (3, 8))"  # a pyenv shim may exist and not run
    return next((c for c in cands if c and Path(c).is_file()
                 and subprocess.run([c, "-c", check], capture_output=True).returncode == 0), None)


def test_python38_parses_the_runtime(tmp_path):
    py = _python38()
    if py is None:
        pytest.skip("no Python 3.8 interpreter here (set EDGEYOLO_PYTHON38 to one); vermin covers it statically")
    code = ("import ast, sys\n"
            "for f in sys.argv[1:]:\n"
            "    ast.parse(open(f, encoding='utf-8').read(), f)\n")
    r = subprocess.run([py, "-c", code, *map(str, runtime_files())], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr.strip().splitlines()[-1:]


def _cfg():
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_packaging_says_what_each_side_needs():
    cfg = _cfg()
    assert cfg["options"]["python_requires"].strip() == ">=3.8"  # installable where the runtime runs
    full = cfg["options.extras_require"]["full"].split("\n")
    torch_req = next(r for r in full if r.startswith("torch>"))
    assert torch_req.startswith("torch>=2.5"), torch_req  # torch.onnx.export(dynamo=False) is 2.5+
    assert "dynamo=False" in (ROOT / "export" / "onnx_export.py").read_text()
    trt = [r.strip() for r in cfg["options.extras_require"]["trt"].split("\n") if r.strip()]
    # no torch-tensorrt (it pins torch to its own minor) and no pycuda (builds from source)
    assert not [r for r in trt if r.startswith(("torch", "pycuda"))], trt
    assert any(r.startswith("cuda-python") for r in trt) and any(r.startswith("tensorrt") for r in trt)
    assert any(r.strip().startswith("vermin") for r in cfg["options.extras_require"]["dev"].split("\n"))


def test_toolkit_refuses_an_old_python_in_one_line(monkeypatch):
    from edgeyolo import entry
    monkeypatch.setattr(sys, "version_info", (3, 9, 18))
    with pytest.raises(SystemExit, match=r"toolkit needs Python >= 3.10.*edgeyolo-run"):
        entry.main()
