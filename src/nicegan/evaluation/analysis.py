"""The paper's analyses as functions: encoder CAM heatmaps, latent-space t-SNE and MMD, latent interpolation.

* Heatmaps: the encoder's CAM heatmap (channel sum of the latent code) over each real image, as in the paper's
  attention figures.
* Latents: the two domains' latent codes (each from its own encoder) embedded with t-SNE (after PCA to 50 dimensions)
  and the squared MMD between the two code distributions: Gaussian kernel with the median-distance bandwidth, biased
  (V-statistic) estimator, so it is >= 0 and exactly 0 for identical sets. As a scale, the same MMD (same
  bandwidth) between two halves of each domain is reported too (alternate images, so on class-sorted data both
  halves hold every class); a shared latent space shows a cross-domain MMD close to it. With labels (the builtin
  digits) the t-SNE plot colours each point by its class and marks the domain by the marker's shape. The metric
  ``latent_mmd`` (:func:`latent_mmd_metric`) reports the same numbers in ``nicegan evaluate``, periodic evaluation
  and sweeps, on at most :data:`LATENT_IMAGES` test images per domain so that it costs seconds.
* Interpolation: decode ``(1 - t) z1 + t z2`` for ``t`` in [0, 1] between two images' codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.core.visual import grid, heatmap_images, save_png
from nicegan.data import open_domain
from nicegan.data.sources import ImageSource
from nicegan.data.transforms import test_transform
from nicegan.evaluation.registry import EvalContext, Report, register_metric
from nicegan.inference import translate_batches
from nicegan.models.base import LatentModel, TranslationModel


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


def latent_mmd(codes_a: np.ndarray, codes_b: np.ndarray) -> dict[str, float]:
    """MMD^2 between the domains' codes, and within each domain between its alternate halves (same bandwidth: the
    median distance of the pooled codes)."""
    ab, bw = mmd2(codes_a, codes_b)
    within = {d: mmd2(c[0::2], c[1::2], bandwidth=bw)[0] for d, c in (("a", codes_a), ("b", codes_b))}
    return {"mmd2_ab": ab, "mmd2_within_a": within["a"], "mmd2_within_b": within["b"], "bandwidth": bw}


@dataclass
class LatentReport:
    """t-SNE embedding (one 2-D point per image, A first) and MMD numbers of a latent-space analysis."""

    embedding: np.ndarray
    n_a: int
    n_b: int
    mmd2_ab: float
    mmd2_within_a: float
    bandwidth: float
    mmd2_within_b: float = float("nan")
    #: class of each point (A first), when the data has labels: the plot colours by it
    labels: np.ndarray | None = None


def latent_analysis(codes_a: np.ndarray, codes_b: np.ndarray, seed: int = 0,
                    labels: np.ndarray | None = None) -> LatentReport:
    """t-SNE of both domains' codes and the cross-domain vs within-domain MMD (``labels``: A's then B's)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    if len(codes_a) < 4 or len(codes_b) < 4:
        raise NiceganError("the latent analysis needs at least 4 images per domain")
    both = np.concatenate([codes_a, codes_b])
    k = min(50, both.shape[0] - 1, both.shape[1])
    perplexity = float(min(30, (len(both) - 1) / 3))
    # one thread: the embedding no longer depends on the machine's core count, and a few hundred points take a
    # second or two where OpenMP threads spinning on a busy machine took many times that
    with threadpool_limits(limits=1):
        reduced = PCA(n_components=k, random_state=seed).fit_transform(both)
        emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    m = latent_mmd(codes_a, codes_b)
    return LatentReport(emb, len(codes_a), len(codes_b), m["mmd2_ab"], m["mmd2_within_a"], m["bandwidth"],
                        m["mmd2_within_b"], None if labels is None else np.asarray(labels))


