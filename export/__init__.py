"""Stage 2 of the pipeline (installed as ``edgeyolo.export``): graph preparation, TorchScript, ONNX,
TensorRT engines, INT8 quantization, verification. Never imports ``edgeyolo.train``.

Modules: ``formats`` (the FORMATS table), ``targets`` (TensorRT targets), ``fuse`` / ``rewrite`` /
``deploy`` (graph preparation), ``onnx_export`` / ``onnx_nms`` / ``torchscript_export``,
``quantize`` + ``images`` (Q/DQ INT8, calibration), ``tensorrt_build`` / ``trt_calibrator`` /
``trt_ops`` (TensorRT, lazily imported), ``runtime`` (artifacts run through the deployed
``edgeyolo.runtime``; engines get their JSON sidecar from ``edgeyolo.runtime.sidecar``), ``verify`` / ``evaluate`` (parity and the mAP gate), ``pipeline`` / ``report`` (the command line is ``edgeyolo.cli.export``).
"""
