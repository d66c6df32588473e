"""Loading models: bundled GGUF packages, local files and directories, hub ids."""

from mechscope.models.load import load_model
from mechscope.models.registry import BUNDLED, DEFAULT_MODEL, BundledModel

__all__ = ["BUNDLED", "DEFAULT_MODEL", "BundledModel", "load_model"]
