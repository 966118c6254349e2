"""Image <-> tensor conversions and the paper's augmentation, driven by an explicit random generator.

Train (official order): random horizontal flip, resize to (S + margin) square (bilinear, aspect ratio not kept),
random crop S x S, scale to [-1, 1]. Test: resize to S x S, scale to [-1, 1]. The randomness comes from a
``torch.Generator`` per sample (see :mod:`nicegan.data.stream`), so a resumed run sees exactly the same crops.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def pil_to_tensor(img: Image.Image) -> Tensor:
    """8-bit RGB image -> float tensor 3 x H x W in [-1, 1] (same arithmetic as ToTensor + Normalize(0.5, 0.5))."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    t = torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous().float().div(255)
    return t.sub_(0.5).div_(0.5)


def tensor_to_uint8(x: Tensor) -> np.ndarray:
    """Tensor 3 x H x W in [-1, 1] -> uint8 array H x W x 3 (rounded, clipped)."""
    x = ((x.detach().float().cpu() * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(1, 2, 0).numpy()


def tensor_to_pil(x: Tensor) -> Image.Image:
    return Image.fromarray(tensor_to_uint8(x))


def train_transform(img: Image.Image, size: int, margin: int, flip: bool, gen: torch.Generator) -> Tensor:
    """Official training augmentation with randomness from ``gen``."""
    if flip and torch.rand(1, generator=gen).item() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    load = size + margin
    if img.size != (load, load):
        img = img.resize((load, load), Image.Resampling.BILINEAR)
    if margin:
        top = int(torch.randint(0, margin + 1, (1,), generator=gen))
        left = int(torch.randint(0, margin + 1, (1,), generator=gen))
        img = img.crop((left, top, left + size, top + size))
    return pil_to_tensor(img)


def test_transform(img: Image.Image, size: int) -> Tensor:
    """Official test transform: resize to size x size (bilinear), scale to [-1, 1]."""
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return pil_to_tensor(img)
