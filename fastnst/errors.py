"""Typed errors, and the translation of huggingface_hub's into them. Every message names the problem and what to do."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


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


@contextmanager
def translate_hub_errors(repo_id: str) -> Iterator[None]:
    """Turn huggingface_hub's exceptions into fastnst's, with what to do next."""
    import httpx2
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError)

    try:
        yield
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise StyleNotFoundError(
            f"{repo_id}: no such style on the Hub, or it is private/gated (HTTP {_status(e)}). "
            "Check the repo id, or log in with `hf auth login` if it is private."
        ) from None
    except RevisionNotFoundError:
        raise StyleNotFoundError(f"{repo_id}: the requested revision does not exist on the Hub.") from None
    except LocalEntryNotFoundError:
        raise StyleNotFoundError(
            f"{repo_id}: not in the local cache and the Hub cannot be reached (offline or HF_HUB_OFFLINE=1). "
            "Connect to the network (and unset HF_HUB_OFFLINE) and try again: once downloaded, it works offline."
        ) from None
    except HFValidationError as e:
        raise StyleNotFoundError(f"{repo_id}: not a valid style folder or Hub repo id ({e}).") from None
    except HfHubHTTPError as e:
        raise HubError(f"{repo_id}: {_http_error_hint(e)}") from None
    except OfflineModeIsEnabled:
        raise HubError(f"{repo_id}: the Hub is switched off (HF_HUB_OFFLINE=1); unset it to reach the Hub.") from None
    except (httpx2.TransportError, ConnectionError, TimeoutError) as e:  # unreachable, dropped, timed out
        raise HubError(f"{repo_id}: the Hub could not be reached or dropped the connection ({type(e).__name__}: "
                       f"{str(e)[:200]}). Check your network (and HF_ENDPOINT), then try again.") from None


def _http_error_hint(e: Exception) -> str:
    """What an HTTP error from the Hub means for the user, and what to do."""
    status = _status(e)
    server = (getattr(e, "server_message", None) or "").strip().splitlines()
    said = f" The Hub said: {server[0][:200]}" if server else ""
    if status == "401":
        return ("the Hub rejected the token (HTTP 401). Log in with `hf auth login` or set HF_TOKEN to a valid "
                "token (with write access, to push)." + said)
    if status == "403":
        return ("the token may not do this (HTTP 403): it needs write access to this namespace. "
                "Use a write token of the owner, or push to your own namespace." + said)
    if status in ("409", "412"):
        return (f"conflict (HTTP {status}): the repo changed on the Hub meanwhile, or exists with other content. "
                "Pull or inspect it, then try again." + said)
    if status == "429":
        return "rate limited by the Hub (HTTP 429); wait a little and try again." + said
    if status.startswith("5"):
        return f"the Hub had a server error (HTTP {status}); try again later." + said
    return f"the Hub refused the request (HTTP {status})." + said


def _status(e: Exception) -> str:
    response = getattr(e, "response", None)
    return str(getattr(response, "status_code", "?"))
