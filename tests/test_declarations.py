"""setup.cfg says what the code needs: every third-party package the shipped code imports is
declared, nothing is declared for the shipped code that it never imports (test-only packages are
[dev]), and the torch-free runtime imports nothing beyond the base install and its extras.
Imports inside functions count: a lazy import is still a dependency of the command that runs it."""
from __future__ import annotations

import ast
import configparser
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("edgeyolo", "train", "export", "benchmarks")  # the folders setup.cfg installs
# import name -> distribution, where they differ. ``tensorrt_bindings`` is the module the tensorrt
# wheel installs under ``tensorrt`` (export/trt_surface/record.py imports it directly). ``cuda`` is
# cuda-python's namespace: the runtime declares cuda-python ([trt]; it installs cuda-bindings, the
# package behind ``cuda.bindings``, and is itself ``cuda.cudart`` on 11.8); the tests import only
# ``cuda.bindings``, so [dev] declares cuda-bindings alone.
DISTRIBUTION = {"PIL": "pillow", "cv2": "opencv-python-headless", "yaml": "pyyaml", "torch_tensorrt": "torch-tensorrt",
                "tensorrt_bindings": "tensorrt", "cuda": "cuda-python"}
TESTS_DISTRIBUTION = {**DISTRIBUTION, "cuda": "cuda-bindings"}
# imported only as a fallback for a declared package or where the user installs it, so deliberately not declared
UNDECLARED = {"onnxsim": "export's ONNX simplifier when onnxslim is not installed",
              "ultralytics": "the peer the benchmarks train beside edgeyolo, in its own interpreter; never a dependency",
              "pycuda": "the runtime's other CUDA binding, used where installed; it builds from source against the "
                        "CUDA headers, so [trt] declares cuda-python",
              "torch_tensorrt": "each release pins torch to its own minor: the torch-tensorrt format asks for the one "
                                "matching the installed torch"}
# of those, what edgeyolo.runtime may import (a .trt.ts needs torch anyway)
RUNTIME_UNDECLARED = ("pycuda", "torch_tensorrt")

pytestmark = pytest.mark.skipif(not hasattr(sys, "stdlib_module_names"), reason="needs Python 3.10+")


def _requirements() -> dict[str, set[str]]:
    """'base' and each extra -> the distribution names it declares (lower case, '-' for '_')."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    groups = {"base": cfg["options"]["install_requires"]}
    groups.update(cfg["options.extras_require"])
    name = lambda req: re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")  # noqa: E731
    return {g: {name(r) for r in text.splitlines() if r.strip() and not r.strip().startswith("#")}
            for g, text in groups.items()}


def _third_party(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """distribution -> the files under ``folders`` that import it (at any depth of the module)."""
    out: dict[str, set[str]] = {}
    local = {p.stem for p in (ROOT / "tests").glob("*.py")}  # the tests' own helper modules
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    tops = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    tops = {node.module.split(".")[0]}
                elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip" and node.args
                      and isinstance(node.args[0], ast.Constant)):  # pytest.importorskip("timm")
                    tops = {node.args[0].value.split(".")[0]}
                else:
                    continue
                names = TESTS_DISTRIBUTION if folder == "tests" else DISTRIBUTION
                for top in tops - set(sys.stdlib_module_names) - {"edgeyolo"} - local:
                    dist = names.get(top, top.lower().replace("_", "-"))
                    out.setdefault(dist, set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_import_is_declared():
    req = _requirements()
    declared = set().union(*(v for g, v in req.items() if g != "dev"))
    missing = {d: sorted(f) for d, f in _third_party(SHIPPED).items() if d not in declared and d not in
               {DISTRIBUTION.get(u, u) for u in UNDECLARED}}
    assert missing == {}, f"imported by shipped code but not declared in setup.cfg: {missing}"


def test_nothing_declared_that_is_not_imported():
    req = _requirements()
    shipped, tests = _third_party(SHIPPED), _third_party(("tests",))
    for group in ("base", "runtime", "full", "trt"):
        assert req[group] - set(shipped) == set(), f"[{group}] declares what no shipped code imports"
    # a pytest plugin is used by the options pyproject.toml gives pytest, not imported
    addopts = re.search(r'^addopts = "(.*)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1).split()
    plugins = {"pytest-xdist"} if "-n" in addopts else set()
    test_only = req["dev"] - {"edgeyolo", "pytest"} - plugins
    assert test_only and test_only - set(tests) == set(), "[dev] declares what no test imports"
    assert test_only.isdisjoint(shipped), "shipped code imports a [dev]-only package"


def test_runtime_needs_only_its_install():
    """edgeyolo.runtime runs on `pip install edgeyolo[runtime]` (plus TensorRT and a CUDA binding on a
    Jetson, and torch / torch-tensorrt for a .torchscript / .trt.ts only where they are installed):
    no [full] package such as Pillow."""
    req = _requirements()
    allowed = req["base"] | req["runtime"] | req["trt"] | {"torch"} | {DISTRIBUTION.get(u, u) for u in RUNTIME_UNDECLARED}
    extra = {d: sorted(f) for d, f in _third_party(("edgeyolo/runtime",)).items() if d not in allowed}
    assert extra == {}, extra
