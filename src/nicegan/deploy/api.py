"""The Python API: load a trained model once, translate images of any kind in memory.

>>> from nicegan import Translator
>>> translator = Translator.load("runs/cat2dog")            # a run folder, a checkpoint or an exported bundle
>>> dog = translator("cat.jpg", "a2b")                      # a path -> a PIL image
>>> dogs = translator([img1, img2], "a2b", keep_size=True)  # a list of PIL images -> a list, full resolution

What goes in comes back out as the same kind: a PIL image (or a path, read as RGB) gives a PIL image; a uint8
numpy array H x W x 3 (or H x W) gives one, a stack N x H x W x 3 gives a stack; a float array in [0, 1] gives
float32 in [0, 1]; a tensor C x H x W or N x C x H x W in [0, 1] (the torchvision convention; uint8 tensors too)
gives a tensor on the same device. A list gives a list. The images go through the same code as ``nicegan
translate`` (:func:`nicegan.inference.translate_images`): batched, without gradients, aspect ratio kept, and with
``keep_size`` translated at full resolution in blended tiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.data.images import ImageDecodeError, load_rgb, to_rgb
from nicegan.inference import load_model, translate_images
from nicegan.inference.images import check_image
from nicegan.inference.styles import prior_styles, require_style_model, style_bank, style_of_image, target_domain
from nicegan.models.base import DIRECTIONS, HeatmapModel, StyleModel, TranslationModel

__all__ = ["Translator"]


class Translator:
    """A trained model ready to translate; build it with :meth:`load`.

    Attributes: ``model`` (the network, in eval mode), ``config`` (the run config it was trained with), ``step``
    (its training step) and ``source`` (where it was loaded from).
    """

    def __init__(self, model: TranslationModel, config: Any, step: int, source: Path | None = None) -> None:
        self.model = model
        self.config = config
        self.step = step
        self.source = source

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> Translator:
        """Load a run folder, a checkpoint file or an exported bundle onto ``device`` (``auto``: cuda if available)."""
        model, cfg, step = load_model(path, device)
        return cls(model, cfg, step, Path(path))

    @property
    def name(self) -> str:
        """The model's registry name (``nicegan``, ``ugatit``, ...)."""
        return self.model.name

    @property
    def img_size(self) -> int:
        """The training size: the shorter side images are resized to by default."""
        return self.model.cfg.img_size

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions this model translates (an exported bundle may hold only one)."""
        return tuple(self.model.directions)

    @property
    def has_heatmap(self) -> bool:
        """Whether ``heatmap=True`` works (the CAM models)."""
        return isinstance(self.model, HeatmapModel)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __repr__(self) -> str:
        return (f"Translator({self.name}, step {self.step}, {self.img_size} px, directions "
                f"{'/'.join(self.directions)}, on {self.device})")

    def __call__(self, images: Any, direction: str = "a2b", *, size: int | None = None, keep_size: bool = False,
                 tile: int | None = None, overlap: int | None = None, heatmap: bool = False,
                 batch_size: int = 8, style: Any = None, styles: int | None = None, style_seed: int = 0) -> Any:
        """Translate ``images`` in ``direction``; returns the same kind (see the module docstring).

        ``size``: the shorter side the network sees (default: the training size). ``keep_size``: translate at
        each image's own resolution in ``tile`` px tiles overlapping by ``overlap`` px. ``heatmap``: return
        ``(translations, attention overlays)``, both of the input's kind.

        Multimodal models (``has_style``): ``style`` is a style seed (an int: random code 0 of that seed, as
        ``nicegan translate --style-seed``), a style code (``style_dim`` numbers, tensor or array), or a reference
        image of the target domain (path or PIL image: example-guided); without it the model draws a style from its
        prior with torch's generator. ``styles=K`` returns a list of K results, one per random code of
        ``style_seed`` (``nicegan translate --styles K``).
        """
        if direction not in DIRECTIONS:
            raise NiceganError(f"direction must be a2b or b2a, got {direction!r}")
        self.model.require_direction(direction)
        pils, rebuild = _to_pil(images)
        if styles is not None:
            if style is not None:
                raise NiceganError("give style or styles, not both")
            if heatmap:
                raise NiceganError("heatmap is not available with styles")
            bank = style_bank(self.model, styles, style_seed)
            return [rebuild([r.image for r in translate_images(self.model, pils, direction, size, keep_size=keep_size,
                                                               tile=tile, overlap=overlap, batch_size=batch_size,
                                                               progress=False, style=code)])
                    for code in bank]
        code = None if style is None else self._style_code(style, direction)
        results = list(translate_images(self.model, pils, direction, size, keep_size=keep_size, tile=tile,
                                        overlap=overlap, heatmap=heatmap, batch_size=batch_size, progress=False,
                                        style=code))
        out = rebuild([r.image for r in results])
        if heatmap:
            return out, rebuild([r.heatmap for r in results])
        return out

    @property
    def has_style(self) -> bool:
        """Whether ``style=`` / ``styles=`` work (multimodal models: MUNIT, DRIT)."""
        return isinstance(self.model, StyleModel)

    def _style_code(self, style: Any, direction: str) -> Tensor:
        """One style code (``style_dim``) from a seed, a code or a reference image of the target domain."""
        require_style_model(self.model, "style")
        if isinstance(style, (int, np.integer)) and not isinstance(style, bool):
            return prior_styles(self.model, int(style), 1)[0]
        if isinstance(style, (str, Path, Image.Image)):
            return style_of_image(self.model, _one_to_pil(style)[0][0], target_domain(direction))
        if isinstance(style, (Tensor, np.ndarray)):
            code = torch.as_tensor(np.asarray(style) if isinstance(style, np.ndarray) else style.detach().cpu())
            dim = self.model.style_dim
            if code.numel() != dim or not code.is_floating_point() or not torch.isfinite(code).all():
                raise NiceganError(f"a style code must be {dim} finite floats, got {tuple(code.shape)} "
                                   f"{code.dtype}")
            return code.reshape(dim).float()
        raise NiceganError(f"style must be a seed (int), a style code (tensor or array) or a reference image (path "
                           f"or PIL image), got {type(style).__name__}")


def _to_pil(images: Any) -> tuple[list[Image.Image], Any]:
    """The inputs as RGB PIL images, and the function turning output PIL images back into the inputs' kind."""
    if isinstance(images, (str, Path, Image.Image)):
        pils, rebuild_one = _one_to_pil(images)
        return pils, lambda outs: rebuild_one(outs)[0]
    if isinstance(images, (np.ndarray, Tensor)) and images.ndim == 4 and len(images) == 0:
        raise NiceganError(f"images is an empty stack (shape {tuple(images.shape)}): nothing to translate")
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            pils = [_array_to_pil(a) for a in images]
            return pils, lambda outs: np.stack(_arrays_like(outs, images))
        return [_array_to_pil(images)], lambda outs: _arrays_like(outs, images)[0]
    if isinstance(images, Tensor):
        if images.ndim == 4:
            return [_tensor_to_pil(t) for t in images], lambda outs: torch.stack(_tensors_like(outs, images))
        return [_tensor_to_pil(images)], lambda outs: _tensors_like(outs, images)[0]
    if isinstance(images, Sequence) and images:
        parts = [_one_to_pil(item) for item in images]
        pils = [p for pil, _ in parts for p in pil]
        return pils, lambda outs: [rebuild([o])[0] for (_, rebuild), o in zip(parts, outs, strict=True)]
    raise NiceganError("images must be a PIL image, a path, a numpy array, a tensor or a non-empty list of them, "
                       f"got {type(images).__name__}" + (" (empty)" if isinstance(images, Sequence) else ""))


