"""The paper's analyses as functions: encoder CAM heatmaps, latent-space t-SNE and MMD, latent interpolation.

* Heatmaps: the encoder's CAM heatmap (channel sum of the latent code) over each real image, as in the paper's
  attention figures.
* Latents: the two domains' latent codes (each from its own encoder) embedded with t-SNE (after PCA to 50 dimensions)
  and the squared MMD between the two code distributions: Gaussian kernel with the median-distance bandwidth, biased
  (V-statistic) estimator, so it is >= 0 and exactly 0 for identical sets. As a scale, the same MMD between two
  halves of domain A is reported too; a shared latent space shows a cross-domain MMD close to it.
* Interpolation: decode ``(1 - t) z1 + t z2`` for ``t`` in [0, 1] between two images' codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nicegan.data.transforms import test_transform
from nicegan.errors import NiceganError
from nicegan.inference import translate_batches
from nicegan.models.base import LatentModel, TranslationModel
from nicegan.visual import grid, heatmap_images, save_png


def _device(model: TranslationModel) -> torch.device:
    return next(model.parameters()).device


def _stack(model: TranslationModel, images: list[Image.Image], size: int) -> Tensor:
    return torch.stack([test_transform(img, size) for img in images]).to(_device(model))


def heatmap_grid(model: TranslationModel, images: list[Image.Image], direction: str, size: int,
                 per_row: int = 8) -> np.ndarray:
    """Rows of (real images, heatmap overlaid on them, translation); ``per_row`` images per block."""
    x = _stack(model, images, size)
    ((fake, h),) = translate_batches(model, [x], direction, heatmap=True)
    overlay = heatmap_images(h, size, under=x)
    rows = []
    for k in range(0, len(x), per_row):
        rows += [x[k:k + per_row], overlay[k:k + per_row], fake[k:k + per_row]]
    if len(rows) > 3 and rows[-1].shape[0] < per_row:  # pad the last block so every row has the same width
        pad = per_row - rows[-1].shape[0]
        rows[-3:] = [torch.cat([r, torch.ones(pad, *r.shape[1:], device=r.device)]) for r in rows[-3:]]
    return grid(rows)


def _require_latent(model: TranslationModel) -> None:
    if not isinstance(model, LatentModel):
        raise NiceganError(f"the {model.name} model has no latent codes (no per-domain encoder and decoder)")


@torch.no_grad()
def encode_images(model: TranslationModel, images: list[Image.Image], domain: str, size: int,
                  batch_size: int = 32) -> np.ndarray:
    """Flattened latent codes (N x D, float64) of images of ``domain`` from that domain's encoder."""
    _require_latent(model)
    model.eval()
    out = []
    for k in range(0, len(images), batch_size):
        z = model.encode(_stack(model, images[k:k + batch_size], size), domain)
        out.append(z.flatten(1).double().cpu().numpy())
    return np.concatenate(out)


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> tuple[float, float]:
    """Biased squared MMD with a Gaussian kernel; bandwidth = median pairwise distance of the pooled set if None.

    Returns ``(mmd2, bandwidth)``.
    """
    xt, yt = torch.from_numpy(np.asarray(x, np.float64)), torch.from_numpy(np.asarray(y, np.float64))
    z = torch.cat([xt, yt])
    d2 = torch.cdist(z, z).square()
    if bandwidth is None:
        off = d2[~torch.eye(len(z), dtype=torch.bool)]
        bandwidth = float(off.median().sqrt()) if len(off) else 1.0
        bandwidth = bandwidth if bandwidth > 0 else 1.0
    k = torch.exp(-d2 / (2 * bandwidth**2))
    n = len(xt)
    kxx, kyy, kxy = k[:n, :n].mean(), k[n:, n:].mean(), k[:n, n:].mean()
    return float(kxx + kyy - 2 * kxy), bandwidth


@dataclass
class LatentReport:
    """t-SNE embedding (one 2-D point per image, A first) and MMD numbers of a latent-space analysis."""

    embedding: np.ndarray
    n_a: int
    n_b: int
    mmd2_ab: float
    mmd2_within_a: float
    bandwidth: float


def latent_analysis(codes_a: np.ndarray, codes_b: np.ndarray, seed: int = 0) -> LatentReport:
    """t-SNE of both domains' codes and the cross-domain vs within-domain MMD."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if len(codes_a) < 4 or len(codes_b) < 4:
        raise NiceganError("the latent analysis needs at least 4 images per domain")
    both = np.concatenate([codes_a, codes_b])
    k = min(50, both.shape[0] - 1, both.shape[1])
    reduced = PCA(n_components=k, random_state=seed).fit_transform(both)
    perplexity = float(min(30, (len(both) - 1) / 3))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    ab, bw = mmd2(codes_a, codes_b)
    half = len(codes_a) // 2
    within, _ = mmd2(codes_a[:half], codes_a[half:], bandwidth=bw)
    return LatentReport(emb, len(codes_a), len(codes_b), ab, within, bw)


def save_tsne_plot(report: LatentReport, path: Path, title: str = "") -> Path:
    """Scatter plot of the t-SNE embedding, one colour per domain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    a, b = report.embedding[: report.n_a], report.embedding[report.n_a:]
    ax.scatter(a[:, 0], a[:, 1], s=12, c="tab:blue", label=f"domain A ({report.n_a})")
    ax.scatter(b[:, 0], b[:, 1], s=12, c="tab:orange", label=f"domain B ({report.n_b})")
    ax.set_title(title or f"latent codes (t-SNE)  MMD^2 A-B {report.mmd2_ab:.4f}, within A {report.mmd2_within_a:.4f}",
                 fontsize=9)
    ax.legend()
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@torch.no_grad()
def interpolation_grid(model: TranslationModel, img1: Image.Image, img2: Image.Image, source: str, size: int,
                       steps: int = 8) -> np.ndarray:
    """Two rows: decoding into the other domain, and back into the source domain, along z1 -> z2."""
    if steps < 2:
        raise NiceganError("--steps must be at least 2")
    _require_latent(model)
    model.eval()
    x = _stack(model, [img1, img2], size)
    z = model.encode(x, source)
    target = "b" if source == "a" else "a"
    t = torch.linspace(0, 1, steps, device=z.device).view(-1, *[1] * (z.dim() - 1))
    path = (1 - t) * z[0:1] + t * z[1:2]
    other = model.decode(path, target).clamp(-1, 1)
    same = model.decode(path, source).clamp(-1, 1)
    ends = lambda row: torch.cat([x[0:1], row, x[1:2]])
    return grid([ends(other), ends(same)])


__all__ = ["heatmap_grid", "encode_images", "mmd2", "latent_analysis", "save_tsne_plot", "interpolation_grid",
           "save_png", "LatentReport"]
