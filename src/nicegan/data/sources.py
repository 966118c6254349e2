"""Image sources: an indexable domain of images, from files on disk or from arrays in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nicegan.data.images import load_rgb


class ImageSource:
    """A domain's images: ``len()``, ``load(i)`` -> 8-bit RGB PIL image, ``name(i)`` and optional ``labels``."""

    labels: np.ndarray | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, i: int) -> Image.Image:
        raise NotImplementedError

    def name(self, i: int) -> str:
        """Relative name of item ``i`` (used for output file names)."""
        raise NotImplementedError


class FolderSource(ImageSource):
    """Image files (already checked to decode) below ``root``."""

    def __init__(self, root: Path, files: list[Path]) -> None:
        self.root, self.files = root, list(files)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> Image.Image:
        return load_rgb(self.files[i])

    def name(self, i: int) -> str:
        return self.files[i].relative_to(self.root).as_posix()


class ArraySource(ImageSource):
    """uint8 images N x H x W (grayscale) or N x H x W x 3 held in memory, with optional labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, prefix: str = "") -> None:
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError("images must be uint8 of shape N x H x W or N x H x W x 3")
        self.images, self.labels, self.prefix = images, labels, prefix

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> Image.Image:
        arr = self.images[i]
        return Image.fromarray(arr).convert("RGB")

    def name(self, i: int) -> str:
        return f"{self.prefix}{i:05d}.png"


def spread_indices(total: int, limit: int | None) -> list[int]:
    """Indices of at most ``limit`` of ``total`` items, evenly spread (all of them without a limit): test splits may
    be sorted (builtin:digits is sorted by class), so their first ``limit`` images would not be a sample."""
    if limit is None or limit >= total:
        return list(range(total))
    if limit <= 1:
        return [0][:limit]
    return [round(k * (total - 1) / (limit - 1)) for k in range(limit)]
