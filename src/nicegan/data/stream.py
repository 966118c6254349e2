"""Deterministic, resumable, shardable unpaired training stream.

Training draws one batch per step from each domain, independently (unpaired). Draw number ``i`` of a domain is a
pure function of ``(seed, domain, i)``: the image is ``perm_epoch[i % n]`` of a per-epoch permutation seeded by
``(seed, domain, i // n)``, and its augmentation uses a generator seeded by ``(seed, domain, i)``. So:

* resuming at step ``k`` only needs ``k`` (no iterator or RNG state to restore), and the crops are bit-identical;
* the result does not depend on the number of loader workers;
* with ``world`` processes of batch ``B``, rank ``r`` takes draws ``(k * world + r) * B + j``: two processes of
  batch 1 see exactly the samples one process of batch 2 sees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from nicegan.core.errors import DataError
from nicegan.data.images import ImageDecodeError
from nicegan.data.sources import ImageSource
from nicegan.data.transforms import train_transform

log = logging.getLogger("nicegan")


def mix_seed(*values: int) -> int:
    """A 63-bit seed from a tuple of non-negative ints (stable across platforms and Python versions)."""
    return int(np.random.SeedSequence(list(values)).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


class UnpairedStream(Dataset):
    """Map-style dataset over draw indices: item ``i`` is ``{"a": ..., "b": ...}``, the i-th draw of each domain."""

    def __init__(self, src_a: ImageSource, src_b: ImageSource, size: int, margin: int, flip: bool, seed: int,
                 with_labels: bool = False) -> None:
        self.sources = (src_a, src_b)
        self.size, self.margin, self.flip, self.seed = size, margin, flip, seed
        self.with_labels = with_labels
        self._perms: dict[tuple[int, int], np.ndarray] = {}
        self._warned: set[tuple[int, int]] = set()

    def __len__(self) -> int:  # effectively infinite; the sampler decides which draws are taken
        return 2**62

    def _perm(self, domain: int, epoch: int) -> np.ndarray:
        key = (domain, epoch)
        if key not in self._perms:
            if len(self._perms) > 8:
                self._perms.clear()
            g = torch.Generator().manual_seed(mix_seed(self.seed, domain, epoch))
            self._perms[key] = torch.randperm(len(self.sources[domain]), generator=g).numpy()
        return self._perms[key]

    def _draw(self, domain: int, i: int) -> tuple[torch.Tensor, int]:
        src = self.sources[domain]
        n = len(src)
        epoch, pos = divmod(i, n)
        perm = self._perm(domain, epoch)
        for k in range(n):  # a file that stopped decoding after the start-up check: take the next one instead
            idx = int(perm[(pos + k) % n])
            try:
                img = src.load(idx)
            except ImageDecodeError as e:
                if (domain, idx) not in self._warned:
                    self._warned.add((domain, idx))
                    log.warning("skipping %s during training: %s", src.name(idx), e)
                continue
            g = torch.Generator().manual_seed(mix_seed(self.seed, 1000 + domain, i))
            label = -1 if src.labels is None else int(src.labels[idx])
            return train_transform(img, self.size, self.margin, self.flip, g), label
        raise DataError(f"no image of domain {'AB'[domain]} can be decoded any more")

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a, la = self._draw(0, i)
        b, lb = self._draw(1, i)
        out = {"a": a, "b": b}
        if self.with_labels:
            out["a_label"], out["b_label"] = torch.tensor(la), torch.tensor(lb)
        return out


class StreamSampler(Sampler[int]):
    """Infinite sampler of draw indices for one rank, starting at ``start_step``."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.start_step, self.batch_size, self.rank, self.world = start_step, batch_size, rank, world

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = (step * self.world + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:
        return 2**62

