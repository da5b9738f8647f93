"""Import rules, checked by walking every module's AST (imports inside functions count too):

- the core (models, ops, data, runtime) imports no stage and no command code;
- data knows no model, and models know no runtime (the CLI composes them where a command needs both);
- export and bench never import train;
- the one-off studies live in benchmarks/studies/: they may drive any stage, and no library module
  imports them;
- listing the commands, a command's --help and a usage error load neither torch nor a stage.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> package name, as mapped in setup.cfg
PACKAGES = {"edgeyolo": "edgeyolo", "train": "edgeyolo.train", "export": "edgeyolo.export", "benchmarks": "edgeyolo.bench"}
# the core: the model, data and box code, the deployed runtime, and the one-file homes of run folders,
# artifact formats and atomic writes
CORE = ("edgeyolo.models", "edgeyolo.ops", "edgeyolo.data", "edgeyolo.runtime", "edgeyolo.runs", "edgeyolo.formats",
        "edgeyolo.atomic")
STAGES = ("edgeyolo.train", "edgeyolo.export", "edgeyolo.bench")
CLI = "edgeyolo.cli"
STUDIES = "edgeyolo.bench.studies"


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


def _within(name: str, packages: tuple[str, ...] | str) -> bool:
    packages = (packages,) if isinstance(packages, str) else packages
    return any(name == p or name.startswith(p + ".") for p in packages)


def _violations(importers: tuple[str, ...] | str, forbidden: tuple[str, ...] | str, exempt: str | None = None) -> list[str]:
    return [f"{name} imports {imp}" for name, path in _modules()
            if _within(name, importers) and not (exempt and _within(name, exempt))
            for imp in sorted(_imports(name, path)) if _within(imp, forbidden)]


def test_core_imports_no_stage_and_no_command():
    assert _violations(CORE, (*STAGES, CLI)) == []


def test_data_knows_no_model():
    assert _violations("edgeyolo.data", "edgeyolo.models") == []


def test_models_know_no_runtime():
    assert _violations("edgeyolo.models", "edgeyolo.runtime") == []


def test_export_and_bench_never_import_train():
    assert _violations(("edgeyolo.export", "edgeyolo.bench"), "edgeyolo.train", exempt=STUDIES) == []


def test_no_library_module_imports_a_study():
    """The studies are entry points, like the CLI: what imports one is a study itself."""
    assert _violations(("edgeyolo", *STAGES), STUDIES, exempt=STUDIES) == []


def test_studies_are_the_folder_and_the_rules_see_them():
    names = {n for n, _ in _modules()}
    assert {f"{STUDIES}.backbone_study", f"{STUDIES}.train_throughput"} <= names
    # a study's exemption is its folder: the same import from a library module is still caught
    assert _violations(STUDIES, "edgeyolo.train") != []


def test_walker_sees_every_package():
    names = {n for n, _ in _modules()}
    assert {"edgeyolo.models.builder", CLI, "edgeyolo.cli.train", "edgeyolo.runtime.backends", "edgeyolo.train",
            "edgeyolo.export", "edgeyolo.bench", STUDIES} <= names


def test_command_list_imports_no_command():
    """The group lists the commands from its table: it imports no command module, nor a stage."""
    assert not any(_within(i, (*STAGES, "torch")) or i.startswith("edgeyolo.cli.")
                   for i in _imports(CLI, ROOT / "edgeyolo" / "cli" / "__init__.py"))


def _loaded_after(args: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """Run the console script's entry point on ``args`` in a fresh interpreter; the modules it loaded
    that start with one of ``prefixes``."""
    code = ("import sys\nfrom edgeyolo.entry import main\n"
            f"sys.argv = ['edgeyolo', *{args!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return eval(out.strip().splitlines()[-1])  # noqa: S307 - our own printed list


COMMANDS = ("info", "data", "train", "val", "compare", "export", "bench", "detect")


@pytest.mark.parametrize("args", [["--help"], *([c, "--help"] for c in COMMANDS), ["no-such-command"],
                                  ["train", "--no-such-option"]], ids=" ".join)
def test_help_and_usage_errors_load_no_torch(args):
    """Each command defines its options with click and torch-free tables; the stage is imported when
    it runs. (onnx and onnxruntime take as long to import, so they are held to the same rule.)"""
    assert _loaded_after(args, ("torch", "onnx")) == []


def test_command_list_loads_no_command():
    assert _loaded_after(["--help"], (*STAGES, "edgeyolo.cli.", "edgeyolo.models")) == []


def test_core_command_loads_no_stage():
    loaded = _loaded_after(["info", "--model", "yolov4s-mbv3s", "--imgsz", "64"], STAGES)
    assert loaded == []


TORCH_FREE = ["edgeyolo.ops.nms_numpy", "edgeyolo.ops.boxes", "edgeyolo.data.letterbox", "edgeyolo.formats",
              "edgeyolo.runs", "edgeyolo.atomic",
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
