"""The Python API: load a trained model once, translate images of any kind in memory.

>>> from nicegan import Translator
>>> translator = Translator.load("runs/cat2dog")            # a run folder, a checkpoint or an exported bundle
>>> dog = translator("cat.jpg", "a2b")                      # a path -> a PIL image
>>> dogs = translator([img1, img2], "a2b", keep_size=True)  # a list of PIL images -> a list, full resolution

What goes in comes back out as the same kind: a PIL image (or a path, read as RGB) gives a PIL image; a uint8
numpy array H x W x 3 (or H x W) gives one, a stack N x H x W x 3 gives a stack; a float array in [0, 1] gives
float32 in [0, 1]. A list gives a list. These go through the same code as ``nicegan translate``
(:func:`nicegan.inference.translate_images`): batched, without gradients, aspect ratio kept, and with ``keep_size``
translated at full resolution in blended tiles.

Tensors stay tensors: a C x H x W or N x C x H x W tensor (C = 1 or 3; float in [0, 1], the torchvision
convention, or uint8 in 0-255), alone or as list items, is translated as it is, on the translator's device, with the
same geometry (resized with torch's antialiased bilinear filter, aspect ratio kept, tiles with ``keep_size``), never
through 8-bit images. The result is a 3-channel tensor on the input's device: float in [0, 1] of the input's dtype
(not rounded to 1/255 steps), or uint8 for a uint8 input. A float input at a size the network takes as it is (e.g.
the training size, square) gives exactly ``(model.translate(2 x - 1) + 1) / 2``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.core.tiles import Tile
from nicegan.core.visual import heatmap_images
from nicegan.data.images import MAX_PIXELS, ImageDecodeError, load_rgb, to_rgb
from nicegan.inference import input_geometry, load_model, translate_batches, translate_images
from nicegan.inference.batches import check_fitted, check_size, check_translation_memory
from nicegan.inference.images import check_image, padded_tiles, tile_options
from nicegan.inference.styles import StyleSpec, drawn_style, resolve_style, style_bank
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
        """Where the model runs: tensor inputs are translated here and returned to their own device."""
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

        Multimodal models (``has_style``): ``style`` is a style seed (an int: code 0 of that seed, the style
        ``nicegan translate --style-seed`` and the web app's style seed give), a style code (``style_dim`` numbers,
        tensor or array), or a reference image of the target domain (path or PIL image: example-guided), resolved by
        :func:`nicegan.inference.styles.resolve_style`; one code serves every image and every tile. Without it the
        model draws a style from its prior with torch's generator (with ``keep_size``, one draw for the call, so the
        tiles of an image share it). ``styles=K`` returns a list of K results, one per code ``0 .. K-1`` of
        ``style_seed`` (``nicegan translate --styles K``).
        """
        if direction not in DIRECTIONS:
            raise NiceganError(f"direction must be a2b or b2a, got {direction!r}")
        self.model.require_direction(direction)
        units, rebuild = _prepare(images)
        opts = {"size": size, "keep_size": keep_size, "tile": tile, "overlap": overlap, "batch_size": batch_size}
        if styles is not None:
            if style is not None:
                raise NiceganError("give style or styles, not both")
            if heatmap:
                raise NiceganError("heatmap is not available with styles")
            bank = style_bank(self.model, styles, style_seed)
            return [rebuild(self._translate_units(units, direction, code, False, opts)[0]) for code in bank]
        code = None if style is None else self._style_code(style, direction)
        if code is None and keep_size and isinstance(self.model, StyleModel):
            code = drawn_style(self.model)  # one draw for the call: the tiles of an image share one style
        outs, heats = self._translate_units(units, direction, code, heatmap, opts)
        if heatmap:
            return rebuild(outs), rebuild(heats)
        return rebuild(outs)

    def _translate_units(self, units: list[Image.Image | Tensor], direction: str, code: Tensor | None,
                         heatmap: bool, opts: dict[str, Any]) -> tuple[list[Any], list[Any]]:
        """Outputs (and heatmaps) of prepared inputs, in order: the PIL images in one batched
        :func:`translate_images` pass, each tensor in :meth:`_translate_tensor`."""
        outs: list[Any] = [None] * len(units)
        heats: list[Any] = [None] * len(units)
        pil_at = [k for k, u in enumerate(units) if isinstance(u, Image.Image)]
        if pil_at:
            results = translate_images(self.model, [units[k] for k in pil_at], direction, opts["size"],
                                       keep_size=opts["keep_size"], tile=opts["tile"], overlap=opts["overlap"],
                                       heatmap=heatmap, batch_size=opts["batch_size"], progress=False, style=code)
            for k, r in zip(pil_at, results, strict=True):
                outs[k], heats[k] = r.image, r.heatmap
        for k, u in enumerate(units):
            if isinstance(u, Tensor):
                outs[k], heats[k] = self._translate_tensor(u, direction, code, heatmap, **opts)
        return outs, heats

    def _translate_tensor(self, images: Tensor, direction: str, code: Tensor | None, heatmap: bool, *,
                          size: int | None, keep_size: bool, tile: int | None, overlap: int | None,
                          batch_size: int) -> tuple[Tensor, Tensor | None]:
        """A checked N x C x H x W tensor translated as it is on the model's device, the geometry of
        :func:`translate_images` done with torch ops: ``(N x 3 x H' x W', heatmaps or None)`` in the input's
        convention, on its device."""
        size = self._check_options(size, batch_size, heatmap)
        x = images.detach().to(self.device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if not bool(torch.isfinite(x).all()):
            raise NiceganError("the image holds NaN or infinite values")
        # the clamp is what the PIL path's 8-bit conversion does to values outside [0, 1]
        x = x.clamp(0, 1).expand(-1, 3, -1, -1) * 2 - 1
        run = _TensorRun(self.model, direction, code, heatmap, batch_size)
        if keep_size:
            parts = [run.tiled(x[k], size, tile, overlap) for k in range(len(x))]
            y = torch.stack([p[0] for p in parts])
            heat = torch.stack([p[1] for p in parts]) if heatmap else None
        else:
            y, heat = run.fitted(x, size)
        return _tensor_like(y, images), (_tensor_like(heat, images) if heat is not None else None)

    def _check_options(self, size: int | None, batch_size: int, heatmap: bool) -> int:
        """The network size; the refusals :func:`translate_images` gives, for the tensor path."""
        if size is None:
            size = self.img_size
        elif isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise NiceganError(f"size must be a positive whole number of pixels, got {size!r}")
        size = int(size)
        check_size(size)
        if batch_size < 1:
            raise NiceganError(f"batch_size must be >= 1, got {batch_size}", option="batch_size")
        if heatmap and not self.has_heatmap:
            raise NiceganError(f"heatmap: the {self.name} model has no attention heatmap", option="heatmap")
        self.model.check_input_size(size)
        return size

    @property
    def has_style(self) -> bool:
        """Whether ``style=`` / ``styles=`` work (multimodal models: MUNIT, DRIT)."""
        return isinstance(self.model, StyleModel)

    def _style_code(self, style: StyleSpec, direction: str) -> Tensor:
        """One style code (``style_dim``) from a seed, a code or a reference image of the target domain."""
        return resolve_style(self.model, style, direction, "style")


def _prepare(images: Any) -> tuple[list[Image.Image | Tensor], Any]:
    """The inputs as units to translate, each an RGB PIL image or a checked N x C x H x W tensor, and the function
    turning the units' outputs (PIL images, tensors) back into the inputs' kind."""
    if isinstance(images, Tensor) and not (images.ndim == 4 and len(images) == 0):
        x = _check_tensor(images)
        return [x], (lambda outs: outs[0]) if images.ndim == 4 else (lambda outs: outs[0][0])
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
    if isinstance(images, Sequence) and images:
        parts = [_one_item(item) for item in images]
        pils = [p for pil, _ in parts for p in pil]
        return pils, lambda outs: [rebuild([o])[0] for (_, rebuild), o in zip(parts, outs, strict=True)]
    raise NiceganError("images must be a PIL image, a path, a numpy array, a tensor or a non-empty list of them, "
                       f"got {type(images).__name__}" + (" (empty)" if isinstance(images, Sequence) else ""))


def _one_item(item: Any) -> tuple[list[Image.Image | Tensor], Any]:
    """One list item: a C x H x W tensor (as a batch of one) or any other accepted kind (see :func:`_one_to_pil`)."""
    if isinstance(item, Tensor) and item.ndim == 3:
        return [_check_tensor(item)], lambda outs: [outs[0][0]]
    return _one_to_pil(item)


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


def _check_tensor(t: Tensor) -> Tensor:
    """A C x H x W or N x C x H x W image tensor (C = 1 or 3, float or uint8) as N x C x H x W, not copied; refused
    in one line before anything is allocated for it (an expanded tensor may stand for terabytes)."""
    x = t[None] if t.ndim == 3 else t
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise NiceganError(f"an image tensor must be C x H x W with C = 1 or 3 (N x C x H x W for a batch), got "
                           f"shape {tuple(t.shape)}")
    if t.device.type == "meta":
        raise NiceganError("the image tensor is on the meta device: it has a shape but no pixels to translate")
    if t.layout != torch.strided:
        raise NiceganError(f"an image tensor must be dense, got a {str(t.layout).removeprefix('torch.')} tensor")
    check_image(x.shape[3], x.shape[2])
    if t.dtype != torch.uint8 and not t.is_floating_point():
        raise NiceganError(f"an image tensor must be float (0-1) or uint8, got {t.dtype}")
    return x


def _tensor_like(y: Tensor, like: Tensor) -> Tensor:
    """Network output in [-1, 1] -> the input's convention: float in [0, 1] of its dtype, or uint8 rounded as
    8-bit images are (:func:`nicegan.data.transforms.tensor_to_uint8`), on its device."""
    y = (y.float() * 0.5 + 0.5).clamp(0, 1)
    y = (y * 255).round().to(torch.uint8) if like.dtype == torch.uint8 else y.to(like.dtype)
    return y.to(like.device)


def _resize(x: Tensor, height: int, width: int, mode: str = "bilinear") -> Tensor:
    """N x C x h x w -> N x C x height x width in [-1, 1]; antialiased like Pillow's resampling when shrinking."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode=mode, align_corners=False, antialias=True).clamp(-1, 1)


def _pad(x: Tensor, height: int, width: int) -> Tensor:
    """Pad ... x h x w on the bottom and right by repeating the edge, as :func:`translate_images` does."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    if not (dh or dw):
        return x
    return F.pad(x if x.ndim == 4 else x[None], (0, dw, 0, dh), mode="replicate").reshape(*x.shape[:-2], height,
                                                                                           width)


class _TensorRun:
    """The geometry of :func:`nicegan.inference.translate_images` (aspect ratio kept, or full resolution in blended
    tiles) for images already in [-1, 1] on the model's device, through the same batched loop
    (:func:`translate_batches`), kept on the device."""

    def __init__(self, model: TranslationModel, direction: str, code: Tensor | None, heatmap: bool,
                 batch_size: int) -> None:
        self.model, self.direction, self.code, self.heatmap = model, direction, code, heatmap
        self.batch_size = batch_size
        self.geo = input_geometry(model)

    def _batches(self, batches: Iterator[Tensor]) -> Iterator[tuple[Tensor, Tensor | None]]:
        return translate_batches(self.model, batches, self.direction, heatmap=self.heatmap, style=self.code)

    def fitted(self, x: Tensor, size: int) -> tuple[Tensor, Tensor | None]:
        """N x 3 x h x w resized so that its shorter side is ``size`` (squares: size x size; fixed-size models: the
        centre square), translated; the padding to the model's multiple cut off."""
        h, w = x.shape[-2:]
        if h == w:
            x, (oh, ow) = _resize(x, size, size), (size, size)
        else:
            scale = size / min(h, w)
            ow, oh = max(size, round(w * scale)), max(size, round(h * scale))
            check_fitted(oh, ow)
            x = _resize(x, oh, ow)
            if self.geo.fixed:
                top, left = (oh - size) // 2, (ow - size) // 2
                x, (oh, ow) = x[..., top:top + size, left:left + size], (size, size)
            else:
                m = self.geo.multiple
                x = _pad(x, -(-oh // m) * m, -(-ow // m) * m)
        check_translation_memory(self.model, (x.shape[-2], x.shape[-1]), min(self.batch_size, len(x)),
                                 self.direction)
        ys, hs = [], []
        for y, hm in self._batches(iter(x.split(self.batch_size))):
            ys.append(y)
            hs.append(hm)
        y = torch.cat(ys)[..., :oh, :ow]
        if not self.heatmap:
            return y, None
        heat = heatmap_images(torch.cat(hs), (x.shape[-2], x.shape[-1]), under=x.to(hs[0].device))
        return y, heat[..., :oh, :ow]

    def tiled(self, x: Tensor, size: int, tile: int | None, overlap: int | None) -> tuple[Tensor, Tensor | None]:
        """One 3 x h x w image at its own resolution (enlarged first if its shorter side is below ``size``) in
        blended tiles; the tile options are checked with :func:`translate_images`' words."""
        geo = self.geo
        t, o = tile_options(geo, size, tile, overlap)
        h0, w0 = x.shape[-2:]
        scale = max(1.0, size / min(h0, w0))
        h, w = round(h0 * scale), round(w0 * scale)
        if h * w > MAX_PIXELS:
            raise NiceganError(f"the image is {w0} x {h0} pixels; at full resolution its shorter side is enlarged "
                               f"to {size} px, {w} x {h} = {w * h:,} pixels, over the {MAX_PIXELS:,}-pixel limit; "
                               "translate it without keep_size")
        x = _resize(x[None], h, w, "bicubic")[0]
        ph, pw, tiles = padded_tiles(geo, h, w, t, o)
        x = _pad(x, ph, pw)
        n = min(self.batch_size, len(tiles))
        check_translation_memory(self.model, (tiles[0].height, tiles[0].width), n, self.direction)
        groups = [tiles[i:i + n] for i in range(0, len(tiles), n)]
        acc = torch.zeros(3, ph, pw, device=x.device)
        heat_acc = torch.zeros(1, ph, pw, device=x.device) if self.heatmap else None
        weight = torch.zeros(1, ph, pw, device=x.device)
        crops = (torch.stack([x[:, c.top:c.top + c.height, c.left:c.left + c.width] for c in g]) for g in groups)
        for group, (y, hm) in zip(groups, self._batches(crops), strict=True):
            for k, c in enumerate(group):
                _blend(acc, weight, c, y[k], add_weight=True)
                if heat_acc is not None and hm is not None:
                    _blend(heat_acc, weight, c, F.interpolate(hm[k:k + 1].float(), size=(c.height, c.width),
                                                              mode="bilinear", align_corners=False)[0])
        if bool((weight <= 0).any()):
            raise RuntimeError("tile grid left pixels uncovered")
        y = (acc / weight)[:, :h, :w]
        heat = None
        if heat_acc is not None:
            heat = heatmap_images((heat_acc / weight)[None, :, :h, :w], (h, w), under=x[None, :, :h, :w])[0]
        # back to the input's own size, as the PIL path resizes its stitched result
        y = _resize(y[None], h0, w0, "bicubic")[0]
        heat = _resize(heat[None], h0, w0, "bicubic")[0] if heat is not None else None
        return y, heat


def _blend(acc: Tensor, weight: Tensor, tile: Tile, values: Tensor, add_weight: bool = False) -> None:
    """Add one tile's output, weighted by its blending window (:class:`nicegan.core.tiles.Canvas` on the device)."""
    w = tile.weight.to(acc.device)
    region = (slice(None), slice(tile.top, tile.top + tile.height), slice(tile.left, tile.left + tile.width))
    acc[region] += values.float() * w
    if add_weight:
        weight[region] += w
