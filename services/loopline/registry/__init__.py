"""Model versions, their lineage and aliases (champion, challenger), and exported artifacts."""

from loopline.registry.export import ModelVersion, load_version_dir
from loopline.registry.lineage import DataWindow, Lineage
from loopline.registry.store import ALIASES, ModelRegistry

__all__ = [
    "ALIASES",
    "DataWindow",
    "Lineage",
    "ModelRegistry",
    "ModelVersion",
    "load_version_dir",
]
