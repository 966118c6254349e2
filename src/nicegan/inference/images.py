"""Images of any size and shape -> network inputs -> translations: aspect ratio kept, or full resolution in
blended tiles (:mod:`nicegan.core.tiles`).
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.core.progress import track
from nicegan.core.tiles import Canvas, Tile, tile_grid
from nicegan.core.visual import heatmap_images
from nicegan.data.images import MAX_PIXELS, image_size_problem
from nicegan.data.transforms import pil_to_tensor, tensor_to_pil, test_transform
from nicegan.inference.batches import (
    MAX_SIZE,
    check_fitted,
    check_size,
    check_translation_memory,
    translate_batches,
)
from nicegan.models.base import HeatmapModel, TranslationModel


@dataclass(frozen=True)
class Geometry:
    """The input shapes a model translates: any H x W whose sides are multiples of ``multiple`` (fully
    convolutional models), or only its training size squared (``fixed``: fully connected layers, an inversion)."""

    fixed: bool
    multiple: int


_GEOMETRY: weakref.WeakKeyDictionary[TranslationModel, Geometry] = weakref.WeakKeyDictionary()


def input_geometry(model: TranslationModel) -> Geometry:
    """Find a model's :class:`Geometry` from its own size check, confirmed by one non-square forward on ``meta``."""
    if model not in _GEOMETRY:
        _GEOMETRY[model] = _probe_geometry(model)
    return _GEOMETRY[model]


