"""Typed errors. Every message names the problem and what to do about it."""


class FastNSTError(Exception):
    """Base class of all errors fastnst raises on purpose."""


class ImageError(FastNSTError, ValueError):
    """An image could not be read or is unusable (corrupt, empty, too large, not an image)."""


class StyleNotFoundError(FastNSTError, LookupError):
    """A style name, folder or Hub repo id that does not resolve to a style."""


class InvalidStyleError(FastNSTError, ValueError):
    """A style folder or repo that exists but is incomplete or inconsistent."""


class UnsafeWeightsError(InvalidStyleError):
    """Weights that are not a valid safetensors file (pickles are never loaded)."""


class LossNetworkUnavailableError(FastNSTError, RuntimeError):
    """The pretrained loss network's weights cannot be found or fetched."""


class HubError(FastNSTError, RuntimeError):
    """A Hugging Face Hub operation failed (network, auth, conflict)."""


class TrainingError(FastNSTError, RuntimeError):
    """Training cannot start or cannot go on (bad config, unwritable output, non-finite loss)."""
