"""The ``fid_kid`` metric: translate one domain's test split in memory, compare with the other domain's real images.

A->B translates every ``testA`` image (at the model's size) and compares the fakes, as the 8-bit images they would
be saved as, with the real ``testB`` images at their own size (official protocol: real test images are not resized
first; the Inception preprocessing resizes everything to 299). Real features are cached (content-keyed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nicegan.data import open_domain
from nicegan.data.sources import ArraySource, FolderSource, ImageSource
from nicegan.data.transforms import tensor_to_uint8, test_transform
from nicegan.errors import NiceganError
from nicegan.evaluation.registry import EvalContext, register_metric
from nicegan.inference import translate_batches
from nicegan.metrics import MetricResult, compare_features
from nicegan.metrics.features import FeatureExtractor, folder_signature
from nicegan.models.base import TranslationModel

DIRECTION_DOMAINS = {"a2b": ("A", "B"), "b2a": ("B", "A")}


def source_signature(src: ImageSource, root: str, split: str, domain: str) -> str:
    """Content key of a source for the feature cache."""
    if isinstance(src, FolderSource):
        return "folder:" + folder_signature(src.root, src.files)
    if isinstance(src, ArraySource):
        return f"{root}/{split}{domain}:" + hashlib.sha256(np.ascontiguousarray(src.images).tobytes()).hexdigest()
    raise TypeError(f"no signature for {type(src).__name__}")


def real_features(ext: FeatureExtractor, src: ImageSource, root: str, split: str, domain: str,
                  progress: bool | None = None) -> np.ndarray:
    """Features of a real split (cached)."""
    def compute() -> tuple[np.ndarray, int]:
        imgs = (src.load(i) for i in range(len(src)))
        return ext.features(imgs, total=len(src), desc=f"inception real {split}{domain}", progress=progress), 0

    return ext.cached(source_signature(src, root, split, domain), compute)[0]


def source_batches(src: ImageSource, size: int, n: int, batch_size: int = 16) -> Iterator[Tensor]:
    """The first ``n`` images of a source as network inputs (test transform), ``batch_size`` at a time."""
    for k in range(0, n, batch_size):
        yield torch.stack([test_transform(src.load(i), size) for i in range(k, min(k + batch_size, n))])


def translated_images(model: TranslationModel, src: ImageSource, direction: str, batch_size: int = 16,
                      limit: int | None = None, diagnostics: dict[str, float] | None = None) -> Iterator[Image.Image]:
    """Translations of a source's images as 8-bit RGB images (``diagnostics``: see
    :func:`~nicegan.inference.translate_batches`)."""
    n = len(src) if limit is None else min(limit, len(src))
    batches = source_batches(src, model.cfg.img_size, n, batch_size)
    for y, _ in translate_batches(model, batches, direction, diagnostics=diagnostics):
        for img in y:
            yield Image.fromarray(tensor_to_uint8(img))


def _fid_kid_scalars(outputs: dict[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for d, r in outputs["results"].items():
        values.update({f"eval/fid_{d}": r.fid, f"eval/kid_x100_{d}": 100 * r.kid_mean})
    return values


@register_metric("fid_kid", scalars=_fid_kid_scalars)
def fid_kid(ctx: EvalContext) -> dict[str, Any]:
    """FID/KID per direction of the translations of the test split against the other domain's real images.

    Outputs: ``results`` (direction -> :class:`~nicegan.metrics.MetricResult`) and ``diagnostics`` (direction ->
    image-weighted means of the model's translation diagnostics, for models that report any, such as CoGAN's
    latent-inversion error).
    """
    if ctx.extractor is None:
        raise NiceganError("FID/KID need the Inception feature extractor (EvalContext.extractor)")
    results: dict[str, MetricResult] = {}
    diagnostics: dict[str, dict[str, float]] = {}
    for direction in ctx.directions:
        if direction not in DIRECTION_DOMAINS:
            raise NiceganError(f"direction must be a2b, b2a or both, got {direction!r}")
        src_dom, dst_dom = DIRECTION_DOMAINS[direction]
        src = open_domain(ctx.data_root, ctx.split, src_dom, cache_dir=ctx.cache_dir)
        dst = open_domain(ctx.data_root, ctx.split, dst_dom, cache_dir=ctx.cache_dir)
        real = real_features(ctx.extractor, dst, ctx.data_root, ctx.split, dst_dom, ctx.progress)
        n = len(src) if ctx.limit is None else min(ctx.limit, len(src))
        diag: dict[str, float] = {}
        fake = ctx.extractor.features(translated_images(ctx.model, src, direction, limit=ctx.limit, diagnostics=diag),
                                      total=n, desc=f"inception fake {direction}", progress=ctx.progress)
        results[direction] = compare_features(real, fake, ctx.extractor.protocol, ctx.extractor.weights)
        if diag:
            diagnostics[direction] = diag
    return {"results": results, "diagnostics": diagnostics}
