"""Data pipeline: unpaired folders or ``builtin:`` datasets -> deterministic training stream and eval sets.

A data root is either a folder with ``trainA/ trainB/ testA/ testB/`` (file names and formats free, nested folders
allowed) or ``builtin:digits`` / ``builtin:digits-val`` (:mod:`nicegan.data.digits`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from nicegan.core.errors import DataError
from nicegan.data.digits import BUILTIN_PREFIX, DIGITS, load_builtin
from nicegan.data.images import checked_image_files
from nicegan.data.sources import ArraySource, FolderSource, ImageSource
from nicegan.data.stream import StreamSampler, UnpairedStream

__all__ = ["open_domain", "build_train_loader", "ImageSource", "ArraySource", "FolderSource",
           "DIGITS", "is_builtin"]


def is_builtin(root: str) -> bool:
    return root.startswith(BUILTIN_PREFIX)


def open_domain(root: str, split: str, domain: str, strict: bool = False, cache_dir: Path | None = None,
                progress: bool | None = None) -> ImageSource:
    """One domain of one split (``split`` in {"train", "test"}, ``domain`` in {"A", "B"})."""
    if not root:
        raise DataError("no dataset given: data must be a folder with trainA/ trainB/ testA/ testB/, or "
                        "builtin:digits", option="data")
    if is_builtin(root):
        return load_builtin(root).split(split, domain)  # an unknown name is a one-line DataError
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data folder not found: {base}" if not base.exists() else f"data path is not a folder: {base}")
    folder = base / f"{split}{domain}"
    if not folder.is_dir():
        raise DataError(f"domain folder missing: {folder} (expected trainA/ trainB/ testA/ testB/ in {base})")
    cache = None if cache_dir is None else cache_dir / f"scan_{split}{domain}.json"
    files = checked_image_files(folder, strict, cache, progress)
    return FolderSource(folder, files)


def default_num_workers(device: torch.device) -> int:
    """Loader processes: none on CPU (decoding is negligible next to a CPU step), a few on a GPU."""
    if device.type != "cuda":
        return 0
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def build_train_loader(src_a: ImageSource, src_b: ImageSource, *, img_size: int, margin: int, flip: bool, seed: int,
                       batch_size: int, start_step: int, num_workers: int, device: torch.device,
                       rank: int = 0, world: int = 1, with_labels: bool = False) -> DataLoader:
    """Infinite loader of ``{"a", "b"}`` batches for one rank, starting at ``start_step``."""
    stream = UnpairedStream(src_a, src_b, img_size, margin, flip, seed, with_labels=with_labels)
    workers = default_num_workers(device) if num_workers < 0 else num_workers
    # A private generator: iter(DataLoader) draws its worker base seed from it, not from the global RNG, which a
    # resumed run must find exactly where the interrupted one left it (models draw noise from it).
    return DataLoader(stream, batch_size=batch_size, sampler=StreamSampler(start_step, batch_size, rank, world),
                      num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      generator=torch.Generator().manual_seed(seed))
