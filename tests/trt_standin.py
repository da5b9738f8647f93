"""A stand-in ``tensorrt`` module held to a recorded API surface (export/trt_surface/*.json).

The tests' fake TensorRT classes implement behaviour; ``standin_module`` offers them only as far as
the real bindings of one version do: enums are generated from the recorded names and values, a
class or member the version lacks raises AttributeError (as the real module does), and a stand-in
member that no recorded version has fails at construction (a typo cannot pass for an API). So code
that works against ``standin_module("11.4.0.106", ...)`` uses only names TensorRT 11.4 has.
"""
from __future__ import annotations

import functools
import json
import types
from pathlib import Path

SURFACES = Path(__file__).resolve().parents[1] / "export" / "trt_surface"
# the version a test case reports -> the recorded surface it is held to. 8.5 (JetPack 5.1) and 8.2
# (JetPack 4.6) have no wheel on PyPI: they are held to 8.6.1, whose Python API only added to
# theirs (an 8.2 case also removes the members 8.2 lacks, e.g. the memory pool API).
SURFACE_OF = {"8.2.1.8": "8.6.1", "8.5.2.2": "8.6.1", "8.6.1": "8.6.1", "10.3.0": "10.3.0", "10.16.1.11": "10.16.1.11",
              "11.4.0.106": "11.4.0.106"}
VERSIONS = ["8.5.2.2", "10.3.0", "10.16.1.11", "11.4.0.106"]  # one test case per supported generation


@functools.lru_cache(maxsize=None)
def surface(version: str) -> dict:
    """The recorded ``names`` of ``version`` (a key of SURFACE_OF or a recorded version)."""
    path = SURFACES / f"tensorrt-{SURFACE_OF.get(version, version)}.json"
    if not path.is_file():
        raise ValueError(f"{path.name}: no recorded TensorRT surface for {version} (python export/trt_surface/record.py)")
    return json.loads(path.read_text())["names"]


def recorded_versions() -> list[str]:
    return sorted((p.stem.split("-", 1)[1] for p in SURFACES.glob("tensorrt-*.json")),
                  key=lambda v: tuple(int(x) for x in v.split(".")))


@functools.lru_cache(maxsize=None)
def _any_version_members(cls: str) -> frozenset[str]:
    return frozenset(m for v in recorded_versions() for m in surface(v).get(cls, {}).get("members", {}))


def members(names: dict, cls: str) -> dict:
    """A class's members including its bases' (pybind11 classes inherit, e.g. IInt8EntropyCalibrator2)."""
    entry = names.get(cls, {})
    out = {}
    for base in reversed(entry.get("bases", [])):
        out.update(names.get(base, {}).get("members", {}))
    out.update(entry.get("members", {}))
    return out


class EnumValue(int):
    """An enum member as pybind11 shows it: an int with ``name`` and ``value``."""

    def __new__(cls, enum: str, name: str, value: int):
        self = super().__new__(cls, value)
        self.name, self.value, self._enum = name, value, enum
        return self

    def __repr__(self) -> str:
        return f"<{self._enum}.{self.name}: {int(self)}>"


def make_enum(version: str, name: str, entry: dict) -> types.SimpleNamespace:
    values = {k: EnumValue(name, k, v) for k, v in entry["values"].items()}

    class Enum(types.SimpleNamespace):
        def __getattr__(self, attr):
            raise AttributeError(f"TensorRT {version} has no {name}.{attr}")
    e = Enum(**values)
    e.__members__ = values
    return e


def hold(impl: type, version: str, trt_name: str, mod: types.ModuleType) -> type:
    """A subclass of the stand-in ``impl`` that offers only what ``trt_name`` has in ``version``."""
    names = surface(version)
    if trt_name not in names:
        raise AttributeError(f"TensorRT {version} has no {trt_name}")
    have = members(names, trt_name)
    known = set(have) | _any_version_members(trt_name) | {
        m for b in names[trt_name].get("bases", []) for m in _any_version_members(b)}
    invented = [k for k in vars(impl) if not k.startswith("_") and k not in known]
    if invented:
        raise AssertionError(f"stand-in {impl.__name__} offers {invented}: no recorded TensorRT {trt_name} has them")

    def lacks(attr: str) -> bool:
        return not attr.startswith("_") and attr in known and attr not in have

    def __getattribute__(self, attr):
        if lacks(attr):
            raise AttributeError(f"TensorRT {version} has no {trt_name}.{attr}")
        return super(held, self).__getattribute__(attr)

    def __setattr__(self, attr, value):
        m = have.get(attr)
        if lacks(attr) or (m is not None and (m["kind"] != "property" or m.get("readonly"))):
            raise AttributeError(f"TensorRT {version}: {trt_name}.{attr} cannot be set")
        super(held, self).__setattr__(attr, value)

    body = {"__getattribute__": __getattribute__, "__setattr__": __setattr__, "_trt": mod, "_version": version}
    for k, m in have.items():  # enum values and nested enums the real class carries (Logger.WARNING)
        if k not in vars(impl) and m["kind"] == "value" and isinstance(m.get("value"), int):
            body[k] = EnumValue(m.get("type", k), k, m["value"])
        elif k not in vars(impl) and m["kind"] == "enum":
            body[k] = make_enum(version, f"{trt_name}.{k}", m)
    held = type(trt_name, (impl,), body)
    return held


class _Module(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        v = self.__dict__["_version"]
        if attr in surface(v):
            raise AttributeError(f"the stand-in does not implement tensorrt.{attr} (TensorRT {v} has it)")
        raise AttributeError(f"TensorRT {v} has no tensorrt.{attr}")


def standin_module(version: str, classes: dict[str, type], functions: dict | None = None) -> types.ModuleType:
    """A ``tensorrt`` module for ``version``: every recorded enum, the given stand-in classes (by
    their TensorRT name) and functions held to the surface; names the version lacks are left out."""
    names = surface(version)
    mod = _Module("tensorrt")
    mod._version = version
    mod.__version__ = version
    for name, entry in names.items():
        if entry["kind"] == "enum":
            setattr(mod, name, make_enum(version, name, entry))
        elif entry["kind"] == "value" and isinstance(entry.get("value"), int):  # trt.float16 etc.
            setattr(mod, name, EnumValue(entry.get("type", name), name, entry["value"]))
    for name, impl in classes.items():
        if name in names:
            setattr(mod, name, hold(impl, version, name, mod))
    for name, fn in (functions or {}).items():
        if name in names:
            setattr(mod, name, fn)
    return mod
