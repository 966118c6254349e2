"""FID and KID under a named protocol (see :mod:`nicegan.evaluation.fid.protocols`), offline.

The Fréchet distance and the KID estimator are torch-fidelity's (``fid_statistics_to_metric``: trace of the
matrix square root from the eigenvalues of ``S1 S2``, no ``scipy.linalg.sqrtm``; ``kid_features_to_metric``:
unbiased MMD^2 with the cubic polynomial kernel over seeded random subsets), fed with float64 features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nicegan.core.errors import NiceganError
from nicegan.evaluation.fid.features import FeatureExtractor
from nicegan.evaluation.fid.protocols import PROTOCOLS, Protocol, get_protocol
from nicegan.evaluation.fid.weights import InceptionWeights, resolve_weights

#: below this many images on either side, FID says more about its estimator's bias than about the images
MIN_FID_IMAGES = 50

__all__ = ["MIN_FID_IMAGES", "MetricResult", "fid_from_features", "kid_from_features", "compare_features",
           "eval_folders", "FeatureExtractor", "PROTOCOLS", "get_protocol", "make_extractor", "resolve_weights"]


@dataclass
class MetricResult:
    """FID and KID of one real/fake comparison, with everything needed to interpret them."""

    fid: float
    kid_mean: float  # MMD^2 (not scaled)
    kid_std: float
    kid_scale: float  # the protocol reports KID x this (100 for the paper protocol)
    kid_subsets: int
    kid_subset_size: int
    n_real: int
    n_fake: int
    protocol: str
    weights: str
    skipped_real: int = 0
    skipped_fake: int = 0

    @property
    def fid_reliable(self) -> bool:
        """Whether both sides had at least :data:`MIN_FID_IMAGES` images (FID's bias dominates below that)."""
        return min(self.n_real, self.n_fake) >= MIN_FID_IMAGES

    def warnings(self) -> list[str]:
        """One-line warnings about how far the numbers can be trusted (empty when nothing is amiss)."""
        if self.fid_reliable:
            return []
        n = min(self.n_real, self.n_fake)
        return [f"FID on {n} image{'s' if n != 1 else ''} is dominated by its estimator's bias; use at least "
                f"{MIN_FID_IMAGES} (the paper's protocol uses the whole test split)"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kid_reported_mean"] = self.kid_mean * self.kid_scale
        d["kid_reported_std"] = self.kid_std * self.kid_scale
        d["fid_reliable"] = self.fid_reliable
        d["warnings"] = self.warnings()
        return d

    def summary(self) -> str:
        scale = "KID x 100" if self.kid_scale == 100 else "KID"
        return (f"FID {self.fid:.4f}   {scale} {self.kid_mean * self.kid_scale:.6g} +- "
                f"{self.kid_std * self.kid_scale:.3g}   ({self.n_real} real, {self.n_fake} fake images; protocol "
                f"{self.protocol}; KID {self.kid_subsets} subsets of {self.kid_subset_size}; {self.weights})")


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (float64 mean and covariance)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    if len(f1) < 2 or len(f2) < 2:
        raise NiceganError("FID needs at least 2 images in each set")
    stats = [{"mu": f.mean(axis=0), "sigma": np.cov(f, rowvar=False)} for f in (np.asarray(f1, np.float64),
                                                                               np.asarray(f2, np.float64))]
    fid = float(fid_statistics_to_metric(stats[0], stats[1], verbose=False)["frechet_inception_distance"])
    return max(0.0, fid)  # a distance: identical sets give about -1e-4 from rounding in the matrix square root


def kid_from_features(f1: np.ndarray, f2: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float, int]:
    """``(mean, std, subset size used)`` of the unbiased polynomial-kernel MMD^2 over ``subsets`` random subsets.

    The subset size is capped to the smaller set (as NICE-GAN's script and clean-fid do; torch-fidelity would
    refuse), so with sets smaller than ``subset_size`` every subset is a whole set and KID is deterministic.
    """
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise NiceganError("KID needs at least 2 images in each set")
    res = kid_features_to_metric(torch.from_numpy(np.asarray(f1, np.float64)),
                                 torch.from_numpy(np.asarray(f2, np.float64)),
                                 kid_subsets=subsets, kid_subset_size=m, rng_seed=seed, verbose=False,
                                 kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
                                 kid_kernel_poly_coef0=1)
    return float(res[KEY_METRIC_KID_MEAN]), float(res[KEY_METRIC_KID_STD]), m


def compare_features(real: np.ndarray, fake: np.ndarray, protocol: Protocol, weights: InceptionWeights,
                     kid_subsets: int | None = None, kid_subset_size: int | None = None) -> MetricResult:
    """FID and KID of two feature sets under ``protocol``'s KID settings (overridable)."""
    subsets = kid_subsets or protocol.kid_subsets
    mean, std, m = kid_from_features(real, fake, subsets, kid_subset_size or protocol.kid_subset_size,
                                     protocol.kid_seed)
    return MetricResult(fid_from_features(real, fake), mean, std, protocol.kid_scale, subsets, m, len(real),
                        len(fake), protocol.name, weights.identity)


def make_extractor(protocol: str = "paper", inception_weights: str | Path | None = None,
                   device: str | torch.device = "cpu", batch_size: int = 32,
                   progress: bool | None = None) -> FeatureExtractor:
    """The one way to the FID feature extractor: the protocol by name and the Inception weights (the shipped ones
    when None; converted once and announced the first time), on ``device``. Everything that scores images calls this.
    """
    return FeatureExtractor(get_protocol(protocol), resolve_weights(inception_weights, progress), device, batch_size)


def eval_folders(real_dir: str | Path, fake_dir: str | Path, protocol: str = "paper",
                 inception_weights: str | Path | None = None, device: str = "cpu", batch_size: int = 32,
                 kid_subsets: int | None = None, kid_subset_size: int | None = None, cache_real: bool = True,
                 progress: bool | None = None) -> MetricResult:
    """FID/KID between every image below ``real_dir`` and every image below ``fake_dir`` (any sizes and formats)."""
    ext = make_extractor(protocol, inception_weights, device, batch_size, progress)
    proto, weights = ext.protocol, ext.weights
    real, skipped_real = ext.folder_features(Path(real_dir), use_cache=cache_real, progress=progress)
    fake, skipped_fake = ext.folder_features(Path(fake_dir), use_cache=False, progress=progress)
    res = compare_features(real, fake, proto, weights, kid_subsets, kid_subset_size)
    res.skipped_real, res.skipped_fake = skipped_real, skipped_fake
    return res
