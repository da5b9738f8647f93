"""Stage 2 of the pipeline (installed as ``edgeyolo.export``): graph preparation, TorchScript, ONNX,
TensorRT engines, INT8 quantization, verification. Never imports ``edgeyolo.train``.

Modules: ``formats`` (the FORMATS table), ``targets`` (TensorRT targets), ``fuse`` / ``rewrite`` /
``deploy`` (graph preparation), ``onnx_export`` / ``onnx_nms`` / ``torchscript_export``,
``quantize`` + ``images`` (Q/DQ INT8, calibration), ``tensorrt_build`` / ``trt_runtime`` /
``trt_sidecar`` / ``trt_calibrator`` / ``trt_ops`` (TensorRT, lazily imported), ``runtime`` (run any
artifact), ``verify`` / ``evaluate`` (parity and the mAP gate), ``pipeline`` / ``commands`` / ``report``.
"""
