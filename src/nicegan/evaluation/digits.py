"""Label-preservation accuracy on ``builtin:digits``: does a translation keep the digit?

A small CNN is trained on one domain's training split (labels are used here only, never by the translation models)
and scores translations *into* that domain against the source images' labels. Next to it stands the accuracy of
the same classifier on the untranslated source images: the domain-gap baseline a translation should beat.

* ``a2b``: classifier trained on B (optdigits) scores A->B translations of A's test split with A's labels;
* ``b2a``: classifier trained on A (MNIST) scores B->A translations of B's test split with B's labels.

Classifier training is seeded inside ``torch.random.fork_rng`` so it never disturbs a training run's RNG, and the
result is cached per process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.data.digits import DIGITS, DigitsPair, load_digits_pair
from nicegan.data.sources import ArraySource
from nicegan.data.transforms import test_transform
from nicegan.evaluation.registry import EvalContext, register_metric
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
def accuracy(clf: DigitClassifier, images: Tensor, labels: np.ndarray, batch: int = 500) -> float:
    """Fraction of ``images`` classified as ``labels``."""
    clf = clf.to("cpu").eval()
    pred = torch.cat([clf(images[k:k + batch].float().cpu()).argmax(1) for k in range(0, len(images), batch)])
    return float((pred.numpy() == np.asarray(labels)).mean())


@lru_cache(maxsize=2)
def digit_classifier(domain: str) -> DigitClassifier:
    """The classifier of ``domain`` ("A" or "B"), trained on its training split (cached per process)."""
    pair = load_digits_pair()
    src = pair.split("train", domain)
    return train_classifier(source_tensor(src), src.labels)


def translate_all(model: TranslationModel, images: Tensor, direction: str, batch: int = 200) -> Tensor:
    """Translate a stack of images in batches on the model's device; returns CPU tensors in [-1, 1]."""
    return torch.cat([y.float().cpu() for y, _ in translate_batches(model, images.split(batch), direction)])


def _on_digits(ctx: EvalContext) -> bool:
    return ctx.data_root == DIGITS


@register_metric("label_preservation", applies=_on_digits)
def label_preservation_metric(ctx: EvalContext) -> dict[str, float]:
    """Label preservation of the translations on the digits test splits, with the untranslated baselines (only
    the evaluated directions, and at most ``limit`` images each, spread over the split)."""
    return label_preservation(ctx.model, directions=ctx.directions, limit=ctx.limit)


@register_metric("adaptation_accuracy", applies=lambda ctx: _on_digits(ctx) and isinstance(ctx.model, ClassifierModel))
def adaptation_accuracy_metric(ctx: EvalContext) -> dict[str, float]:
    """Domain adaptation: accuracy of the model's own classifier on both digits test splits."""
    return adaptation_accuracy(ctx.model)


def label_preservation(model: TranslationModel, pair: DigitsPair | None = None,
                       directions: tuple[str, ...] = ("a2b", "b2a"), limit: int | None = None) -> dict[str, float]:
    """Accuracies of translations and untranslated baselines on the digits test splits (see module docstring);
    ``limit`` scores at most that many test images per direction, evenly spread (the splits are class-sorted)."""
    pair = pair or load_digits_pair()
    size = model.cfg.img_size
    clf = {d: digit_classifier(d) for d in "AB"}
    out: dict[str, float] = {}
    for direction, src_dom, dst_dom in (("a2b", "A", "B"), ("b2a", "B", "A")):
        if direction not in directions:
            continue
        src = pair.split("test", src_dom)
        x, labels = source_tensor(src, size), src.labels
        if limit is not None and limit < len(x):
            pick = torch.linspace(0, len(x) - 1, limit).round().long()
            x, labels = x[pick], labels[pick.numpy()]
        fake = translate_all(model, x, direction)
        if fake.shape[-1] != 32:
            fake = F.interpolate(fake, size=(32, 32), mode="bilinear", align_corners=False)
            x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
        out[f"digits/{direction}_accuracy"] = accuracy(clf[dst_dom], fake, labels)
        out[f"digits/{direction}_baseline"] = accuracy(clf[dst_dom], x, labels)
    for d in "AB":
        test = pair.split("test", d)
        out[f"digits/classifier_{d.lower()}_test_accuracy"] = accuracy(clf[d], source_tensor(test), test.labels)
    return out


@torch.no_grad()
def adaptation_accuracy(model: TranslationModel, pair: DigitsPair | None = None) -> dict[str, float]:
    """Domain adaptation: accuracy of the model's own classifier (trained on labelled A only) on both test splits.

    Only for models with the classifier capability (CoGAN's head on the shared discriminator layers, UNIT's on the
    shared latent code, in their domain-adaptation modes); empty otherwise.
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
