"""edgeyolo: YOLOv4 with swappable backbones, from training to deployed TensorRT engines.

The core (``edgeyolo.models``, ``edgeyolo.ops``, ``edgeyolo.data``, ``edgeyolo.runtime``) never
imports a pipeline stage (``edgeyolo.train``, ``edgeyolo.export``, ``edgeyolo.bench``) nor the
command line (``edgeyolo.cli``); see tests/test_import_rules.py.
"""

__version__ = "0.1.0"
