"""Ops shared by training, export and the runtime, one concept per module:

* ``boxes``: box format conversions, letterbox un-mapping, clipping, IoU (torch or numpy);
* ``nms``: ``non_max_suppression`` of decoded outputs (torch, torchvision ``batched_nms``);
* ``nms_numpy``: the same without torch (OpenCV ``dnn.NMSBoxesBatched`` or numpy), for the runtime;
* ``metrics``: COCO mAP@0.5 / mAP@0.5:0.95 and per-class P/R in numpy (pycocotools parity);
* ``confusion``: the detection confusion matrix;
* ``evaluate``: scoring a detector on a labelled split (NMS, matching, mAP, timing), for val,
  training, export's mAP gate and the bench (torch);
* ``anchors``: how well anchors fit the label sizes, and anchor evolution (autoanchor, numpy + scipy);
* ``plots``: PR / F1 curves, confusion matrix, results.png and label figures (matplotlib, lazy).

Nothing is imported here: ``import edgeyolo.ops.nms_numpy`` must not pull in torch, and no module
of this package imports ``edgeyolo.train``, ``edgeyolo.export`` or ``edgeyolo.bench``.
"""
