"""The project's TensorRT code against the recorded API of every supported version.

A scan of each module that imports ``tensorrt``: every ``trt.`` attribute chain (and, in the
builder, chains on its builder/config/network/parser objects) must exist in each supported
version, unless a version check guards it. The guard convention (also in tensorrt_build's
docstring): ``if major <op> N:`` / ``if hasattr(obj, "name"):`` around the use (``else`` for the
opposite), or ``if <that>: raise/return`` earlier in the same block; ``and``/``or``/``not`` combine.
"""
from __future__ import annotations

import ast
import operator
from pathlib import Path

import pytest
from trt_standin import SURFACE_OF, VERSIONS, members, recorded_versions, standin_module, surface

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("edgeyolo", "export", "benchmarks", "train")
# In the builder and calibrator, these local names always hold one TensorRT class (self.x too).
TYPED = {"builder": "Builder", "config": "IBuilderConfig", "network": "INetworkDefinition", "parser": "OnnxParser",
         "profile": "IOptimizationProfile"}
TYPED_FILES = ("export/tensorrt_build.py", "export/int8/trt_calibrator.py")
_OPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq,
        ast.NotEq: operator.ne}


def _chain(node: ast.AST) -> list[str] | None:
    out = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts = [node.id, *reversed(out)]
    return parts[1:] if parts[0] == "self" and len(parts) > 1 else parts


class Scanner:
    """Collects (line, chain, predicates) for every chain rooted at the trt alias or a typed name."""

    def __init__(self, source: str, typed: dict[str, str]):
        self.tree = ast.parse(source)
        self.aliases = {a.asname or a.name for n in ast.walk(self.tree) if isinstance(n, ast.Import)
                        for a in n.names if a.name == "tensorrt"}
        self.typed, self.uses = typed, []

    def root(self, name: str) -> str | None:
        return "module" if name in self.aliases else self.typed.get(name)

    # predicates: callables (major, names) -> bool that hold on the versions the branch runs on
    def cond(self, node: ast.AST, positive: bool) -> list:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.cond(node.operand, not positive)
        if isinstance(node, ast.BoolOp):  # all of (a and b) true / all of (a or b) false are known
            return [p for v in node.values for p in self.cond(v, positive)] if isinstance(node.op, ast.And) == positive else []
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr" and len(node.args) == 2:
            ch, attr = _chain(node.args[0]), node.args[1]
            cls = self.root(ch[0]) if ch and len(ch) == 1 else None
            if cls is None or not isinstance(attr, ast.Constant):
                return []
            return [lambda major, names, c=cls, a=attr.value: ((a in names) if c == "module" else (a in members(names, c))) == positive]
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _OPS:
            left, right = node.left, node.comparators[0]
            is_major = isinstance(left, ast.Name) and left.id == "major" or (
                isinstance(left, ast.Call) and getattr(left.func, "id", None) == "trt_major")
            if is_major and isinstance(right, ast.Constant) and isinstance(right.value, int):
                op, n = _OPS[type(node.ops[0])], right.value
                return [lambda major, names: op(major, n) == positive]
        return []

    def body(self, stmts: list[ast.stmt], preds: list) -> None:
        preds = list(preds)
        for s in stmts:
            self.stmt(s, preds)
            if isinstance(s, ast.If) and not s.orelse and isinstance(s.body[-1], (ast.Raise, ast.Return)):
                preds = preds + self.cond(s.test, False)  # past an `if <cond>: raise`, cond is false

    def stmt(self, s: ast.stmt, preds: list) -> None:
        if isinstance(s, ast.If):
            self.expr(s.test, preds)
            self.body(s.body, preds + self.cond(s.test, True))
            self.body(s.orelse, preds + self.cond(s.test, False))
            return
        for field, value in ast.iter_fields(s):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self.body(value, preds)
            elif isinstance(value, list) and value and isinstance(value[0], ast.ExceptHandler):
                for h in value:
                    self.body(h.body, preds)
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, ast.AST):
                        self.expr(v, preds)
            elif isinstance(value, ast.AST):
                self.expr(value, preds)

    def expr(self, node: ast.AST, preds: list) -> None:
        if isinstance(node, ast.IfExp):
            self.expr(node.test, preds)
            self.expr(node.body, preds + self.cond(node.test, True))
            self.expr(node.orelse, preds + self.cond(node.test, False))
            return
        if isinstance(node, ast.BoolOp):
            extra: list = []
            for v in node.values:
                self.expr(v, preds + extra)
                extra = extra + self.cond(v, isinstance(node.op, ast.And))
            return
        if isinstance(node, ast.Attribute) and (ch := _chain(node)) and len(ch) > 1 and self.root(ch[0]):
            self.uses.append((node.lineno, ch, preds))
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                self.stmt(child, preds)
            else:
                self.expr(child, preds)

    def run(self) -> "Scanner":
        self.body(self.tree.body, [])
        return self


