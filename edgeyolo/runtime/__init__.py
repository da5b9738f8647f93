"""edgeyolo.runtime: run a deployed model with numpy, OpenCV and ONNX Runtime or TensorRT only.

Importing it (or any of its modules) never imports torch: on a Jetson, the artifacts of
``edgeyolo export`` run with what JetPack ships plus ``pip install "edgeyolo[runtime]"``.

* ``backends``: ``load_backend`` for .onnx (ONNX Runtime), .engine (TensorRT + pycuda or cuda-python,
  ``trt_backend``),
  .torchscript (only when torch is present);
* ``processing``: letterbox pre-processing, numpy decode of raw heads, NMS (OpenCV), in-graph NMS outputs;
* ``detector``: ``Detector`` = backend + pre/post-processing;
* ``detect`` (images, folders, videos -> files), ``stream`` (camera/video loop with FPS overlay),
  ``latency`` (percentiles), ``cli`` (``edgeyolo-run`` / ``python -m edgeyolo.runtime``).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"Detector": "detector", "load_backend": "backends", "ModelInfo": "info", "preprocess": "processing",
            "postprocess": "processing", "run_stream": "stream", "detect_source": "detect"}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .backends import load_backend
    from .detect import detect_source
    from .detector import Detector
    from .info import ModelInfo
    from .processing import postprocess, preprocess
    from .stream import run_stream


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