def _probe_geometry(model: TranslationModel) -> Geometry:
    size = model.cfg.img_size
    try:
        model.check_input_size(2 * size)
    except NiceganError:
        return Geometry(True, size)
    multiple = next((m for m in (1, 2, 4, 8, 16, 32, 64) if _size_ok(model, 33 * m)), 64)
    side = -(-size // multiple) * multiple
    try:
        with torch.device("meta"):
            meta = type(model)(model.cfg)
        with torch.no_grad():
            y = meta.eval().translate(torch.empty(1, model.cfg.img_ch, side, side + multiple, device="meta"), "a2b")
        if tuple(y.shape[-2:]) != (side, side + multiple):
            return Geometry(True, size)
    except Exception:  # a translation that cannot run on meta tensors or on non-square inputs
        return Geometry(True, size)
    return Geometry(False, multiple)


def _size_ok(model: TranslationModel, size: int) -> bool:
    try:
        model.check_input_size(size)
    except NiceganError:
        return False
    return True


@dataclass
class Translation:
    """One translated image: the translation, the attention overlay (or None), and what happened to the input's
    shape on the way (``"aspect"``: resized keeping its aspect ratio; ``"cropped"``: the centre square only;
    ``"tiled"``: translated at full resolution in tiles; None: a square resized to the network size)."""

    image: Image.Image
    heatmap: Image.Image | None = None
    fit: str | None = None


def check_image(width: int, height: int) -> None:
    """Refuse (:class:`NiceganError`, the same reason for files, uploads and the Python API) an image with no
    pixels or over the decoders' pixel limit, before anything is allocated for it."""
    problem = image_size_problem(width, height)
    if problem is not None:
        raise NiceganError(problem)


def _pad_to(x: Tensor, height: int, width: int) -> Tensor:
    """Pad C x h x w on the bottom and right to height x width by repeating the edge (no new content)."""
    dh, dw = height - x.shape[-2], width - x.shape[-1]
    return torch.nn.functional.pad(x[None], (0, dw, 0, dh), mode="replicate")[0] if dh or dw else x


def _fit(img: Image.Image, size: int, geo: Geometry) -> tuple[Tensor, tuple[int, int], str | None]:
    """Network input for ``img`` at ``size``: ``(C x h x w tensor, (output height, width), fit)``.

    Squares are resized to size x size (the official test transform). Other shapes keep their aspect ratio: the
    shorter side becomes ``size`` and, for fully convolutional models, the whole image is translated (padded by
    edge repetition to the model's multiple, the padding cut off afterwards); fixed-size models get the centre
    square.
    """
    w, h = img.size
    if w == h:
        return test_transform(img, size), (size, size), None
    scale = size / min(w, h)
    ow, oh = max(size, round(w * scale)), max(size, round(h * scale))
    check_fitted(oh, ow)  # before the resize allocates it
    resized = img.resize((ow, oh), Image.Resampling.BILINEAR)
    if geo.fixed:
        left, top = (ow - size) // 2, (oh - size) // 2
        return test_transform(resized.crop((left, top, left + size, top + size)), size), (size, size), "cropped"
    m = geo.multiple
    x = _pad_to(pil_to_tensor(resized), -(-oh // m) * m, -(-ow // m) * m)
    return x, (oh, ow), "aspect"


def tile_options(geo: Geometry, size: int, tile: int | None, overlap: int | None) -> tuple[int, int]:
    """The tile side and overlap in px (defaults: the network size and a quarter tile), checked for this model."""
    if geo.fixed and tile not in (None, size):
        raise NiceganError(f"this model translates only {size} x {size} inputs, so its tiles are {size} px; "
                           f"drop tile={tile}", option="tile")
    m = geo.multiple
    t = size if tile is None else tile
    if t < m or t % m:
        raise NiceganError(f"tile must be a positive multiple of {m} for this model, got {t}", option="tile")
    if t > MAX_SIZE:
        raise NiceganError(f"tile {t} is over the {MAX_SIZE:,} px this toolkit translates at", option="tile")
    o = t // 4 if overlap is None else overlap
    if not 0 <= o < t:
        raise NiceganError(f"overlap must be at least 0 and below the tile size {t}, got {o}", option="overlap")
    return t, o


def padded_tiles(geo: Geometry, h: int, w: int, tile: int, overlap: int) -> tuple[int, int, list[Tile]]:
    """``(padded height, padded width, tiles)`` of an h x w image in ``tile`` px tiles overlapping by ``overlap``."""
    m = geo.multiple
    # every tile has the same shape: the tile size, or the whole (padded) side where the image is smaller; tile
    # starts are multiples of the model's downsampling factor, so sides are padded to one
    ph, pw = (max(tile, h), max(tile, w)) if geo.fixed else (-(-h // m) * m, -(-w // m) * m)
    return ph, pw, tile_grid(ph, pw, tile, overlap, align=1 if geo.fixed else m)


def _tile_plan(img: Image.Image, size: int, geo: Geometry, tile: int | None,
               overlap: int | None) -> tuple[Tensor, tuple[int, int], list[Tile]]:
    """Full-resolution input for ``img`` and its tiles: ``(padded C x H x W, (height, width) used, tiles)``.

    Images whose shorter side is below ``size`` are first enlarged to it (the networks were trained at ``size``).
    """
    t, o = tile_options(geo, size, tile, overlap)
    w, h = img.size
    scale = max(1.0, size / min(w, h))
    if scale > 1:
        w, h = round(w * scale), round(h * scale)
        if w * h > MAX_PIXELS:  # before the resize allocates it
            raise NiceganError(f"the image is {img.size[0]} x {img.size[1]} pixels; at full resolution its shorter "
                               f"side is enlarged to {size} px, {w} x {h} = {w * h:,} pixels, over the "
                               f"{MAX_PIXELS:,}-pixel limit; translate it without keep_size", option="keep_size")
        img = img.resize((w, h), Image.Resampling.BICUBIC)
    ph, pw, tiles = padded_tiles(geo, h, w, t, o)
    x = _pad_to(pil_to_tensor(img), ph, pw)
    return x, (h, w), tiles


def translate_images(model: TranslationModel, images: Iterable[Image.Image], direction: str,
                     size: int | None = None, *, keep_size: bool = False, tile: int | None = None,
                     overlap: int | None = None, heatmap: bool = False, batch_size: int = 8,
                     progress: bool | None = None, diagnostics: dict[str, float] | None = None,
                     style: Tensor | None = None) -> Iterator[Translation]:
    """Translate RGB images of any size and shape, in order, batching those that share a network shape.

    By default an image's shorter side is resized to ``size`` (the training size if None) and its aspect ratio is
    kept (see :func:`_fit`); the output has that size. With ``keep_size`` each image is translated at its own
    resolution (enlarged first if its shorter side is below ``size``) in ``tile`` px tiles (default ``size``) that
    overlap by ``overlap`` px (default a quarter tile) and are blended without seams, and the output has the
    input's size; memory is bounded by one batch of tiles. ``heatmap`` adds the attention overlay (CAM models).
    ``style`` (multimodal models): one style code (``style_dim``) for every image and every tile of it.
    """
    model.require_direction(direction)
    if size is None:
        size = model.cfg.img_size
    elif isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise NiceganError(f"size must be a positive whole number of pixels, got {size!r}")
    size = int(size)
    check_size(size)  # before any image is resized to it
    if batch_size < 1:
        raise NiceganError(f"batch_size must be >= 1, got {batch_size}", option="batch_size")
    if heatmap and not isinstance(model, HeatmapModel):
        raise NiceganError(f"heatmap: the {model.name} model has no attention heatmap", option="heatmap")
    model.check_input_size(size)
    if not keep_size and size != model.cfg.img_size:  # the training size fits: it was trained at it
        check_translation_memory(model, size, 1, direction)
    geo = input_geometry(model)
    checked = [0]  # the largest batch area whose memory was checked

    def check_memory(shape: tuple[int, ...], n: int) -> None:
        if n * shape[-2] * shape[-1] > checked[0]:
            check_translation_memory(model, (shape[-2], shape[-1]), n, direction)
            checked[0] = n * shape[-2] * shape[-1]

    # batches() records what each batch it yields holds; translate_batches pulls one batch and yields its result
    # before pulling the next, so ``plan[0]`` always describes the batch whose result arrives.
    plan: list[Any] = []

    def batches() -> Iterator[Tensor]:
        pending: list[tuple[Image.Image, Tensor, tuple[int, int], str | None]] = []

        def flush() -> Iterator[Tensor]:
            nonlocal pending
            x = torch.stack([p[1] for p in pending])
            check_memory(tuple(x.shape), len(pending))
            plan.append(("fit", pending))
            pending = []
            yield x

        for img in images:
            check_image(*img.size)
            if keep_size:
                yield from flush() if pending else ()
                yield from _tile_batches(img, plan, size, geo, tile, overlap, batch_size, check_memory, heatmap,
                                         progress)
                continue
            x, out_hw, fit = _fit(img, size, geo)
            if pending and (pending[0][1].shape != x.shape or len(pending) == batch_size):
                yield from flush()
            pending.append((img, x, out_hw, fit))
        if pending:
            yield from flush()

    for y, h in translate_batches(model, batches(), direction, heatmap=heatmap, diagnostics=diagnostics,
                                  style=style):
        kind, what = plan.pop(0)
        if kind == "fit":
            yield from _fitted(what, y, h)
        else:
            canvas, heat_canvas, tiles, last = what
            for k, t in enumerate(tiles):
                canvas.add(t, y[k])
                if heat_canvas is not None:
                    heat_canvas.add(t, torch.nn.functional.interpolate(
                        h[k:k + 1].float(), size=(t.height, t.width), mode="bilinear", align_corners=False)[0])
            if last is not None:
                yield _stitched(canvas, heat_canvas, *last)


def _fitted(pending: list[tuple[Image.Image, Tensor, tuple[int, int], str | None]], y: Tensor,
            h: Tensor | None) -> Iterator[Translation]:
    """Translations of one batch of fitted images, the padding cut off."""
    x = torch.stack([p[1] for p in pending])
    heat = heatmap_images(h, tuple(x.shape[-2:]), under=x.to(h.device)) if h is not None else None
    for k, (_, _, (oh, ow), fit) in enumerate(pending):
        out = tensor_to_pil(y[k, :, :oh, :ow])
        hm = tensor_to_pil(heat[k, :, :oh, :ow]) if heat is not None else None
        yield Translation(out, hm, fit)


def _tile_batches(img: Image.Image, plan: list[Any], size: int, geo: Geometry, tile: int | None,
                  overlap: int | None, batch_size: int, check_memory: Callable[[tuple[int, ...], int], None],
                  heatmap: bool, progress: bool | None) -> Iterator[Tensor]:
    """Yield the tile batches of one full-resolution image, recording each in ``plan`` (the last one with what
    :func:`_stitched` needs)."""
    x, (h, w), tiles = _tile_plan(img, size, geo, tile, overlap)
    canvas = Canvas(3, x.shape[-2], x.shape[-1])
    heat_canvas = Canvas(1, x.shape[-2], x.shape[-1]) if heatmap else None
    n = min(batch_size, len(tiles))
    check_memory((tiles[0].height, tiles[0].width), n)
    groups = [tiles[i:i + n] for i in range(0, len(tiles), n)]
    for k, group in enumerate(track(groups, desc=f"tiles of a {img.size[0]}x{img.size[1]} image", unit="batch",
                                    progress=progress, quiet=len(groups) < 4)):
        last = (img, x, (h, w)) if k == len(groups) - 1 else None
        plan.append(("tiles", (canvas, heat_canvas, group, last)))
        yield torch.stack([x[:, t.top:t.top + t.height, t.left:t.left + t.width] for t in group])


def _stitched(canvas: Canvas, heat_canvas: Canvas | None, img: Image.Image, x: Tensor,
              hw: tuple[int, int]) -> Translation:
    """The blended full-resolution translation (and overlay), cut to the image and resized to its own size."""
    h, w = hw
    y = canvas.result()[:, :h, :w]
    out = tensor_to_pil(y)
    hm = None
    if heat_canvas is not None:
        hm = tensor_to_pil(heatmap_images(heat_canvas.result()[None, :, :h, :w], (h, w), under=x[None, :, :h, :w])[0])
    if out.size != img.size:
        out = out.resize(img.size, Image.Resampling.BICUBIC)
        hm = hm.resize(img.size, Image.Resampling.BICUBIC) if hm is not None else None
    return Translation(out, hm, "tiled")
