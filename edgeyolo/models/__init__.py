"""Models: one YAML builder with a module registry, the seeds' zoo at s/m/l/x scales."""
from .builder import build_model, load_config
from .yolo import YOLO, FeatureInfo, RowInfo
from .zoo import SEED_MODELS, model_names

__all__ = ["YOLO", "FeatureInfo", "RowInfo", "SEED_MODELS", "build_model", "load_config", "model_names"]