def _one_to_pil(item: Any) -> tuple[list[Image.Image], Any]:
    """One image of any accepted kind (not a stack): ``([PIL image], rebuild)``."""
    if isinstance(item, (str, Path)):
        try:
            return [load_rgb(Path(item).expanduser())], lambda outs: outs
        except ImageDecodeError as e:
            raise NiceganError(f"cannot read {item}: {e}") from None
    if isinstance(item, Image.Image):  # converted as files are: 16-bit scaled, transparency on white
        check_image(*item.size)  # before a lazily opened image is decoded
        try:
            item.load()
            return [to_rgb(item)], lambda outs: outs
        except (OSError, ValueError) as e:  # a lazily opened image whose pixels cannot be decoded
            raise NiceganError(f"cannot decode the PIL image ({' '.join(str(e).split())[:120]})") from None
    if isinstance(item, np.ndarray) and item.ndim in (2, 3):
        return [_array_to_pil(item)], lambda outs: _arrays_like(outs, item)
    if isinstance(item, Tensor) and item.ndim == 3:
        return [_tensor_to_pil(item)], lambda outs: _tensors_like(outs, item)
    raise NiceganError(f"a list item must be a PIL image, a path, an H x W (x 3) array or a C x H x W tensor, "
                       f"got {type(item).__name__}" + (f" of shape {tuple(item.shape)}" if hasattr(item, "shape")
                                                      else ""))


