"""fastnst: fast neural style transfer (Johnson et al., 2016) with Hub-native style models.

``TransformerNet`` and ``Stylizer`` are imported on first use, so the command line starts without torch.
"""

from typing import TYPE_CHECKING, Any

from .errors import (FastNSTError, HubError, ImageError, InvalidStyleError, LossNetworkUnavailableError,
                     StyleNotFoundError, TrainingError, UnsafeWeightsError)

if TYPE_CHECKING:
    from .model import TransformerNet
    from .stylizer import Stylizer

__version__ = "0.1.0"

__all__ = [
    "FastNSTError", "HubError", "ImageError", "InvalidStyleError", "LossNetworkUnavailableError",
    "StyleNotFoundError", "TrainingError", "UnsafeWeightsError", "TransformerNet", "Stylizer", "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "TransformerNet":
        from .model import TransformerNet

        return TransformerNet
    if name == "Stylizer":
        from .stylizer import Stylizer

        return Stylizer
    raise AttributeError(f"module 'fastnst' has no attribute {name!r}")