def save_tsne_plot(report: LatentReport, path: Path, title: str = "") -> Path:
    """Scatter plot of the t-SNE embedding: one colour per domain, or with labels one colour per class and one
    marker per domain (circles A, triangles B)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    a, b = report.embedding[: report.n_a], report.embedding[report.n_a:]
    if report.labels is None:
        ax.scatter(a[:, 0], a[:, 1], s=12, c="tab:blue", label=f"domain A ({report.n_a})")
        ax.scatter(b[:, 0], b[:, 1], s=12, c="tab:orange", label=f"domain B ({report.n_b})")
        ax.legend()
    else:
        _class_scatter(ax, report)
    ax.set_title(title or f"latent codes (t-SNE)  MMD^2 A-B {report.mmd2_ab:.4f}, within A {report.mmd2_within_a:.4f}",
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _class_scatter(ax: Any, report: LatentReport) -> None:
    import matplotlib
    from matplotlib.lines import Line2D

    cmap = matplotlib.colormaps["tab10"]
    labels = np.asarray(report.labels)
    for dom, part, marker in (("A", slice(0, report.n_a), "o"), ("B", slice(report.n_a, None), "^")):
        pts, lab = report.embedding[part], labels[part]
        ax.scatter(pts[:, 0], pts[:, 1], s=14, c=cmap(lab % 10), marker=marker, alpha=0.8,
                   edgecolors="none" if dom == "A" else "k", linewidths=0.3)
    handles = [Line2D([], [], ls="", marker="s", color=cmap(c), label=str(c)) for c in range(10)]
    handles += [Line2D([], [], ls="", marker="o", color="grey", label=f"A ({report.n_a})"),
                Line2D([], [], ls="", marker="^", color="grey", markeredgecolor="k", label=f"B ({report.n_b})")]
    ax.legend(handles=handles, fontsize=7, ncol=2, title="digit / domain", title_fontsize=7, loc="best")


def spread(n_items: int, n: int) -> list[int]:
    """``n`` indices evenly spread over ``range(n_items)`` (all of them if ``n >= n_items``): class-sorted splits
    give every class its share."""
    k = min(n, n_items)
    return [round(i * (n_items - 1) / max(1, k - 1)) for i in range(k)]


def domain_codes(model: TranslationModel, sources: dict[str, ImageSource], n: int, size: int,
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """Latent codes of at most ``n`` images per domain (evenly spread) and their labels if the sources have any."""
    codes, labels = {}, {}
    for dom, src in sources.items():
        pick = spread(len(src), n)
        codes[dom] = encode_images(model, [src.load(i) for i in pick], dom.lower(), size)
        labels[dom] = None if src.labels is None else np.asarray(src.labels)[pick]
    return codes, labels


#: images per domain the ``latent_mmd`` metric encodes, as ``nicegan latents`` does by default: a fraction of a
#: second for encoders that are networks; CoGAN's codes are inversions (an optimisation per image), which costs
#: about what translating 200 images costs it
LATENT_IMAGES = 100


def _has_both_latents(ctx: EvalContext) -> bool:
    return isinstance(ctx.model, LatentModel) and set(getattr(ctx.model, "directions", ())) == {"a2b", "b2a"}


def _latent_mmd_report(outputs: dict[str, float]) -> Report:
    """Models with a latent code per domain: how close the two domains' codes are."""
    if not outputs:
        return Report({}, [])
    return Report({"latent_mmd": dict(outputs)}, [f"{k}: {v:.5f}" for k, v in outputs.items()])


@register_metric("latent_mmd", applies=_has_both_latents, report=_latent_mmd_report, rank=30)
def latent_mmd_metric(ctx: EvalContext) -> dict[str, float]:
    """Latent MMD^2 between the two domains' codes and within each domain (alternate halves), on at most
    :data:`LATENT_IMAGES` (or ``limit``) images per domain of the evaluated split; shared codes bring the first
    close to the others. Empty when a domain has fewer than 2 images."""
    n = min(LATENT_IMAGES, ctx.limit or LATENT_IMAGES)
    sources = {d: open_domain(ctx.data_root, ctx.split, d, cache_dir=ctx.cache_dir) for d in "AB"}
    model = ctx.model
    was_training = model.training
    try:
        codes, _ = domain_codes(model, sources, n, model.cfg.img_size)
    finally:
        model.train(was_training)
    if min(len(c) for c in codes.values()) < 2:  # no halves to compare: no numbers rather than a failed evaluation
        return {}
    m = latent_mmd(codes["A"], codes["B"])
    return {f"latent/{k}": m[k] for k in ("mmd2_ab", "mmd2_within_a", "mmd2_within_b")}


@torch.no_grad()
def interpolation_grid(model: TranslationModel, img1: Image.Image, img2: Image.Image, source: str, size: int,
                       steps: int = 8) -> np.ndarray:
    """Two rows: decoding into the other domain, and back into the source domain, along z1 -> z2."""
    if steps < 2:
        raise NiceganError(f"steps must be at least 2, got {steps}", option="steps")
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


@torch.no_grad()
def style_interpolation_grid(model: TranslationModel, image: Image.Image, source: str, first: Tensor, second: Tensor,
                             size: int, steps: int = 8) -> np.ndarray:
    """One row: ``image`` (of domain ``source``), then its translations into the other domain with the style codes
    ``(1 - t) first + t second`` for ``steps`` values of ``t`` in [0, 1] (multimodal models)."""
    from nicegan.inference.styles import interpolate_codes, require_style_model

    require_style_model(model, "style interpolation")
    codes = interpolate_codes(first, second, steps)
    x = _stack(model, [image], size)
    direction = "a2b" if source == "a" else "b2a"
    ((fake, _),) = translate_batches(model, [x.expand(steps, -1, -1, -1)], direction,
                                     style=lambda start, n: codes[start:start + n])
    return grid([torch.cat([x, fake.to(x.device)])])


__all__ = ["heatmap_grid", "style_interpolation_grid",
           "encode_images", "mmd2", "latent_mmd", "latent_analysis", "save_tsne_plot",
           "interpolation_grid", "domain_codes", "save_png", "LatentReport"]
