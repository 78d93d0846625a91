"""lienzo: deep learning on images, from a laptop CPU to a GPU cluster."""

__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402
from .errors import ConfigError, DataError, LienzoError, ModelError, RunError  # noqa: E402
from .models import create_model, list_models  # noqa: E402


# The verbs, importable from lienzo (each module's function shadows the module's name on purpose).
from .evaluate import evaluate  # noqa: E402
from .train import train  # noqa: E402

__all__ = ["Config", "ConfigError", "DataError", "LienzoError", "ModelError", "RunError", "create_model",
           "list_models", "load_config", "train", "evaluate"]
