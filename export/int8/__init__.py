"""INT8 for ``edgeyolo export``, one concern per module: ``calibration`` (images, ORT's data reader,
cache names), ``qdq`` (Q/DQ placement for TensorRT or ONNX Runtime), ``graph`` / ``layers`` (ONNX
walks, conv + activation groups, --keep-fp16 names), ``bypass`` / ``sensitivity`` / ``search``
(``--int8 auto``), ``write`` (the export step) and ``trt_calibrator`` (TensorRT 8.x implicit INT8)."""
