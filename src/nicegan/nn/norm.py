"""Instance-Layer Normalisation (ILN) and its adaptive form (AdaILN), from U-GAT-IT (Kim et al., ICLR 2020).

Both mix instance-norm and layer-norm statistics with per-channel weights. Two parametrisations exist:

* ``"softmax"`` (NICE-GAN): ``rho`` holds two logits per channel, mixed through a softmax, so the weights always
  sum to one; no clipping. AdaILN starts at logits (3.2, 1.0) (IN-heavy), ILN at (1.0, 3.2) (LN-heavy).
* ``"clip"`` (U-GAT-IT): ``rho`` holds one weight per channel used as ``(rho, 1 - rho)`` and is clamped to [0, 1]
  after every generator step by the caller (:func:`clip_rho`). AdaILN starts at 0.9, ILN at 0.0.

Statistics use the *unbiased* variance (``torch.var`` default), as both official codes do; PyTorch's own
``InstanceNorm2d``/``LayerNorm`` use the biased one, so they are not drop-in replacements.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_EPS = 1e-5


def _iln_affine(x: Tensor, rho: Tensor, mode: str, eps: float) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel ``(a, b)`` with ``rho_in * IN(x) + rho_ln * LN(x) == a * x + b``.

    One pass over ``x`` gives the instance statistics (``var_mean``); the layer statistics follow from them exactly
    (mean of the channel means; unbiased total sum of squares = sum over channels of ``(hw - 1) var_c +
    hw (mean_c - mean)^2``), so the whole normalisation is a single fused multiply-add on the activation instead of
    a dozen full-size element-wise passes (forward and backward).
    """
    c, hw = x.shape[1], x.shape[2] * x.shape[3]
    if x.dtype in (torch.float16, torch.bfloat16):  # statistics in fp32 under mixed precision
        x = x.float()
    var_in, mean_in = torch.var_mean(x, dim=(2, 3), keepdim=True)
    mean_ln = mean_in.mean(dim=1, keepdim=True)
    ss = ((hw - 1) * var_in + hw * (mean_in - mean_ln) ** 2).sum(dim=1, keepdim=True)
    var_ln = ss / (c * hw - 1)
    inv_in, inv_ln = torch.rsqrt(var_in + eps), torch.rsqrt(var_ln + eps)
    if mode == "softmax":
        w = torch.softmax(rho, dim=2)
        w_in, w_ln = w[:, :, 0].view(1, c, 1, 1), w[:, :, 1].view(1, c, 1, 1)
    else:
        w_in, w_ln = rho, 1 - rho
    a_in, a_ln = w_in * inv_in, w_ln * inv_ln
    return a_in + a_ln, -(a_in * mean_in + a_ln * mean_ln)


class ILN(nn.Module):
    """ILN with learned per-channel affine ``gamma``/``beta`` (used in the up-sampling path)."""

    def __init__(self, num_features: int, mode: str = "softmax", eps: float = _EPS) -> None:
        super().__init__()
        self.mode, self.eps = mode, eps
        if mode == "softmax":
            self.rho = nn.Parameter(torch.tensor([1.0, 3.2]).repeat(1, num_features, 1))
        elif mode == "clip":
            self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        else:
            raise ValueError(f"unknown ILN mode {mode!r}")
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        a, b = _iln_affine(x, self.rho, self.mode, self.eps)
        return torch.addcmul(b * self.gamma + self.beta, x, a * self.gamma).to(x.dtype)


class AdaILN(nn.Module):
    """ILN whose affine ``gamma``/``beta`` (shape B x C) come from the generator's MLP."""

    def __init__(self, num_features: int, mode: str = "softmax", eps: float = _EPS) -> None:
        super().__init__()
        self.mode, self.eps = mode, eps
        if mode == "softmax":
            self.rho = nn.Parameter(torch.tensor([3.2, 1.0]).repeat(1, num_features, 1))
        elif mode == "clip":
            self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), 0.9))
        else:
            raise ValueError(f"unknown AdaILN mode {mode!r}")

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        a, b = _iln_affine(x, self.rho, self.mode, self.eps)
        g = gamma[:, :, None, None]
        return torch.addcmul(b * g + beta[:, :, None, None], x, a * g).to(x.dtype)


@torch.no_grad()
def clip_rho(module: nn.Module) -> None:
    """Clamp every ``"clip"``-mode ILN/AdaILN ``rho`` inside ``module`` to [0, 1] (U-GAT-IT's RhoClipper)."""
    for m in module.modules():
        if isinstance(m, (ILN, AdaILN)) and m.mode == "clip":
            m.rho.clamp_(0.0, 1.0)


class ResnetAdaILNBlock(nn.Module):
    """Decoder residual block of NICE-GAN and U-GAT-IT: reflection pad, 3x3 conv, AdaILN, ReLU, then the same
    without the ReLU; no activation after the sum. ``mode`` is AdaILN's (NICE-GAN "softmax", U-GAT-IT "clip").
    Attribute names and creation order are the official ones (state-dict keys and seeded initial weights match)."""

    def __init__(self, dim: int, mode: str = "softmax") -> None:
        super().__init__()
        self.pad1 = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=False)
        self.norm1 = AdaILN(dim, mode=mode)
        self.relu1 = nn.ReLU(True)
        self.pad2 = nn.ReflectionPad2d(1)
        self.conv2 = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=0, bias=False)
        self.norm2 = AdaILN(dim, mode=mode)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        return out + x
