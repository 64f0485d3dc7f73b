"""Streaming training images with Hugging Face ``datasets``: Hub datasets, image folders, Parquet.

One code path: ``load_dataset(..., streaming=True)`` for all three, images decoded by fastnst's
own safe reader (undecodable or tiny images are skipped and counted, never crash a run),
seeded shuffle with a buffer, ``split_dataset_by_node`` under ``torchrun``, and a stateful
``DataLoader`` (worker processes, pinned memory) whose ``state_dict()`` goes into checkpoints
so a resumed run continues where it stopped.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .errors import FastNSTError, TrainingError
from .images import load_image, pil_to_tensor
from .settings import DataSettings

def open_dataset(cfg: DataSettings):
    """The unshuffled ``datasets.IterableDataset`` of raw (undecoded) images: one column, bytes/path dicts."""
    from datasets import Image as ImageFeature
    from datasets import load_dataset

    path = Path(cfg.data).expanduser()
    try:
        if path.is_dir() and any(path.glob("**/*.parquet")):
            ds = load_dataset("parquet", data_files={cfg.split: str(path / "**" / "*.parquet")}, split=cfg.split,
                              streaming=True)
        elif path.suffix == ".parquet":
            ds = load_dataset("parquet", data_files={cfg.split: str(path)}, split=cfg.split, streaming=True)
        elif path.is_dir():
            # An explicit pattern: otherwise datasets splits files by names containing "train"/"test"/"val".
            ds = load_dataset("imagefolder", data_files={cfg.split: str(path / "**")}, split=cfg.split, streaming=True)
        else:
            ds = load_dataset(cfg.data, split=cfg.split, streaming=True)
    except FileNotFoundError as e:
        raise TrainingError(f"dataset {cfg.data!r}: {e}. Give a local image folder, Parquet files, or a Hub dataset id.") from None
    except Exception as e:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot open"
        if isinstance(e, FastNSTError):
            raise
        raise TrainingError(
            f"cannot open dataset {cfg.data!r} ({type(e).__name__}: {e}). Offline? Use a local folder, e.g. --data ../shared/data/photos."
        ) from None
    if cfg.image_column not in (ds.features or {}):
        raise TrainingError(
            f"dataset {cfg.data!r} has no column {cfg.image_column!r} (columns: {', '.join(ds.features or [])}); set --image-column."
        )
    return ds.select_columns([cfg.image_column]).cast_column(cfg.image_column, ImageFeature(decode=False))


class ImageStream(torch.utils.data.IterableDataset):
    """Endless decoded, cropped training images as 3xSxS float tensors in [0, 1].

    Each epoch is a fresh seeded shuffle (``seed + epoch``) of the dataset, split per rank with
    ``split_dataset_by_node``. Bad images (corrupt, not images, smaller than ``min_side``) are
    skipped and counted in ``skipped``. ``state_dict``/``load_state_dict`` hold the epoch and the
    position inside it, so a resumed run continues where it stopped (with StatefulDataLoader each
    worker's state is captured with the batches it produced). With a shuffle buffer the buffer's
    content is not saved (datasets refills it), so only ``shuffle_buffer=1`` resumes image-exact.
    """

    def __init__(self, cfg: DataSettings, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.exclude = read_name_list(cfg.exclude_list) if cfg.exclude_list else frozenset()
        self.base = open_dataset(cfg)
        self.epoch, self.skipped, self.seen = 0, 0, 0
        self._current = None
        self._resume: dict[str, Any] | None = None
        self._rng = random.Random(cfg.seed + 1000 * rank)
        self._rng_restored = False

    @property
    def num_shards(self) -> int:
        return self.base.num_shards

    def epoch_dataset(self, epoch: int):
        """This rank's share of epoch ``epoch`` (a fresh dataset object: re-iterating one hangs in datasets 5.2)."""
        from datasets.distributed import split_dataset_by_node

        ds = self.base.select_columns([self.cfg.image_column])  # a new object, with no iteration state
        if self.cfg.shuffle_buffer > 1:
            ds = ds.shuffle(seed=self.cfg.seed + epoch, buffer_size=self.cfg.shuffle_buffer)
        if self.world_size > 1:
            ds = split_dataset_by_node(ds, rank=self.rank, world_size=self.world_size)
        return ds

    def state_dict(self) -> dict[str, Any]:
        hf = self._current.state_dict() if self._current is not None else (self._resume or {}).get("hf")
        return {"epoch": self.epoch, "hf": hf, "skipped": self.skipped, "seen": self.seen, "rng": self._rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._resume = state
        self.epoch, self.skipped, self.seen = state["epoch"], state["skipped"], state["seen"]
        self._rng.setstate(python_random_state(state["rng"]))
        self._rng_restored = True

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = torch.utils.data.get_worker_info()
        if worker is not None and worker.id > 0 and not self._rng_restored:
            # each worker its own crops (copies of one RNG would repeat them); worker 0 keeps the main
            # process's seed, so one worker crops exactly as none
            self._rng = random.Random(self.cfg.seed + 1000 * self.rank + 1_000_003 * worker.id)
        while True:
            self._current = self.epoch_dataset(self.epoch)
            self._current.state_dict()  # start tracking the position (datasets only does so once asked)
            partial = self._resume is not None and self._resume.get("hf") is not None
            if partial:  # the rest of a resumed epoch: it may hold no usable image without the data being bad
                self._current.load_state_dict(self._resume["hf"])
            self._resume = None
            usable = False
            for row in self._current:
                if self._excluded(row[self.cfg.image_column]):
                    continue
                img = self._decode(row[self.cfg.image_column])
                if img is None:
                    self.skipped += 1
                    continue
                usable = True
                self.seen += 1
                yield {"image": pil_to_tensor(img)[0], "skipped": self.skipped}
            if not usable and not partial:  # an empty or all-bad epoch would otherwise loop forever
                raise TrainingError(
                    f"dataset {self.cfg.data!r} gave this worker no usable image in a whole pass "
                    f"({self.skipped} skipped: undecodable or smaller than {self.cfg.min_side} px)."
                )
            self.epoch += 1

    def _excluded(self, item: Any) -> bool:
        path = item.get("path") if isinstance(item, dict) else None
        return bool(self.exclude) and path is not None and Path(path).name in self.exclude

    def _decode(self, item: Any) -> Image.Image | None:
        try:
            src = (item.get("bytes") or item.get("path")) if isinstance(item, dict) else item
            if src is None:
                return None
            img = load_image(src).convert("RGB")
        except FastNSTError:
            return None
        if min(img.size) < self.cfg.min_side:
            return None
        return crop_resize(img, self.cfg.image_size, self._rng if self.cfg.random_crop else None)


def read_list(path: str | os.PathLike) -> list[str]:
    """The entries of a text list, one per line in order (``#`` starts a comment, blank lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise TrainingError(f"cannot read the list {path} ({e.strerror or e}).") from None
    return [entry for entry in (line.split("#", 1)[0].strip() for line in text.splitlines()) if entry]


def read_name_list(path: str | os.PathLike) -> frozenset[str]:
    """File names listed one per line, e.g. a held-out evaluation split (see :func:`read_list`)."""
    return frozenset(read_list(path))


def python_random_state(state: Any) -> tuple:
    """A ``random.getstate()`` tuple back from a checkpoint, which may hold it as nested lists."""
    return (state[0], tuple(state[1]), state[2])


def crop_resize(img: Image.Image, size: int, rng: random.Random | None) -> Image.Image:
    """Resize the short side to ``size`` then crop a square (random if ``rng`` is given, else centred)."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if rng is None:
        left, top = (nw - size) // 2, (nh - size) // 2
    else:
        left, top = rng.randint(0, nw - size), rng.randint(0, nh - size)
    return img.crop((left, top, left + size, top + size))


def make_loader(cfg: DataSettings, batch_size: int, num_workers: int = 1, rank: int = 0, world_size: int = 1,
                pin_memory: bool = False):
    """A ``StatefulDataLoader`` over :class:`ImageStream` (its state goes into checkpoints)."""
    import warnings

    from torchdata.stateful_dataloader import StatefulDataLoader

    warnings.filterwarnings("ignore", message="'set_vital' is deprecated")  # torchdata 0.11 on torch >= 2.8

    stream = ImageStream(cfg, rank, world_size)
    # Workers cannot outnumber the stream's shards (datasets gives surplus workers nothing).
    workers = max(0, min(num_workers, stream.num_shards))
    return StatefulDataLoader(
        stream, batch_size=batch_size, num_workers=workers, pin_memory=pin_memory, drop_last=True,
        persistent_workers=False, **({"prefetch_factor": 4} if workers else {}),
    )
