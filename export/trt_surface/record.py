"""Record the Python API of each supported TensorRT version into ``export/trt_surface/*.json``.

Maintainer script, run by hand when a TensorRT version is added (CI never installs TensorRT; the
tests read the committed JSON)::

    python export/trt_surface/record.py            # every version in WHEELS
    python export/trt_surface/record.py 11.4.0.106 # one of them

For each version it pip-downloads the bindings wheel (a ~1 MB pybind11 module, ``tensorrt_bindings``),
installs it into a temporary target folder, and imports it over stub ``libnvinfer.so.N``,
``libnvonnxparser.so.N``, ``libnvinfer_plugin.so.N`` (and 8.x's ``libnvparsers.so.8``) built here with
gcc: the module needs only a few plain C entry points at load time, and NVIDIA's real libraries are
not on PyPI. Nothing is called that would reach the stubs (``trt.Builder(logger)`` would fail, as on
any machine without a GPU); names, enum values, pybind11 signatures and ``[DEPRECATED]`` notes are
read from the classes and their docstrings. Needs gcc, pip and a Python the wheel was built for.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# version -> pip requirement. 8.6.1 is the newest 8.x on PyPI (cp311 wheel); 8.5 (JetPack 5.1) has
# none, so the tests hold 8.5 to the 8.6 surface (8.6 only added to 8.5's Python API).
WHEELS = {
    "8.6.1": "tensorrt-bindings==8.6.1",
    "10.3.0": "tensorrt-cu12-bindings==10.3.0",
    "10.16.1.11": "tensorrt-cu12-bindings==10.16.1.11",
    "11.4.0.106": "tensorrt-cu12-bindings==11.4.0.106",
}
# The C entry points the bindings resolve at load time (from `nm -D --undefined-only tensorrt.so`);
# the mangled ones are 8.x's UFF/Caffe parsers in libnvparsers. Stubs return null and are never called.
STUB_C = r"""
void *createInferBuilder_INTERNAL(void *a, int b) { return 0; }
void *createInferRuntime_INTERNAL(void *a, int b) { return 0; }
void *createInferRefitter_INTERNAL(void *a, void *b, int c) { return 0; }
void *getPluginRegistry(void) { return 0; }
void *getBuilderPluginRegistry(int a) { return 0; }
void *createNvOnnxParser_INTERNAL(void *a, void *b, int c) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *a, void *b, int c) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
int initLibNvInferPlugins(void *a, const char *b) { return 0; }
void *_ZN11nvuffparser15createUffParserEv(void) { return 0; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void *a, const char *b, const void *c, int d, int e) { }
void *_ZN14nvcaffeparser117createCaffeParserEv(void) { return 0; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) { }
"""
STUB_LIBS = ("nvinfer", "nvonnxparser", "nvinfer_plugin", "nvparsers")


def build_stubs(folder: Path, major: int) -> None:
    src = folder / "stub.c"
    src.write_text(STUB_C)
    for lib in STUB_LIBS:
        name = f"lib{lib}.so.{major}"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / name), f"-Wl,-soname,{name}", str(src)], check=True)


def install(requirement: str, folder: Path) -> None:
    wheels = folder / "wheels"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "download", "--no-deps", "-d", str(wheels), requirement], check=True)
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(folder / "site"),
                    *map(str, wheels.glob("*.whl"))], check=True)


# --- what runs inside the child interpreter (the bindings loaded over the stubs) ---

_SIG = re.compile(r"^(?:\d+\. )?(\w+)?(\(.*\)(?: -> .+)?)$")
_QUAL = re.compile(r"\b(?:tensorrt_bindings\.)?tensorrt\.|typing\.|typing_extensions\.")


def _clean(text: str) -> str:
    return _QUAL.sub("", text)


def _deprecated(text: str | None) -> str | None:
    """The first sentence after ``[DEPRECATED]``: which version deprecated it and what replaces it."""
    end = r"\.(?=\s|$)"  # a sentence's full stop, not the one inside "10.12"
    m = re.search(rf"\[DEPRECATED\]\s*([^\n]*?{end})(?:\s+((?:Superseded|Use)[^\n]*?{end}))?", text or "")
    return " ".join(g for g in m.groups() if g)[:160] if m else None


def _signatures(obj) -> list[str]:
    """pybind11 puts each overload's signature first in ``__doc__``; a plain function has ``inspect``."""
    import inspect
    doc = getattr(obj, "__doc__", None) or ""
    sigs = [_clean(m.group(2)) for line in doc.splitlines() if (m := _SIG.match(line.strip())) and m.group(1)]
    if not sigs and callable(obj):
        try:
            sigs = [str(inspect.signature(obj))]
        except (TypeError, ValueError):
            pass
    return sigs


