"""Pictures: heatmap colouring, image grids and PNG writing (no OpenCV needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor


def jet(x: Tensor) -> Tensor:
    """Jet colour map: values in [0, 1], shape B x 1 x H x W -> RGB in [0, 1], B x 3 x H x W."""
    x = x.clamp(0, 1)
    r = (1.5 - (4 * x - 3).abs()).clamp(0, 1)
    g = (1.5 - (4 * x - 2).abs()).clamp(0, 1)
    b = (1.5 - (4 * x - 1).abs()).clamp(0, 1)
    return torch.cat([r, g, b], dim=1)


def heatmap_images(h: Tensor, size: int | tuple[int, int], under: Tensor | None = None, alpha: float = 0.5) -> Tensor:
    """Heatmaps (B x 1 x h x w) -> jet images in [-1, 1] at ``size`` (a side, or height and width); blended over
    ``under`` (in [-1, 1]) if given.

    Each map is min-max normalised on its own and upsampled bilinearly, as the official sample grids do.
    """
    h = h.detach().float()
    lo = h.amin(dim=(1, 2, 3), keepdim=True)
    h = h - lo
    h = h / h.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
    h = F.interpolate(h, size=(size, size) if isinstance(size, int) else size, mode="bilinear", align_corners=False)
    rgb = jet(h) * 2 - 1
    if under is not None:
        rgb = alpha * rgb + (1 - alpha) * under.detach().float()
    return rgb


def grid(rows: list[Tensor], pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Rows of images (each N x 3 x S x S in [-1, 1]) -> one uint8 H x W x 3 grid."""
    rows = [r.detach().float().cpu() for r in rows]
    n, s = rows[0].shape[0], rows[0].shape[-1]
    h, w = len(rows) * (s + pad) + pad, n * (s + pad) + pad
    canvas = torch.full((3, h, w), pad_value)
    for i, row in enumerate(rows):
        for j in range(n):
            y, x = pad + i * (s + pad), pad + j * (s + pad)
            canvas[:, y:y + s, x:x + s] = row[j]
    return ((canvas * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def save_png(arr: np.ndarray, path: Path, scale: int = 1) -> Path:
    """Write a uint8 H x W x 3 array as PNG (creating folders), each pixel ``scale`` x ``scale`` pixels (nearest
    neighbour: small images readable without zooming, nothing blurred or invented)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if scale > 1:
        arr = np.repeat(np.repeat(arr, scale, axis=0), scale, axis=1)
    Image.fromarray(arr).save(path)
    return path


def visuals_grid(visuals: dict[str, Tensor]) -> np.ndarray:
    """A model's :meth:`visuals` dict -> grid; heatmap rows are coloured, every row at the real images' size."""
    size = visuals["real"].shape[-1]
    rows = []
    for v in visuals.values():
        if v.shape[1] == 1:
            v = heatmap_images(v, size)
        elif v.shape[-1] != size:
            v = F.interpolate(v.float(), size=(size, size), mode="bilinear", align_corners=False)
        rows.append(v)
    return grid(rows)
