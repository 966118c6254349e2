"""Overlapping tiles for translating images larger than a network input, blended without seams.

A tile grid covers an H x W image with tiles of at most ``tile`` x ``tile`` px whose neighbours overlap by at least
``overlap`` px, spread evenly so that the first and last tiles touch the image's edges. Each
tile's output is weighted by a window that rises smoothly from near zero to one across the overlap on the sides
that have a neighbour (and stays one at the image's border), and the canvas divides the weighted sum by the summed
weights. The weights of overlapping tiles change continuously, so a translation that differs slightly from tile to
tile (instance normalisation sees different statistics in each tile) fades from one to the next instead of jumping
at a tile edge. Pure tensor maths: nothing here knows about models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px with at least ``overlap`` px of overlap.

    Starts are multiples of ``align`` (a network's downsampling factor: a tile shifted by a fraction of it sees
    its texture at another phase, and blending two phases blurs), so ``length - tile`` must be one too.
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    if (length - tile) % align:
        raise ValueError(f"length - tile must be a multiple of align={align}, got {length} - {tile}")
    n = -(-(length - overlap) // (tile - overlap))  # fewest tiles whose overlaps are all >= overlap
    while True:
        starts = sorted({round(k * (length - tile) / (n - 1) / align) * align for k in range(n)})
        if all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False)):
            return starts
        n += 1


def ramp(size: int, before: int, after: int) -> Tensor:
    """1-D window of ``size`` values: rising over the first ``before`` values, falling over the last ``after``.

    The ramp takes the values sin^2(pi/2 (i + 0.5) / n), so it never reaches zero (a pixel covered by one tile
    only keeps a positive weight) and two opposite ramps over the same ``n`` pixels sum to exactly one.
    """
    w = torch.ones(size, dtype=torch.float64)
    if before:
        w[:before] = _rise((torch.arange(before, dtype=torch.float64) + 0.5) / before)
    if after:
        w[size - after:] = torch.minimum(w[size - after:],
                                         _rise((torch.arange(after, 0, -1, dtype=torch.float64) - 0.5) / after))
    return w.float()


def _rise(t: Tensor) -> Tensor:
    # sin^2 rises from 0 to 1 and sin^2(t) + sin^2(1 - t) = 1 (in quarter turns); near a tile's edge it is
    # quadratic, so the few pixels a network's padding disturbs there weigh almost nothing
    return torch.sin(t * torch.pi / 2) ** 2


@dataclass(frozen=True)
class Tile:
    """One tile: its top-left corner and size in the image, and its blending window (h x w)."""

    top: int
    left: int
    height: int
    width: int
    weight: Tensor


def tile_grid(height: int, width: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """The tiles covering a ``height`` x ``width`` image, row by row, with their blending windows."""
    tiles = []
    rows, cols = tile_starts(height, tile, overlap, align), tile_starts(width, tile, overlap, align)
    for i, top in enumerate(rows):
        h = min(tile, height)
        wy = ramp(h, _shared(rows, i, h, before=True), _shared(rows, i, h, before=False))
        for j, left in enumerate(cols):
            w = min(tile, width)
            wx = ramp(w, _shared(cols, j, w, before=True), _shared(cols, j, w, before=False))
            tiles.append(Tile(top, left, h, w, wy[:, None] * wx[None, :]))
    return tiles


def _shared(starts: list[int], k: int, size: int, before: bool) -> int:
    """Pixels tile ``k`` shares with its neighbour before (or after) it: the ramp length on that side."""
    if before:
        return 0 if k == 0 else starts[k - 1] + size - starts[k]
    return 0 if k == len(starts) - 1 else starts[k] + size - starts[k + 1]


class Canvas:
    """Accumulates weighted tile outputs (C x h x w each) into a C x H x W image; :meth:`result` blends them."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        self.sum = torch.zeros(channels, height, width)
        self.weight = torch.zeros(1, height, width)

    def add(self, tile: Tile, values: Tensor) -> None:
        """Add one tile's output (C x tile.height x tile.width, any device)."""
        w = tile.weight
        region = (slice(None), slice(tile.top, tile.top + tile.height), slice(tile.left, tile.left + tile.width))
        self.sum[region] += values.detach().float().cpu() * w
        self.weight[region] += w

    def result(self) -> Tensor:
        """The blended image; every pixel must have been covered by at least one tile."""
        if bool((self.weight <= 0).any()):
            raise RuntimeError("tile grid left pixels uncovered")
        return self.sum / self.weight
