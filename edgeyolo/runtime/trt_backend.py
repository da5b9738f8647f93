"""TensorRT engine plans through pycuda or cuda-python (``cuda_io``), without torch.

One stream, device buffers and pinned (page-locked) host buffers allocated once for the largest
input the engine accepts, async host->device copy, enqueue, async device->host copies, one
synchronize. Both TensorRT I/O APIs are handled: the name-based tensor API (``num_io_tensors``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``; TensorRT >= 8.5, the only one
in 10.x) and the binding-index API of older 8.x (``num_bindings``, ``set_binding_shape``,
``execute_async_v2``; JetPack 4.6 ships 8.2). The sidecar is checked before the plan is touched.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .cuda_io import find_cuda_io
from .info import ModelInfo, model_info
from .sidecar import check_compatible, current_environment, read_sidecar


def _volume(shape) -> int:
    return int(np.prod([max(int(d), 0) for d in shape])) if len(shape) else 1


class _IO:
    """One engine input or output: its name, dtype, largest shape and host/device buffers."""

    def __init__(self, cuda, name: str, index: int, is_input: bool, dtype: np.dtype, max_shape: tuple[int, ...]):
        self.name, self.index, self.is_input, self.dtype, self.max_shape = name, index, is_input, dtype, max_shape
        self.host = cuda.host(_volume(max_shape), dtype)
        self.device = cuda.alloc(self.host.nbytes)


def _ok(result: object, call: str) -> None:
    """TensorRT reports a failed enqueue or shape by returning False (the log says why); the
    reused output buffers would otherwise hand back the previous call's results."""
    if result is False:
        raise RuntimeError(f"TensorRT {call} failed (see the TensorRT log above)")


class TrtBackend:
    def __init__(self, engine_path: str | Path):
        try:
            import tensorrt as trt  # noqa: PLC0415
            make_cuda_io = find_cuda_io()
        except ImportError as e:
            raise ValueError(f"{engine_path}: running an engine needs TensorRT's Python bindings and pycuda or "
                             f"cuda-python ({e.name} is missing; JetPack ships tensorrt, "
                             "`pip install cuda-python` with the machine's CUDA major)") from None
        sidecar = read_sidecar(engine_path)
        check_compatible(sidecar, current_environment(), Path(engine_path).name)
        self.cuda, self.trt = make_cuda_io(), trt
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")  # a --nms plan holds EfficientNMS_TRT: found in this registry
        self.runtime = trt.Runtime(logger)
        dla = (sidecar.get("build") or {}).get("dla_core")
        if dla is not None:
            self.runtime.DLA_core = int(dla)  # the core it was built for (the runtime's default is -1)
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise ValueError(f"{engine_path}: TensorRT could not deserialize the plan")
        self.context = self.engine.create_execution_context()
        self.tensor_api = hasattr(self.engine, "num_io_tensors")
        self.io = self._tensor_io() if self.tensor_api else self._binding_io()
        self.inputs = [b for b in self.io if b.is_input]
        self.outputs = [b for b in self.io if not b.is_input]
        if len(self.inputs) != 1:
            raise ValueError(f"{engine_path}: expected one input, the engine has {len(self.inputs)}")
        self.output_names = [b.name for b in self.outputs]
        meta = {**sidecar, "decode": sidecar.get("decode", True)}
        self.info: ModelInfo = model_info(engine_path, "engine", meta, self.output_names,
                                          [len(b.max_shape) for b in self.outputs])
        self.info.batch = None if sidecar.get("build", {}).get("dynamic_batch") else self.inputs[0].max_shape[0]
        self.info.max_batch = self.inputs[0].max_shape[0]  # a dynamic engine's profile ends here

    def _tensor_io(self) -> list[_IO]:
        e, trt = self.engine, self.trt
        io = []
        for i in range(e.num_io_tensors):
            name = e.get_tensor_name(i)
            is_input = e.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(e.get_tensor_shape(name))
            if is_input and min(shape) < 0:  # dynamic: the optimization profile's max shape
                shape = tuple(e.get_tensor_profile_shape(name, 0)[2])
                self.context.set_input_shape(name, shape)
            io.append((name, i, is_input, np.dtype(trt.nptype(e.get_tensor_dtype(name))), shape))
        # output shapes are known once every input shape is set
        return [_IO(self.cuda, n, i, inp, dt, s if inp else tuple(self.context.get_tensor_shape(n)))
                for n, i, inp, dt, s in io]

    def _binding_io(self) -> list[_IO]:
        e, trt = self.engine, self.trt
        io = []
        for i in range(e.num_bindings):
            is_input = e.binding_is_input(i)
            shape = tuple(e.get_binding_shape(i))
            if is_input and min(shape) < 0:
                shape = tuple(e.get_profile_shape(0, i)[2])
                self.context.set_binding_shape(i, shape)
            io.append((e.get_binding_name(i), i, is_input, np.dtype(trt.nptype(e.get_binding_dtype(i))), shape))
        return [_IO(self.cuda, n, i, inp, dt, s if inp else tuple(self.context.get_binding_shape(i)))
                for n, i, inp, dt, s in io]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        cuda, ctx, inp = self.cuda, self.context, self.inputs[0]
        x = np.ascontiguousarray(x, dtype=inp.dtype)
        if x.ndim != len(inp.max_shape) or x.shape[0] > inp.max_shape[0] or x.shape[1:] != inp.max_shape[1:]:
            raise ValueError(f"input {x.shape} does not fit the engine's {inp.name} (at most {inp.max_shape})")
        if self.tensor_api:
            _ok(ctx.set_input_shape(inp.name, x.shape), f"set_input_shape({inp.name}, {x.shape})")
            shapes = [tuple(ctx.get_tensor_shape(b.name)) for b in self.outputs]
        else:
            _ok(ctx.set_binding_shape(inp.index, x.shape), f"set_binding_shape({inp.index}, {x.shape})")
            shapes = [tuple(ctx.get_binding_shape(b.index)) for b in self.outputs]
        host_in = inp.host[: x.size]
        np.copyto(host_in, x.reshape(-1))
        cuda.htod(inp.device, host_in)
        if self.tensor_api:
            for b in self.io:
                ctx.set_tensor_address(b.name, int(b.device))
            _ok(ctx.execute_async_v3(stream_handle=cuda.stream_handle), "execute_async_v3")
        else:
            bindings = [0] * len(self.io)
            for b in self.io:
                bindings[b.index] = int(b.device)
            _ok(ctx.execute_async_v2(bindings=bindings, stream_handle=cuda.stream_handle), "execute_async_v2")
        views = []
        for b, shape in zip(self.outputs, shapes):
            host = b.host[: _volume(shape)]
            cuda.dtoh(host, b.device)
            views.append((host, shape))
        cuda.synchronize()
        return [h.reshape(s).copy() for h, s in views]  # copies: the pinned buffers are reused next call

    def close(self) -> None:
        """Free the device and pinned buffers (after the context that uses them); pycuda frees its
        own on garbage collection, cuda-python's need this."""
        self.context = self.engine = None
        self.cuda.close()
