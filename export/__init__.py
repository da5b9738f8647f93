"""Stage 2 of the pipeline (installed as ``edgeyolo.export``): graph preparation, TorchScript, ONNX,
TensorRT engines, INT8 quantization, verification. Never imports ``edgeyolo.train``.

Modules: ``writers`` (one per format of ``edgeyolo.formats``, sharing a ``context.ExportContext``),
``targets`` (TensorRT targets), ``fuse`` / ``rewrite`` / ``deploy`` (graph preparation), ``onnx_export``
/ ``onnx_nms`` / ``torchscript_export`` / ``fp16``, ``int8/`` (Q/DQ INT8: calibration, placement,
the ``--int8 auto`` search), ``images`` (verification and calibration images), ``tensorrt_build`` /
``trt_ops`` (TensorRT, lazily imported; engines get their JSON sidecar from
``edgeyolo.runtime.sidecar``), ``adapters`` (artifacts run through the deployed runtime's backends),
``verify`` / ``evaluate`` (parity and the mAP gate), ``pipeline`` / ``report`` (the command line is ``edgeyolo.cli.export``).
"""
