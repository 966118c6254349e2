"""What each evaluation protocol does to the pixels before the Inception network.

Every protocol starts from the image as 8-bit RGB at its own size (decoded by :func:`nicegan.data.images.load_rgb`)
and ends with a 3 x 299 x 299 float tensor in about [-1, 1]; the resize filter is what differs, and it moves FID by
up to ~0.5 on 100-image sets, so every number is reported with its protocol. The resize code is the libraries' own:

* ``paper`` (NICE-GAN's published protocol = pytorch-fid 0.3.0): ``x / 255``, ``F.interpolate`` bilinear to 299
  (``align_corners=False``, no antialias), ``2x - 1``. KID: 50 subsets, reported x 100 like the paper.
* ``torch-fidelity`` (torch-fidelity 0.4.0 ``inception-v3-compat``): uint8 values as float, TensorFlow-1 compatible
  bilinear resize to 299 (``interpolate_bilinear_2d_like_tensorflow1x``), ``(x - 128) / 128``. KID: 100 subsets.
* ``clean`` (clean-fid 0.1.35 "clean" mode): each channel resized with PIL bicubic in float (no re-quantisation,
  ``cleanfid.resize.make_resizer``), ``(x - 128) / 128``. KID: 100 subsets.

KID everywhere: cubic polynomial kernel ``(x.y / 2048 + 1)^3``, unbiased MMD^2, subsets of
``min(subset_size, |real|, |fake|)`` images drawn without replacement with a seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError

SIZE = 299


def _paper(img: Image.Image) -> Tensor:
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)[None]
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return (2 * x - 1)[0]


def _torch_fidelity(img: Image.Image) -> Tensor:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float()[None]
    x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(SIZE, SIZE), align_corners=False)
    return ((x - 128) / 128)[0]


_CLEAN_RESIZER: Callable | None = None


def _clean(img: Image.Image) -> Tensor:
    global _CLEAN_RESIZER
    if _CLEAN_RESIZER is None:
        from cleanfid.resize import make_resizer

        _CLEAN_RESIZER = make_resizer("PIL", False, "bicubic", (SIZE, SIZE))
    x = _CLEAN_RESIZER(np.asarray(img, dtype=np.uint8))
    return (torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))) - 128) / 128


@dataclass(frozen=True)
class Protocol:
    """A named preprocessing plus the KID settings and reporting scale that go with it."""

    name: str
    prepare: Callable[[Image.Image], Tensor]
    kid_subsets: int
    kid_subset_size: int
    kid_seed: int
    kid_scale: float  # reported KID = MMD^2 x scale


PROTOCOLS: dict[str, Protocol] = {
    # NICE-GAN's metric script / pytorch-fid 0.3.0: bilinear resize (no antialias), KID x 100
    "paper": Protocol("paper", _paper, 50, 1000, 0, 100.0),
    # torch-fidelity 0.4.0: TF1-compatible bilinear resize, (x - 128) / 128
    "torch-fidelity": Protocol("torch-fidelity", _torch_fidelity, 100, 1000, 2020, 1.0),
    # clean-fid 0.1.35 clean mode: PIL bicubic resize in float, (x - 128) / 128
    "clean": Protocol("clean", _clean, 100, 1000, 0, 1.0),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise NiceganError(f"unknown protocol {name!r} (choose from {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]
