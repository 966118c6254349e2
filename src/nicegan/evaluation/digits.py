"""Label-preservation accuracy on the builtin digits pairs: does a translation keep the digit?

A small CNN per domain, trained once on that domain's ``builtin:digits`` training split (labels are used here only,
never by the translation models), scores translations *into* its domain against the source images' labels. Next to
it stands the accuracy of the same classifier on the untranslated source images: the domain-gap baseline a
translation should beat.

* ``a2b``: classifier trained on B (optdigits) scores A->B translations of A's test split with A's labels;
* ``b2a``: classifier trained on A (MNIST) scores B->A translations of B's test split with B's labels.

The two classifiers ship with the package (``classifiers/digits_{a,b}.safetensors``, written by
``scripts/train_digit_classifiers.py`` with :func:`train_classifier`, seed 0): training them at first use gave
scores that moved with the machine's CPU and thread settings, so the same translations scored differently on two
machines. Their SHA-256 is checked at load and a missing or damaged file is a one-line error, never a wrong score.
:data:`CLASSIFIER_TEST_ACCURACY` records their accuracy on each domain's test split: the ceiling a translation can
reach. On ``builtin:digits-val`` the "test" split is the held-out part of the training data (tuning never sees the
real test split); the classifiers are the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import NiceganError
from nicegan.data.digits import DigitsPair, is_digits, load_builtin, load_digits_pair
from nicegan.data.sources import ArraySource, spread_indices
from nicegan.data.transforms import test_transform
from nicegan.evaluation.registry import EvalContext, Report, register_metric
from nicegan.inference import translate_batches
from nicegan.models.base import ClassifierModel, TranslationModel


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class DigitClassifier(nn.Module):
    """Three conv-BN-ReLU blocks and a linear layer on 32 x 32 RGB in [-1, 1] (about 97 % on either test split)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(*_block(3, w), nn.MaxPool2d(2), *_block(w, 2 * w), nn.MaxPool2d(2),
                                      *_block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(4 * w, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


def source_tensor(src: ArraySource, size: int = 32) -> Tensor:
    """All images of a source as one N x 3 x size x size tensor in [-1, 1]."""
    return torch.stack([test_transform(src.load(i), size) for i in range(len(src))])


def _shift(x: Tensor, gen: torch.Generator, max_shift: int = 2) -> Tensor:
    """Random translation by up to ``max_shift`` pixels (pad with the background value -1, crop back)."""
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    rows = torch.arange(h) + torch.randint(0, 2 * max_shift + 1, (n, 1), generator=gen)
    cols = torch.arange(w) + torch.randint(0, 2 * max_shift + 1, (n, 1), generator=gen)
    return padded[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def train_classifier(images: Tensor, labels: np.ndarray, seed: int = 0, epochs: int = 10, batch: int = 128,
                     lr: float = 1e-2) -> DigitClassifier:
    """Train a :class:`DigitClassifier` on CPU (a few seconds); seeded, isolated from the global RNG."""
    y = torch.as_tensor(labels, dtype=torch.long)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        clf = DigitClassifier()
        opt = torch.optim.Adam(clf.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * -(-len(y) // batch))
        clf.train()
        for _ in range(epochs):
            order = torch.randperm(len(y), generator=gen)
            for k in range(0, len(y), batch):
                idx = order[k:k + batch]
                loss = F.cross_entropy(clf(_shift(images[idx], gen)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    return clf.eval()


@torch.no_grad()
def predict(clf: DigitClassifier, images: Tensor, batch: int = 500) -> np.ndarray:
    """Predicted class of each image (int64 array)."""
    clf = clf.to("cpu").eval()
    return torch.cat([clf(images[k:k + batch].float().cpu()).argmax(1) for k in range(0, len(images), batch)]).numpy()


def accuracy(clf: DigitClassifier, images: Tensor, labels: np.ndarray, batch: int = 500) -> float:
    """Fraction of ``images`` classified as ``labels``."""
    return float((predict(clf, images, batch) == np.asarray(labels)).mean())


CLASSIFIER_DIR = Path(__file__).parent / "classifiers"
#: SHA-256 of the shipped classifier weights (scripts/train_digit_classifiers.py prints these lines)
CLASSIFIER_SHA256 = {
    "A": "b16bfccbae2cbb4d3e9e87326d78a6152b0a86634deb81ec0dd418af1b65b4f2",
    "B": "0ffde9339b88720e58ab8ed6b1d3e45285d92d8e86231c18b2b92c756b5a8229",
}
#: accuracy of the shipped classifiers on builtin:digits' test split of their own domain (A: 1,000, B: 359 images)
CLASSIFIER_TEST_ACCURACY = {"A": 0.966, "B": 0.9693593314763231}  # 966 / 1000, 348 / 359


def classifier_file(domain: str) -> Path:
    """Where the shipped classifier of ``domain`` ("A" or "B") lies."""
    return CLASSIFIER_DIR / f"digits_{domain.lower()}.safetensors"


def load_classifier(path: Path, sha256: str) -> DigitClassifier:
    """A :class:`DigitClassifier` from a safetensors file whose SHA-256 must be ``sha256`` (one-line error if not)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_safetensors

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise NiceganError(f"the digit classifier {path} cannot be read ({e.strerror or e}); reinstall nicegan") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:  # the bytes checked are the bytes parsed: nothing can change in between
        raise NiceganError(f"the digit classifier {path} is damaged (SHA-256 {digest[:12]}..., expected "
                           f"{sha256[:12]}...); reinstall nicegan")
    clf = DigitClassifier()
    try:
        clf.load_state_dict(load_safetensors(data))
    except (SafetensorError, RuntimeError) as e:
        raise NiceganError(f"the digit classifier {path} does not fit this version's classifier; reinstall "
                           f"nicegan") from e
    return clf.eval()


@lru_cache(maxsize=2)
def digit_classifier(domain: str) -> DigitClassifier:
    """The shipped classifier of ``domain`` ("A" or "B"), checked against its SHA-256 (cached per process)."""
    return load_classifier(classifier_file(domain), CLASSIFIER_SHA256[domain])


def translate_all(model: TranslationModel, images: Tensor, direction: str, batch: int = 200,
                  style_seed: int = 0) -> Tensor:
    """Translate a stack of images in batches on the model's device; returns CPU tensors in [-1, 1]. Multimodal
    models translate image i with style code i of ``style_seed`` (one seeded random style per image)."""
    from nicegan.inference.styles import seeded_style_fn
    from nicegan.models.base import StyleModel

    style = seeded_style_fn(model, style_seed) if isinstance(model, StyleModel) else None
    batches = translate_batches(model, images.split(batch), direction, style=style)
    return torch.cat([y.float().cpu() for y, _ in batches])


def _on_digits(ctx: EvalContext) -> bool:
    return is_digits(ctx.data_root)


def _accuracy_report(outputs: dict[str, float]) -> Report:
    """Accuracies as percentages, recorded together under ``label_preservation`` (both digits metrics)."""
    return Report({"label_preservation": dict(outputs)}, [f"{k}: {100 * v:.1f} %" for k, v in outputs.items()])


@register_metric("label_preservation", applies=_on_digits, report=_accuracy_report, rank=10)
def label_preservation_metric(ctx: EvalContext) -> dict[str, float]:
    """Label preservation of the translations on the digits test splits, with the untranslated baselines (only
    the evaluated directions, and at most ``limit`` images each, spread over the split)."""
    return label_preservation(ctx.model, pair=load_builtin(ctx.data_root), directions=ctx.directions, limit=ctx.limit)


@register_metric("adaptation_accuracy", applies=lambda ctx: _on_digits(ctx) and isinstance(ctx.model, ClassifierModel),
                 report=_accuracy_report, rank=11)
def adaptation_accuracy_metric(ctx: EvalContext) -> dict[str, float]:
    """Domain adaptation: accuracy of the model's own classifier on both digits test splits."""
    return adaptation_accuracy(ctx.model, pair=load_builtin(ctx.data_root))


DIRECTIONS = (("a2b", "A", "B"), ("b2a", "B", "A"))


@dataclass
class DirectionScores:
    """One direction's classifier verdicts: the source labels and the predicted class of each translation and of
    each untranslated source image (by the target domain's classifier)."""

    direction: str
    labels: np.ndarray
    translated: np.ndarray
    untranslated: np.ndarray

    @property
    def accuracy(self) -> float:
        return float((self.translated == self.labels).mean())

    @property
    def baseline(self) -> float:
        return float((self.untranslated == self.labels).mean())

    def confusion(self, untranslated: bool = False) -> np.ndarray:
        """10 x 10 counts: row = true digit, column = the classifier's verdict."""
        pred = self.untranslated if untranslated else self.translated
        return np.bincount(self.labels * 10 + pred, minlength=100).reshape(10, 10)

    def per_class(self, untranslated: bool = False) -> np.ndarray:
        """Accuracy for each true digit 0-9 (NaN for a digit absent from the scored images)."""
        cm = self.confusion(untranslated)
        total = cm.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, np.diag(cm) / np.maximum(total, 1), np.nan)

    def to_dict(self) -> dict[str, list]:
        """Per-class accuracies and confusion matrices as JSON-ready lists."""
        nan_none = lambda a: [None if np.isnan(v) else round(float(v), 4) for v in a]
        return {"per_class_accuracy": nan_none(self.per_class()), "per_class_baseline": nan_none(self.per_class(True)),
                "confusion": self.confusion().tolist(), "baseline_confusion": self.confusion(True).tolist(),
                "count": np.bincount(self.labels, minlength=10).tolist()}


def score_directions(model: TranslationModel, pair: DigitsPair | None = None,
                     directions: tuple[str, ...] = ("a2b", "b2a"), limit: int | None = None,
                     ) -> dict[str, DirectionScores]:
    """Translate each direction's test split (at most ``limit`` images, evenly spread: A's split is class-sorted)
    and let the target domain's classifier judge the translations and the untranslated sources."""
    pair = pair or load_digits_pair()
    size = model.cfg.img_size
    out = {}
    for direction, src_dom, dst_dom in DIRECTIONS:
        if direction not in directions:
            continue
        src = pair.split("test", src_dom)
        x, labels = source_tensor(src, size), np.asarray(src.labels)
        if limit is not None and limit < len(x):
            pick = spread_indices(len(x), limit)
            x, labels = x[pick], labels[pick]
        fake = translate_all(model, x, direction)
        if fake.shape[-1] != 32:
            fake = F.interpolate(fake, size=(32, 32), mode="bilinear", align_corners=False)
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        clf = digit_classifier(dst_dom)
        out[direction] = DirectionScores(direction, labels, predict(clf, fake), predict(clf, x))
    return out


def accuracies(scores: dict[str, DirectionScores]) -> dict[str, float]:
    """The ``label_preservation`` metric's outputs from :func:`score_directions`' verdicts."""
    out: dict[str, float] = {}
    for direction, sc in scores.items():
        out[f"digits/{direction}_accuracy"] = sc.accuracy
        out[f"digits/{direction}_baseline"] = sc.baseline
    for d in "AB":
        out[f"digits/classifier_{d.lower()}_test_accuracy"] = CLASSIFIER_TEST_ACCURACY[d]
    return out


def label_preservation(model: TranslationModel, pair: DigitsPair | None = None,
                       directions: tuple[str, ...] = ("a2b", "b2a"), limit: int | None = None) -> dict[str, float]:
    """Accuracies of translations and untranslated baselines on the digits test splits (see module docstring),
    with the classifiers' own test accuracies; ``limit`` scores at most that many test images per direction.
    Per-class accuracies and confusion matrices: :func:`score_directions`."""
    return accuracies(score_directions(model, pair, directions, limit))


@torch.no_grad()
def adaptation_accuracy(model: TranslationModel, pair: DigitsPair | None = None) -> dict[str, float]:
    """Domain adaptation: accuracy of the model's own classifier (trained on labelled A only) on both test splits.

    Only for models with the classifier capability (the heads on the shared discriminator layers of CoGAN's and
    UNIT's domain-adaptation modes, read through each domain's own first layer); empty otherwise.
    """
    if not isinstance(model, ClassifierModel):
        return {}
    pair = pair or load_digits_pair()
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = {}
    for dom in "AB":
        src = pair.split("test", dom)
        x = source_tensor(src, model.cfg.img_size)
        pred = torch.cat([model.classify(x[k:k + 500].to(device), dom.lower()).argmax(1).cpu()
                          for k in range(0, len(x), 500)])
        out[f"digits/adaptation_accuracy_{dom.lower()}"] = float((pred.numpy() == src.labels).mean())
    model.train(was_training)
    return out
