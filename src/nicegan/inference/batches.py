"""The one batched-translation loop, and the memory check that runs before it."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.core.process import announce_threads
from nicegan.models.base import HeatmapModel, StyleModel, TranslationModel
from nicegan.models.registry import physical_memory

#: the largest network input side a translation accepts
MAX_SIZE = 16384

#: style codes of images ``start .. start + n`` of a translated stream, ``fn(start, n) -> n x style_dim``
StyleFn = Callable[[int, int], Tensor]


def check_size(size: int) -> None:
    """Refuse a network size (the shorter side images are resized to) over :data:`MAX_SIZE`, before anything is
    resized to it; the command line's ``--size`` and the Python API's ``size=`` give this same reason."""
    if size > MAX_SIZE:
        raise NiceganError(f"size {size} is over the {MAX_SIZE:,} px this toolkit translates at (the networks see "
                           "size x size images; translate at the training size and keep the input's resolution with "
                           "keep_size)", option="size")


def check_fitted(height: int, width: int) -> None:
    """Refuse a network input whose longer side (the shorter one resized to the size, the aspect ratio kept) is over
    :data:`MAX_SIZE`, before the image is resized to it."""
    if max(height, width) > MAX_SIZE:
        raise NiceganError(f"an input fitted to {width}x{height} px is over the {MAX_SIZE:,} px this toolkit "
                           "translates at (an extreme aspect ratio?); translate it in tiles with keep_size",
                           option="keep_size")


def check_translation_memory(model: TranslationModel, size: int | tuple[int, int], batch_size: int,
                             direction: str = "a2b") -> None:
    """Refuse a translation whose activations would not fit in memory (e.g. ``--size 100000``), with the estimate.

    The estimate runs the model once on the ``meta`` device (shapes only, no memory) and takes the weights plus
    four times the largest activation of one batch (input, output, a skip connection and a temporary).
    """
    height, width = (size, size) if isinstance(size, int) else size
    if isinstance(size, int):
        check_size(size)
    check_fitted(height, width)
    # the meta pass costs a model build (a tenth of a second for NICE-GAN): once per model and batch shape, so a
    # server or the Python API translating one image at a time does not pay it per call
    key = (height, width, batch_size, direction)
    passed = _PASSED.setdefault(model, set())
    if key in passed:
        return
    _check_memory(model, height, width, batch_size, direction)
    passed.add(key)


_PASSED: weakref.WeakKeyDictionary[TranslationModel, set[tuple[int, int, int, str]]] = weakref.WeakKeyDictionary()


def _check_memory(model: TranslationModel, height: int, width: int, batch_size: int, direction: str) -> None:
    largest = 0

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, Tensor):
                largest = max(largest, t.numel() * t.element_size())

    try:
        with torch.device("meta"):
            meta = type(model)(model.cfg)
        handles = [m.register_forward_hook(hook) for m in meta.modules()]
        with torch.no_grad():
            meta.eval().translate(torch.empty(batch_size, model.cfg.img_ch, height, width, device="meta"),
                                 direction)
        for h in handles:
            h.remove()
    except Exception:  # a model whose translation cannot run on meta tensors (e.g. an optimising inversion)
        return
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    need, have = weights + 4 * largest, physical_memory()
    if have and need > have:
        raise NiceganError(f"translating {batch_size} image(s) at {width}x{height} px needs about "
                           f"{need / 2**30:,.1f} GiB of memory (largest activation {largest / 2**30:,.1f} GiB), "
                           f"more than this machine's {have / 2**30:.1f} GiB; use a smaller size, tile or batch size")


def inference_context(model: TranslationModel) -> AbstractContextManager:
    """``inference_mode`` (fastest), or ``no_grad`` for models whose translation optimises (CoGAN's inversion)."""
    return torch.no_grad() if model.translation_needs_grad else torch.inference_mode()


def translate_batches(model: TranslationModel, batches: Iterable[Tensor], direction: str, *, heatmap: bool = False,
                      diagnostics: dict[str, float] | None = None,
                      style: Tensor | StyleFn | None = None) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Translate each batch (N x C x S x S in [-1, 1], any device) on the model's device, in eval mode, without
    gradients; yields ``(translation clamped to [-1, 1], heatmap or None)`` per batch.

    ``heatmap`` also yields the model's attention maps (models with the heatmap capability). ``diagnostics``, if
    given, receives the image-weighted means of the model's ``translate_diagnostics`` (e.g. CoGAN's inversion
    error). ``style`` (multimodal models only): one style code (``style_dim``) for every image, or a
    :data:`StyleFn` giving each image of the stream its own (see :mod:`nicegan.inference.styles`); None lets the
    model draw from its prior. The model's train/eval mode is restored afterwards.
    """
    model.require_direction(direction)
    if heatmap and not isinstance(model, HeatmapModel):
        raise NiceganError(f"the {model.name} model has no attention heatmap")
    if style is not None and not isinstance(model, StyleModel):
        raise NiceganError(f"the {model.name} model has no style codes (multimodal models such as munit have them)")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    done = 0
    try:
        for x in batches:
            if device.type == "cpu":
                announce_threads()  # once per command, when its first batch starts (its inputs are checked by then)
            x = x.to(device)
            with inference_context(model):
                if style is None:
                    y = model.translate(x, direction)
                else:
                    codes = style(done, len(x)) if callable(style) else style.reshape(1, -1).expand(len(x), -1)
                    y = model.translate(x, direction, style=codes.to(device))
                y = y.clamp(-1, 1)
                h = model.heatmap(x, direction) if heatmap else None
            if diagnostics is not None:
                model.accumulate_diagnostics(diagnostics, done, len(x))
            done += len(x)
            yield y, h
    finally:
        model.train(was_training)
