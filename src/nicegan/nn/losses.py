"""The adversarial losses the models share, against a constant target (one owner instead of a copy per model file).

Each is the plain PyTorch loss against a target tensor of ``x``'s shape, exactly as the official codes write them
(``F.mse_loss(x, torch.full_like(x, target))`` etc.), so swapping a model's local copy for these changes no bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def mse_to(x: Tensor, target: float) -> Tensor:
    """LSGAN: mean squared distance of every element of ``x`` to ``target``."""
    return F.mse_loss(x, torch.full_like(x, target))


def bce_to(logits: Tensor, target: float) -> Tensor:
    """Vanilla GAN: sigmoid + binary cross-entropy of every logit against ``target``, averaged."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def ce_to(logits: Tensor, label: int) -> Tensor:
    """Softmax cross-entropy of each row of ``logits`` (B x classes) against one class ``label``, averaged."""
    return F.cross_entropy(logits, torch.full((logits.shape[0],), label, dtype=torch.long, device=logits.device))
