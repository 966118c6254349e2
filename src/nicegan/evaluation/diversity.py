"""The ``diversity`` metric of multimodal models: how different the translations of one input with different styles
are, in the FID Inception's feature space (offline, the same network and protocol as FID/KID).

For each of ``DIVERSITY_INPUTS`` test images (evenly spread over the split) the model translates the image with
``DIVERSITY_STYLES`` seeded random style codes (the ``--styles K`` codes of the evaluation's style seed); the score
of the image is the mean Euclidean distance between the Inception pool features (2048-d) of its K translations over
all K (K - 1) / 2 pairs, and the metric is the mean over the images. 0 means every style gives the same image (mode
collapse); larger is more diverse. The MUNIT and DRIT papers measure diversity with LPIPS distances instead, so the
numbers are comparable between runs of this toolkit, not with the papers' tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from nicegan.core.errors import NiceganError
from nicegan.data import open_domain
from nicegan.data.transforms import tensor_to_uint8, test_transform
from nicegan.evaluation.registry import EvalContext, Report, register_metric
from nicegan.evaluation.translation import DIRECTION_DOMAINS
from nicegan.inference import translate_batches
from nicegan.inference.styles import require_style_model, style_bank
from nicegan.models.base import StyleModel, TranslationModel

#: inputs per direction and styles per input: small, so that an evaluation spends little on it (2 x 8 x 4 = 64
#: Inception passes)
DIVERSITY_INPUTS = 8
DIVERSITY_STYLES = 4


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of rows of ``features`` (K x D, K >= 2)."""
    f = torch.from_numpy(np.asarray(features, np.float64))
    if len(f) < 2:
        raise NiceganError("the diversity score needs at least 2 translations per input")
    d = torch.cdist(f, f)
    k = len(f)
    return float(d.sum() / (k * (k - 1)))


def style_translations(model: TranslationModel, image: Image.Image, direction: str, styles: torch.Tensor,
                       size: int | None = None) -> list[Image.Image]:
    """``image`` translated once per style code in ``styles`` (K x style_dim), as 8-bit RGB images."""
    require_style_model(model, "the diversity score")
    x = test_transform(image, size or model.cfg.img_size)[None].expand(len(styles), -1, -1, -1)
    ((y, _),) = translate_batches(model, [x], direction, style=lambda start, n: styles[start:start + n])
    return [Image.fromarray(tensor_to_uint8(t)) for t in y]


def diversity_score(model: TranslationModel, images: list[Image.Image], direction: str, extractor: Any,
                    styles: int = DIVERSITY_STYLES, seed: int = 0) -> dict[str, float]:
    """Mean (and standard deviation over the inputs) of the per-input mean pairwise feature distance between
    ``styles`` translations of each image; ``extractor``: a :class:`~nicegan.evaluation.fid.FeatureExtractor`."""
    if styles < 2:
        raise NiceganError(f"the diversity score needs at least 2 styles per input, got {styles}")
    bank = style_bank(model, styles, seed)
    scores = []
    for img in images:
        fakes = style_translations(model, img, direction, bank)
        feats = extractor.features(fakes, total=len(fakes), desc="inception diversity", progress=False)
        scores.append(mean_pairwise_distance(feats))
    return {"score": float(np.mean(scores)), "std": float(np.std(scores)), "inputs": len(images), "styles": styles}


def _scalars(outputs: dict[str, Any]) -> dict[str, float]:
    return {f"eval/diversity_{d}": r["score"] for d, r in outputs["results"].items()}


def _report(outputs: dict[str, Any]) -> Report:
    results = outputs["results"]
    return Report({"diversity": results},
                  [f"{d}: diversity {r['score']:.4g} (mean pairwise Inception-feature distance, {r['styles']} styles "
                   f"x {r['inputs']} inputs)" for d, r in results.items()])


@register_metric("diversity", applies=lambda ctx: isinstance(ctx.model, StyleModel), scalars=_scalars,
                 needs_extractor=True, report=_report, rank=20)
def diversity(ctx: EvalContext) -> dict[str, Any]:
    """Diversity score per direction (see the module docstring) on ``DIVERSITY_INPUTS`` test images (at most
    ``limit``) with ``DIVERSITY_STYLES`` styles each."""
    if ctx.extractor is None:
        raise NiceganError("the diversity score needs the Inception feature extractor (EvalContext.extractor)")
    results = {}
    for direction in ctx.directions:
        src = open_domain(ctx.data_root, ctx.split, DIRECTION_DOMAINS[direction][0], cache_dir=ctx.cache_dir)
        n = min(DIVERSITY_INPUTS, len(src), ctx.limit or len(src))
        picks = sorted({round(i * (len(src) - 1) / max(1, n - 1)) for i in range(n)})
        images = [src.load(i) for i in picks]
        results[direction] = diversity_score(ctx.model, images, direction, ctx.extractor, seed=ctx.style_seed)
    return {"results": results}