def missing(chain: list[str], root: str, names: dict) -> str | None:
    """The first name of ``chain`` (after its root) that ``names`` lacks; None when all resolve or
    the chain continues past what the surface can type (a method's or property's result)."""
    entry: dict | None = {"kind": "class", "members": names} if root == "module" else {"kind": "class", "members": members(names, root)}
    for i, attr in enumerate(chain[1:], 1):
        if attr.startswith("__"):
            return None
        if entry["kind"] == "enum":
            return None if attr in entry["values"] else ".".join(chain[: i + 1])
        scope = entry["members"]
        if attr not in scope:
            return ".".join(chain[: i + 1])
        entry = scope[attr]
        if entry["kind"] == "class":
            entry = {"kind": "class", "members": members(names, attr) if root == "module" and i == 1 else entry.get("members", {})}
        elif entry["kind"] != "enum":
            return None
    return None


def problems(source: str, typed: dict[str, str] | None = None, versions=None, where: str = "<src>") -> list[str]:
    out = []
    sc = Scanner(source, typed or {}).run()
    for v in versions or recorded_versions():
        names, major = surface(v), int(v.split(".")[0])
        for line, ch, preds in sc.uses:
            if all(p(major, names) for p in preds) and (gone := missing(ch, sc.root(ch[0]), names)):
                out.append(f"{where}:{line}: {'.'.join(ch)}: TensorRT {v} has no {gone}")
    return out


def _trt_files() -> list[Path]:
    return [p for d in SCANNED for p in sorted((ROOT / d).rglob("*.py"))
            if "trt_surface" not in p.parts and "import tensorrt" in p.read_text()]


def test_project_tensorrt_code_uses_only_names_every_version_has():
    files = _trt_files()
    assert {"tensorrt_build.py", "trt_calibrator.py", "trt_backend.py"} <= {p.name for p in files}
    found = []
    for p in files:
        rel = p.relative_to(ROOT).as_posix()
        found += problems(p.read_text(), TYPED if rel in TYPED_FILES else None, where=rel)
    assert found == []


def test_scanner_flags_unguarded_names_and_accepts_each_guard():
    flag = "import tensorrt as trt\ndef f(config, major):\n    {}\n"
    assert problems(flag.format("config.set_flag(trt.BuilderFlag.FP16)"), TYPED) == [
        "<src>:3: trt.BuilderFlag.FP16: TensorRT 11.4.0.106 has no trt.BuilderFlag.FP16"]
    assert problems(flag.format("x = trt.IInt8EntropyCalibrator2"))[0].endswith("11.4.0.106 has no trt.IInt8EntropyCalibrator2")
    assert problems(flag.format("config.int8_calibrator = 1"), TYPED)[0].endswith("has no config.int8_calibrator")
    assert problems(flag.format("trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED"))[0].endswith(
        "8.6.1 has no trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED")
    for guarded in ("if major < 11:\n        config.set_flag(trt.BuilderFlag.INT8)",
                    "if not major >= 11:\n        x = trt.BuilderFlag.FP16",
                    "if major >= 11:\n        return\n    x = trt.BuilderFlag.FP16",
                    "if hasattr(trt, 'IInt8EntropyCalibrator2'):\n        x = trt.IInt8EntropyCalibrator2",
                    "if not hasattr(trt, 'IInt8EntropyCalibrator2'):\n        raise ValueError\n    x = trt.IInt8EntropyCalibrator2",
                    "x = trt.BuilderFlag.FP16 if major < 11 else None",
                    "x = major < 11 and trt.BuilderFlag.FP16",
                    "if hasattr(config, 'set_memory_pool_limit'):\n        pass\n    else:\n        config.max_workspace_size = 1",
                    "if major < 10:\n        x = trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH"):
        assert problems(flag.format(guarded), TYPED) == [], guarded
    # an unrelated check guards nothing; a guard does not leak past its block
    assert problems(flag.format("if major < 12:\n        x = trt.BuilderFlag.FP16"))
    assert problems(flag.format("if major < 11:\n        pass\n    x = trt.BuilderFlag.FP16"))
    assert problems(flag.format("if hasattr(trt, 'Builder'):\n        x = trt.BuilderFlag.FP16"))


