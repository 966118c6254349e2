"""Spectrally normalised convolution and linear layers.

Numerically these follow the classic ``torch.nn.utils.spectral_norm`` hook (Miyato et al., ICLR 2018) that the
official NICE-GAN and U-GAT-IT code use: one power iteration per training-mode forward (``u``, ``v`` updated in
place), ``sigma = u . (W v)`` with the refreshed vectors, and ``W / sigma``; in eval mode the stored ``u``, ``v`` are
used without iterating. State-dict keys are the hook's (``weight_orig``, ``weight_u``, ``weight_v``), registered in
the hook's order (bias before ``weight_orig``), so official state dicts and Adam states map one to one.

Written as explicit modules rather than forward hooks so that a caller can advance the power iteration without
running the convolution (:meth:`SpectralNormMixin.power_iterate`): NICE-GAN's fast training path skips the
discriminator heads on real images in the generator step yet keeps ``u``/``v`` identical to the official run.

Memory: the classic hook leaves every call's ``W / sigma`` in the autograd graph (the convolution saves its weight),
so a discriminator called four times before one backward holds four copies of its weights, most of NICE-GAN's
activation memory. Here the convolution saves a recipe instead (``weight_orig``, ``sigma``) and the backward
recomputes ``weight_orig / sigma``: the same division of the same values, so gradients are bitwise unchanged. The
division's backward (:class:`_Normalize`) computes autograd's own formulas with the same operations, in an order that
holds one weight-sized temporary instead of three (the backward of the big head layers was the step's memory peak).
Under activation checkpointing (:mod:`nicegan.nn.recompute`) a recomputed forward reuses the forward's ``u``/``v``
instead of iterating again.

Under ``torch.compile`` (:mod:`nicegan.nn.compiled`) the power iteration is traced with the layer, so a network
compiles whole, once per kind of call rather than once per weight shape; the recipe-saving above is left to the
compiler, and ``u``/``v`` are rebound to the new vectors instead of updated in place (same values).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.nn.recompute import in_checkpointed_block, recorded_vectors

_EPS = 1e-12


class _Normalize(torch.autograd.Function):
    """``weight_orig / sigma`` (``sigma`` a 0-dim tensor) with the gradients of autograd's ``DivBackward0``, bit for
    bit: ``grad / sigma`` and ``-(grad * ((weight_orig / sigma) / sigma)).sum()``, where negating before or after
    the product and the sum gives the same bits. The sigma term is computed first, in place in one temporary that is
    freed before the weight's gradient is allocated."""

    @staticmethod
    def forward(ctx: Any, orig: Tensor, sigma: Tensor) -> Tensor:
        ctx.save_for_backward(orig, sigma)
        return orig / sigma

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        orig, sigma = ctx.saved_tensors
        grad_sigma = grad_orig = None
        if ctx.needs_input_grad[1]:
            t = orig / sigma
            t.div_(sigma).mul_(grad)
            grad_sigma = t.sum().neg_()
            del t
        if ctx.needs_input_grad[0]:
            grad_orig = grad / sigma
        return grad_orig, grad_sigma


