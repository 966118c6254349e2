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

from nicegan.core.errors import NiceganError
from nicegan.data import open_domain
from nicegan.data.sources import ArraySource, FolderSource, ImageSource, spread_indices
from nicegan.data.transforms import tensor_to_uint8, test_transform
from nicegan.evaluation.fid import MetricResult, compare_features
from nicegan.evaluation.fid.features import FeatureExtractor, folder_signature
from nicegan.evaluation.registry import EvalContext, Report, register_metric
from nicegan.inference import translate_batches
from nicegan.inference.styles import seeded_style_fn
from nicegan.models.base import StyleModel, TranslationModel

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


def source_batches(src: ImageSource, size: int, indices: list[int], batch_size: int = 16) -> Iterator[Tensor]:
    """The images ``indices`` of a source as network inputs (test transform), ``batch_size`` at a time."""
    for k in range(0, len(indices), batch_size):
        yield torch.stack([test_transform(src.load(i), size) for i in indices[k:k + batch_size]])


def translated_images(model: TranslationModel, src: ImageSource, direction: str, batch_size: int = 16,
                      limit: int | None = None, diagnostics: dict[str, float] | None = None,
                      style_seed: int = 0) -> Iterator[Image.Image]:
    """Translations of a source's images (at most ``limit``, evenly spread) as 8-bit RGB images (``diagnostics``: see
    :func:`~nicegan.inference.translate_batches`). Multimodal models translate image i with style code i of
    ``style_seed`` (:func:`~nicegan.inference.styles.seeded_style_fn`)."""
    batches = source_batches(src, model.cfg.img_size, spread_indices(len(src), limit), batch_size)
    style = seeded_style_fn(model, style_seed) if isinstance(model, StyleModel) else None
    for y, _ in translate_batches(model, batches, direction, diagnostics=diagnostics, style=style):
        for img in y:
            yield Image.fromarray(tensor_to_uint8(img))


def _fid_kid_scalars(outputs: dict[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    for d, r in outputs["results"].items():
        values.update({f"eval/fid_{d}": r.fid, f"eval/kid_x100_{d}": 100 * r.kid_mean})
    return values


def _fid_kid_report(outputs: dict[str, Any]) -> Report:
    results, diagnostics = outputs["results"], outputs["diagnostics"]
    fields: dict[str, Any] = {"results": {d: r.to_dict() for d, r in results.items()}}
    if diagnostics:  # e.g. CoGAN's inversion error: how faithful the translations' latent codes are
        fields["diagnostics"] = diagnostics
    if "styles" in outputs:  # multimodal models: the protocol, one seeded random style per test image
        fields["styles"] = outputs["styles"]
    lines = []
    for d, r in results.items():
        lines.append(f"{d}: {r.summary()}")
        lines += [f"{d}: mean {k} {v:.4g}" for k, v in diagnostics.get(d, {}).items()]
    if "styles" in outputs:
        lines.append(f"styles: {outputs['styles']}")
    return Report(fields, lines, [f"{d}: {w}" for d, r in results.items() for w in r.warnings()])


@register_metric("fid_kid", scalars=_fid_kid_scalars, needs_extractor=True, report=_fid_kid_report, rank=0)
def fid_kid(ctx: EvalContext) -> dict[str, Any]:
    """FID/KID per direction of the translations of the test split against the other domain's real images.

    Outputs: ``results`` (direction -> :class:`~nicegan.evaluation.fid.MetricResult`) and ``diagnostics`` (direction ->
    image-weighted means of the model's translation diagnostics, for models that report any, such as CoGAN's
    latent-inversion error); for multimodal models ``styles``, the protocol (one seeded random style per test
    image, as the MUNIT and DRIT papers evaluate).
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
        fakes = translated_images(ctx.model, src, direction, limit=ctx.limit, diagnostics=diag,
                                  style_seed=ctx.style_seed)
        fake = ctx.extractor.features(fakes, total=n, desc=f"inception fake {direction}", progress=ctx.progress)
        results[direction] = compare_features(real, fake, ctx.extractor.protocol, ctx.extractor.weights)
        if diag:
            diagnostics[direction] = diag
    out: dict[str, Any] = {"results": results, "diagnostics": diagnostics}
    if isinstance(ctx.model, StyleModel):  # the multimodal protocol, said wherever the numbers are shown
        out["styles"] = style_protocol(ctx.style_seed)
    return out


def style_protocol(seed: int) -> str:
    """How a multimodal model's translations were styled in an evaluation (printed next to its numbers)."""
    return f"one random style per test image (N(0, I); image i takes style code i of style seed {seed})"
