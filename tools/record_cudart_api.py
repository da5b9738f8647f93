"""Record the part of cuda-python's runtime API that edgeyolo.runtime uses, per release, into
tests/data/cudart_api.json, so the tests' cuda-python stand-in can be held to the real module.

cuda-bindings imports without a GPU or driver (its calls then return or raise a driver error), so
for each version this installs the wheel into a throwaway venv, imports ``cuda.bindings.runtime``
and ``cuda.cudart`` where they exist, and writes each used function's signature line, the length
of the tuple it returns (from the wheel's .pyx where it ships one, else from calling it with no
driver), the enum members used and ``cudaDeviceProp``'s fields. Maintainers
run it when a cuda-python release matters (needs pip and the package index):

    python tools/record_cudart_api.py [--versions 11.8.7 12.9.4 13.5.0]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "cudart_api.json"
VERSIONS = ("11.8.7", "12.9.4", "13.5.0")  # JetPack 5 (CUDA 11.4 driver runs 11.8), CUDA 12, CUDA 13
FUNCTIONS = ("cudaMalloc", "cudaMallocHost", "cudaFree", "cudaFreeHost", "cudaMemcpyAsync", "cudaStreamCreate",
             "cudaStreamSynchronize", "cudaStreamDestroy", "cudaGetErrorName", "cudaGetDeviceProperties")
ENUMS = {"cudaError_t": ("cudaSuccess",), "cudaMemcpyKind": ("cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost")}
STRUCTS = {"cudaDeviceProp": ("name", "major", "minor")}

INSPECT = r'''
import importlib, inspect, json, re, sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
functions, enums, structs = json.loads(sys.argv[1])


def pyx_arity(src, name):
    # the tuple every path of the wrapper returns, from the wheel's Cython source where it ships
    m = re.search(r"^def " + name + r"\(.*?(?=^(?:def|class|cdef|cpdef) )", src, re.S | re.M)
    rets = re.findall(r"^\s+return \((.*)\)\s*$", m.group(0), re.M) if m else []
    if not rets:
        return None
    depth, n = 0, 1
    for ch in rets[-1]:
        depth += ch in "([{"
        depth -= ch in ")]}"
        n += ch == "," and depth == 0
    return n - rets[-1].rstrip().endswith(",")


def call(m, name):
    # without a driver 12.x/13.x return (error, None...), so the arity shows; ints stand for pointers and streams
    args = {"cudaMalloc": (16,), "cudaMallocHost": (16,), "cudaFree": (0,), "cudaFreeHost": (0,),
            "cudaMemcpyAsync": (0, 0, 0, m.cudaMemcpyKind.cudaMemcpyHostToDevice, 0), "cudaStreamCreate": (),
            "cudaStreamSynchronize": (0,), "cudaStreamDestroy": (0,), "cudaGetErrorName": (m.cudaError_t.cudaSuccess,),
            "cudaGetDeviceProperties": (0,)}[name]
    try:
        r = getattr(m, name)(*args)
    except Exception as e:
        return {"raised": type(e).__name__}
    return {"returned": len(r) if isinstance(r, tuple) else None, "first": type(r[0]).__name__ if isinstance(r, tuple) else None}


out = {}
for modname in ("cuda.bindings.runtime", "cuda.cudart"):
    try:
        m = importlib.import_module(modname)
    except ImportError:
        continue
    pyx = Path(m.__file__).with_name(modname.split(".")[-1] + ".pyx")
    src = pyx.read_text() if pyx.is_file() else ""
    rec = {"functions": {}, "enums": {}, "structs": {}}
    for f in functions:
        fn = getattr(m, f, None)
        if fn is None:
            continue
        called = call(m, f)
        arity = pyx_arity(src, f) or called.get("returned")
        rec["functions"][f] = {"signature": inspect.cleandoc(fn.__doc__ or "").splitlines()[0], "returns": arity,
                               "call_without_driver": called}
    for e, members in enums.items():
        cls = getattr(m, e, None)
        rec["enums"][e] = [k for k in members if cls is not None and hasattr(cls, k)]
    for s, fields in structs.items():
        cls = getattr(m, s, None)
        rec["structs"][s] = [k for k in fields if cls is not None and hasattr(cls(), k)]
    out[modname] = rec
print(json.dumps(out))
'''


def record(version: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        venv.create(tmp, with_pip=True)
        py = str(Path(tmp) / "bin" / "python")
        subprocess.run([py, "-m", "pip", "install", "-q", f"cuda-bindings=={version}"], check=True)
        r = subprocess.run([py, "-c", INSPECT, json.dumps([FUNCTIONS, ENUMS, STRUCTS])], check=True,
                           capture_output=True, text=True)
        return json.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", nargs="+", default=list(VERSIONS))
    args = ap.parse_args()
    data = {"python": f"{sys.version_info[0]}.{sys.version_info[1]}", "versions": {}}
    for v in args.versions:
        print(f"cuda-bindings {v} ...", flush=True)
        data["versions"][v] = record(v)
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