class SpectralNormMixin(nn.Module):
    """Shared power-iteration state of :class:`SNConv2d` and :class:`SNLinear`."""

    weight_orig: nn.Parameter
    weight_u: Tensor
    weight_v: Tensor

    def _init_vectors(self) -> None:
        # Same draws, in the same order, as torch.nn.utils.spectral_norm: seeded builds match the official ones.
        h = self.weight_orig.shape[0]
        w = self.weight_orig[0].numel()
        self.register_buffer("weight_u", F.normalize(self.weight_orig.new_empty(h).normal_(0, 1), dim=0, eps=_EPS))
        self.register_buffer("weight_v", F.normalize(self.weight_orig.new_empty(w).normal_(0, 1), dim=0, eps=_EPS))

    def _weight_mat(self) -> Tensor:
        return self.weight_orig.reshape(self.weight_orig.shape[0], -1)

    @torch.no_grad()
    def _iterate(self) -> tuple[Tensor, Tensor]:
        w = self._weight_mat()
        v = F.normalize(torch.mv(w.t(), self.weight_u), dim=0, eps=_EPS)
        u = F.normalize(torch.mv(w, v), dim=0, eps=_EPS)
        if torch.compiler.is_compiling():
            # Rebound, not updated in place: a compiled graph may save the buffer it read for its backward pass
            # (the partitioner prefers saving inputs to saving copies), and a later in-place update of that tensor
            # would change what the backward reads. The values are the same as the eager update's.
            self.weight_u, self.weight_v = u, v
        else:
            self.weight_u.copy_(u)
            self.weight_v.copy_(v)
        return u, v

    def power_iterate(self) -> None:
        """One power-iteration step on ``u``, ``v`` (what a training-mode forward does before normalising)."""
        self._iterate()

    def _normalized(self) -> tuple[Tensor, Tensor]:
        """``(W / sigma, sigma)``; iterates first in training mode, exactly like the classic hook.

        ``sigma`` uses the new ``u``, ``v`` as fresh tensors, never the buffers themselves, so autograd (and
        torch.compile's functionalised graphs) never hold a buffer that the next forward updates in place; the hook
        achieves the same with clones. Always computed in the weight's own precision: under mixed-precision autocast
        the power iteration must not drift in bf16/fp16 (the layer's matmul or conv is cast afterwards, as usual).
        """
        dev = self.weight_orig.device.type
        no_autocast = torch.autocast(dev, enabled=False) if dev in ("cpu", "cuda") else contextlib.nullcontext()
        with no_autocast:
            if self.training:
                u, v = recorded_vectors(self, self._iterate)  # a checkpoint's recomputation does not iterate again
            else:
                u, v = self.weight_u.clone(), self.weight_v.clone()
            sigma = torch.dot(u, torch.mv(self._weight_mat(), v))
            if torch.is_grad_enabled() and not torch.compiler.is_compiling():
                return _Normalize.apply(self.weight_orig, sigma), sigma
            return self.weight_orig / sigma, sigma

    def _recomputing(self, weight: Tensor, sigma: Tensor) -> contextlib.AbstractContextManager:
        """Context for the layer's op: ``weight`` (= ``weight_orig / sigma``) is saved as a recipe, not a copy.

        Other saved tensors (the input) are kept as they are, with autograd's in-place modification check redone
        by hand, since tensors that pass through pack hooks lose it.
        """
        if not torch.is_grad_enabled() or torch.compiler.is_compiling() or in_checkpointed_block():
            return contextlib.nullcontext()  # (a checkpointed block recomputes all its saved tensors anyway)
        orig, sigma = self.weight_orig, sigma.detach()
        # Only the weight's identity: autograd keeps the pack hook alive with the graph, so a closure over the
        # tensor itself would keep the very copy this avoids.
        ptr, dtype, numel, offset = weight.data_ptr(), weight.dtype, weight.numel(), weight.storage_offset()

        def pack(t: Tensor) -> tuple:
            # The weight itself (conv) or a view of it (linear saves the transpose): keep only its geometry.
            if t.data_ptr() == ptr and t.dtype == dtype and t.numel() == numel:
                return (None, orig._version, t.shape, t.stride(), t.storage_offset() - offset)
            return (t, t._version)

        def unpack(packed: tuple) -> Tensor:
            t, version = packed[:2]
            if t is None:
                if orig._version != version:
                    raise RuntimeError("spectral norm: weight_orig was modified in place between forward and backward")
                with torch.no_grad():
                    w = orig / sigma  # the forward's division, so the same layout and the same bits
                return w.as_strided(*packed[2:])
            if t._version != version:
                raise RuntimeError("a tensor saved for backward by a spectral-norm layer was modified in place")
            return t

        return torch.autograd.graph.saved_tensors_hooks(pack, unpack)


class SNConv2d(SpectralNormMixin):
    """``Conv2d`` (no padding of its own) with spectral normalisation of its weight."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, bias: bool = True) -> None:
        super().__init__()
        conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=0, bias=bias)  # default init
        self.stride = stride
        if bias:
            self.bias = nn.Parameter(conv.bias.detach())
        else:
            self.register_parameter("bias", None)
        self.weight_orig = nn.Parameter(conv.weight.detach())
        self._init_vectors()

    def forward(self, x: Tensor) -> Tensor:
        weight, sigma = self._normalized()
        with self._recomputing(weight, sigma):
            return F.conv2d(x, weight, self.bias, self.stride)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight_orig.shape
        return f"{i}, {o}, kernel_size={k}, stride={self.stride}, bias={self.bias is not None}"


class SNLinear(SpectralNormMixin):
    """``Linear`` with spectral normalisation of its weight."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        lin = nn.Linear(in_features, out_features, bias=bias)
        if bias:
            self.bias = nn.Parameter(lin.bias.detach())
        else:
            self.register_parameter("bias", None)
        self.weight_orig = nn.Parameter(lin.weight.detach())
        self._init_vectors()

    def forward(self, x: Tensor) -> Tensor:
        weight, sigma = self._normalized()
        with self._recomputing(weight, sigma):
            return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        o, i = self.weight_orig.shape
        return f"{i}, {o}, bias={self.bias is not None}"
