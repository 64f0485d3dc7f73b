"""fastnst: fast neural style transfer (Johnson et al., 2016) with Hub-native style models."""

from .errors import (FastNSTError, HubError, ImageError, InvalidStyleError, LossNetworkUnavailableError,
                     StyleNotFoundError, TrainingError, UnsafeWeightsError)
from .model import TransformerNet
from .stylizer import Stylizer

__version__ = "0.1.0"

__all__ = [
    "FastNSTError", "HubError", "ImageError", "InvalidStyleError", "LossNetworkUnavailableError",
    "StyleNotFoundError", "TrainingError", "UnsafeWeightsError", "TransformerNet", "Stylizer", "__version__",
]
