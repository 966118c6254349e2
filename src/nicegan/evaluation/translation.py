"""FID/KID of a model's translations: translate one domain's test split in memory, compare with the other's.

A->B translates every ``testA`` image (at the model's size) and compares the fakes, as the 8-bit images they would
be saved as, with the real ``testB`` images at their own size (official protocol: real test images are not resized
first; the Inception preprocessing resizes everything to 299). Real features are cached (content-keyed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nicegan.data import open_domain
from nicegan.data.sources import ArraySource, FolderSource, ImageSource
from nicegan.data.transforms import tensor_to_uint8, test_transform
from nicegan.errors import NiceganError
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


@torch.no_grad()
def translated_images(model: TranslationModel, src: ImageSource, direction: str, batch_size: int = 16,
                      limit: int | None = None, diagnostics: dict[str, float] | None = None) -> Iterator[Image.Image]:
    """Translations of a source's images as 8-bit RGB images (model in eval mode on its device).

    If ``diagnostics`` is given, it receives the image-weighted means of the model's ``translate_diagnostics``
    (e.g. CoGAN's inversion error) over everything translated.
    """
    device = next(model.parameters()).device
    size = model.cfg.img_size
    n = len(src) if limit is None else min(limit, len(src))
    for k in range(0, n, batch_size):
        x = torch.stack([test_transform(src.load(i), size) for i in range(k, min(k + batch_size, n))]).to(device)
        y = model.translate(x, direction).clamp(-1, 1)
        if diagnostics is not None:
            model.accumulate_diagnostics(diagnostics, k, len(x))
        for img in y:
            yield Image.fromarray(tensor_to_uint8(img))


def evaluate_model(model: TranslationModel, data_root: str, ext: FeatureExtractor, directions: tuple[str, ...],
                   split: str = "test", limit: int | None = None, progress: bool | None = None,
                   cache_dir: Path | None = None,
                   diagnostics: dict[str, dict[str, float]] | None = None) -> dict[str, MetricResult]:
    """FID/KID per direction of ``model`` on ``data_root``'s ``split`` (restores the model's train/eval mode).

    ``diagnostics``, if given, receives per direction the means of the model's translation diagnostics (only
    models that report any, such as CoGAN's latent-inversion error).
    """
    was_training = model.training
    model.eval()
    out: dict[str, MetricResult] = {}
    try:
        for direction in directions:
            if direction not in DIRECTION_DOMAINS:
                raise NiceganError(f"direction must be a2b, b2a or both, got {direction!r}")
            src_dom, dst_dom = DIRECTION_DOMAINS[direction]
            src = open_domain(data_root, split, src_dom, cache_dir=cache_dir)
            dst = open_domain(data_root, split, dst_dom, cache_dir=cache_dir)
            real = real_features(ext, dst, data_root, split, dst_dom, progress)
            n = len(src) if limit is None else min(limit, len(src))
            diag: dict[str, float] = {}
            with torch.random.fork_rng(devices=[]):  # evaluation never moves a training run's random state
                fake = ext.features(translated_images(model, src, direction, limit=limit, diagnostics=diag), total=n,
                                    desc=f"inception fake {direction}", progress=progress)
            out[direction] = compare_features(real, fake, ext.protocol, ext.weights)
            if diagnostics is not None and diag:
                diagnostics[direction] = diag
    finally:
        model.train(was_training)
    return out
