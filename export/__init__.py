"""Stage 2 of the pipeline (installed as ``edgeyolo.export``): graph preparation, TorchScript, ONNX,
TensorRT engines, INT8 quantization, verification. Never imports ``edgeyolo.train``."""