def test_surfaces_record_what_changed_between_versions():
    """The facts the builder relies on, read from the recorded bindings."""
    s86, s103, s1016, s114 = (surface(v) for v in ("8.6.1", "10.3.0", "10.16.1.11", "11.4.0.106"))
    assert {"FP16", "INT8"} <= set(s103["BuilderFlag"]["values"]) and {"FP16", "INT8"} <= set(s1016["BuilderFlag"]["values"])
    assert not {"FP16", "INT8", "BF16"} & set(s114["BuilderFlag"]["values"])
    assert s1016["BuilderFlag"]["deprecated"]["FP16"].startswith("Deprecated in TensorRT 10.12")
    assert "IInt8EntropyCalibrator2" in s103 and "IInt8EntropyCalibrator2" not in s114
    assert "int8_calibrator" in members(s103, "IBuilderConfig") and "int8_calibrator" not in members(s114, "IBuilderConfig")
    assert "STRONGLY_TYPED" in s103["NetworkDefinitionCreationFlag"]["values"]
    assert "STRONGLY_TYPED" not in s86["NetworkDefinitionCreationFlag"]["values"]
    assert "EXPLICIT_BATCH" not in s114["NetworkDefinitionCreationFlag"]["values"]
    assert all("INMSLayer" in s and "add_nms" in members(s, "INetworkDefinition") for s in (s86, s103, s1016, s114))
    assert "num_bindings" in members(s86, "ICudaEngine") and "num_bindings" not in members(s103, "ICudaEngine")
    assert set(SURFACE_OF.values()) == set(recorded_versions())


@pytest.mark.parametrize("version", VERSIONS)
def test_standin_offers_only_the_recorded_names(version):
    class Config:
        def set_flag(self, f):
            self._last = f

    trt = standin_module(version, {"IBuilderConfig": Config, "IInt8EntropyCalibrator2": type("Calib", (), {})})
    assert trt.__version__ == version
    has_fp16 = not version.startswith("11")
    assert hasattr(trt.BuilderFlag, "FP16") == has_fp16 and hasattr(trt, "IInt8EntropyCalibrator2") == has_fp16
    assert int(trt.BuilderFlag.GPU_FALLBACK) == 3 and trt.BuilderFlag.GPU_FALLBACK.name == "GPU_FALLBACK"
    cfg = trt.IBuilderConfig()
    cfg.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    with pytest.raises(AttributeError, match="cannot be set"):
        cfg.num_optimization_profiles = 1  # read-only in every version
    if has_fp16:
        cfg.int8_calibrator = None
    else:
        with pytest.raises(AttributeError, match=f"TensorRT {version}: IBuilderConfig.int8_calibrator cannot be set"):
            cfg.int8_calibrator = None
    with pytest.raises(AssertionError, match="no recorded TensorRT IBuilderConfig has them"):
        standin_module(version, {"IBuilderConfig": type("C", (), {"set_flags": lambda self: None})})
    with pytest.raises(AttributeError, match="stand-in does not implement tensorrt.Builder"):
        trt.Builder  # noqa: B018
