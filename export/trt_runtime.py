"""Run an engine plan: check its sidecar against this machine first, then TensorRT's name-based
I/O API (``set_tensor_address`` / ``execute_async_v3``, present in 8.5 and 10) with torch CUDA
buffers (no pycuda needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .trt_sidecar import check_compatible, current_environment, read_sidecar


class TrtRunner:
    def __init__(self, engine: str | Path):
        import tensorrt as trt
        import torch
        sidecar = read_sidecar(engine)
        check_compatible(sidecar, current_environment(), Path(engine).name)
        self.torch, self.trt = torch, trt
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine).read_bytes())
        if self.engine is None:
            raise ValueError(f"{engine}: TensorRT could not deserialize the plan")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.stream = torch.cuda.Stream()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        torch, trt = self.torch, self.trt
        inp = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).cuda()
        self.context.set_input_shape(self.inputs[0], tuple(inp.shape))
        self.context.set_tensor_address(self.inputs[0], int(inp.data_ptr()))
        outs = []
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            buf = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, int(buf.data_ptr()))
            outs.append(buf)
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        return [o.float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy() for o in outs]