def _ivar_notes(doc: str | None) -> dict[str, str]:
    """Property docs live in the class docstring as ``:ivar name: ...``: their deprecation notes."""
    out = {}
    for m in re.finditer(r":ivar (\w+):(.*?)(?=:ivar |\Z)", doc or "", re.S):
        if (d := _deprecated(m.group(2))) is not None:
            out[m.group(1)] = d
    return out


def _enum(cls) -> dict:
    notes = {}
    for m in re.finditer(r"^  (\w+) :(.*?)(?=^  \w+ :|\Z)", cls.__doc__ or "", re.S | re.M):
        if (d := _deprecated(m.group(2))) is not None:
            notes[m.group(1)] = d
    out = {"kind": "enum", "values": {k: int(v) for k, v in cls.__members__.items()}}
    if notes:
        out["deprecated"] = notes
    return out


def _class(cls, depth: int = 0) -> dict:
    if hasattr(cls, "__members__"):
        return _enum(cls)
    bases = [b.__name__ for b in cls.__mro__[1:] if b.__module__.startswith("tensorrt")]
    members: dict[str, dict] = {}
    ivars = _ivar_notes(cls.__doc__)
    for name in sorted(set(dir(cls)) - set(dir(object)) | {"__init__", "__call__"} & set(vars(cls))):
        if (name.startswith("_") and name not in ("__init__", "__call__")) or name == "_pybind11_conduit_v1_":
            continue
        try:
            attr = getattr(cls, name)
        except Exception:  # a property that needs an instance
            continue
        raw = cls.__dict__.get(name, attr)
        if isinstance(raw, property):
            m = {"kind": "property", "readonly": raw.fset is None}
            sig = _signatures(raw.fget)
            if sig and "->" in sig[0]:
                m["type"] = sig[0].split("->")[-1].strip()
        elif isinstance(attr, type):
            m = _class(attr, depth + 1) if depth == 0 else {"kind": "class"}
        elif hasattr(type(attr), "__members__"):  # an enum value exported into the class (Logger.WARNING)
            m = {"kind": "value", "value": int(attr), "type": type(attr).__name__}
        elif callable(attr):
            m = {"kind": "method", "sig": _signatures(attr)}
        else:
            m = {"kind": "value", "value": repr(attr)[:60]}
        note = ivars.get(name) or _deprecated(getattr(raw, "__doc__", None) if not isinstance(raw, type) else None)
        if note:
            m["deprecated"] = note
        members[name] = m
    out = {"kind": "class", "bases": bases, "members": members}
    if note := _deprecated((cls.__doc__ or "").split(":ivar")[0]):
        out["deprecated"] = note
    return out


def describe(trt) -> dict:
    names = {}
    for name in sorted(vars(trt)):
        obj = getattr(trt, name)
        if name.startswith("_") or type(obj).__name__ == "module":
            continue
        if isinstance(obj, type):
            names[name] = _class(obj)
        elif hasattr(type(obj), "__members__"):  # module-level dtype aliases (trt.float16 = DataType.HALF)
            names[name] = {"kind": "value", "value": int(obj), "type": type(obj).__name__}
        elif callable(obj):
            names[name] = {"kind": "function", "sig": _signatures(obj)}
        else:
            names[name] = {"kind": "value", "value": repr(obj)[:60]}
    return {"version": trt.__version__, "names": names}


def _child() -> None:
    import tensorrt_bindings as trt
    print(json.dumps(describe(trt), indent=1, sort_keys=True))


# --- driver ---

def record(version: str, requirement: str) -> Path:
    major = int(version.split(".")[0])
    with tempfile.TemporaryDirectory(prefix=f"trt{version}-") as tmp:
        tmp = Path(tmp)
        build_stubs(tmp, major)
        install(requirement, tmp)
        env = {**os.environ, "LD_LIBRARY_PATH": str(tmp), "PYTHONPATH": str(tmp / "site")}
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True, capture_output=True, text=True)
    data = json.loads(out.stdout)
    if data["version"] != version:
        raise SystemExit(f"{requirement}: the wheel reports TensorRT {data['version']}, expected {version}")
    data["requirement"], data["python"] = requirement, f"{sys.version_info.major}.{sys.version_info.minor}"
    dst = HERE / f"tensorrt-{version}.json"
    dst.write_text(json.dumps(data, indent=0, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{dst.name}: {len(data['names'])} names, {dst.stat().st_size // 1024} KiB")
    return dst


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        _child()
        return
    versions = argv or list(WHEELS)
    for v in versions:
        if v not in WHEELS:
            raise SystemExit(f"record.py: unknown version {v!r}; known: {', '.join(WHEELS)}")
        record(v, WHEELS[v])


if __name__ == "__main__":
    main(sys.argv[1:])