def _array_to_pil(a: np.ndarray) -> Image.Image:
    """H x W or H x W x {1, 3, 4} array, uint8 or float in [0, 1] -> RGB PIL image."""
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[..., :3] if a.shape[-1] != 1 else a[..., 0]
    elif a.ndim != 2:
        raise NiceganError(f"an image array must be H x W or H x W x 3 (N x H x W x 3 for a stack), got shape "
                           f"{a.shape}")
    check_image(a.shape[1], a.shape[0])  # before any copy (a broadcast view may stand for terabytes)
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise NiceganError(f"an image array must be uint8 (0-255) or float (0-1), got {a.dtype}")
        if not np.isfinite(a).all():
            raise NiceganError("the image holds NaN or infinite values")
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a)).convert("RGB")


def _arrays_like(outs: list[Image.Image], like: np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(o) for o in outs]
    if like.dtype != np.uint8:
        arrays = [a.astype(np.float32) / 255 for a in arrays]
    return arrays


def _tensor_to_pil(t: Tensor) -> Image.Image:
    """C x H x W tensor (C = 1 or 3), float in [0, 1] or uint8 -> RGB PIL image."""
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise NiceganError(f"an image tensor must be C x H x W with C = 1 or 3 (N x C x H x W for a batch), got "
                           f"shape {tuple(t.shape)}")
    if t.device.type == "meta":
        raise NiceganError("the image tensor is on the meta device: it has a shape but no pixels to translate")
    if t.layout != torch.strided:
        raise NiceganError(f"an image tensor must be dense, got a {str(t.layout).removeprefix('torch.')} tensor")
    check_image(t.shape[2], t.shape[1])  # before the copy to the CPU (an expanded tensor may stand for terabytes)
    t = t.detach().cpu()
    if t.dtype != torch.uint8 and not t.is_floating_point():
        raise NiceganError(f"an image tensor must be float (0-1) or uint8, got {t.dtype}")
    # float32 for numpy (which has no bf16); the array path checks finiteness and scales like an image array
    return _array_to_pil((t if t.dtype == torch.uint8 else t.float()).permute(1, 2, 0).numpy())


def _tensors_like(outs: list[Image.Image], like: Tensor) -> list[Tensor]:
    tensors = [torch.from_numpy(np.asarray(o).copy()).permute(2, 0, 1) for o in outs]
    if like.dtype != torch.uint8:
        tensors = [t.to(like.dtype if like.is_floating_point() else torch.float32) / 255 for t in tensors]
    return [t.to(like.device) for t in tensors]
