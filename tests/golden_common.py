"""Helpers of the golden tests against official baseline code (tests/golden/<method>/, made by scripts/golden_*.py).

A golden folder holds ``NAME.pt`` files (plain tensors and a ``config`` JSON string), ``spread/NAME.pt`` (how far the
official code differs from itself across thread counts and instruction sets, per loss and per final tensor) and
``import/`` (files written by the official trainers' own save, for the importer's tests). See each folder's README.

Under CI (``CI=true``) a missing golden folder is a failure, not a skip: CI must not pass without the oracle.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

GOLDEN_ROOT = Path(__file__).resolve().parent / "golden"
#: forward outputs computed in float64 by both sides: only summation order differs
EVAL_RTOL_F64 = 1e-10
#: trained tensors and losses: max(TRAIN_RTOL, SPREAD_FACTOR x the official code's own spread)
TRAIN_RTOL, SPREAD_FACTOR = 1e-4, 3.0


def golden_files(method: str) -> list[Path]:
    """The golden files of ``tests/golden/<method>`` (none if the folder is missing)."""
    folder = GOLDEN_ROOT / method
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def check_present(method: str) -> None:
    """Fail under CI, skip elsewhere, if ``tests/golden/<method>`` has no golden files."""
    if golden_files(method):
        return
    missing = (f"{GOLDEN_ROOT / method} has no golden files (make them with scripts/golden_{method.split('_')[0]}.py "
               f"--official PATH)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{missing}: CI must run the parity tests against the official networks")
    pytest.skip(missing)


def load(path: Path) -> tuple[dict[str, Tensor], dict]:
    """``(tensors, config)`` of a golden file."""
    g = torch.load(path, map_location="cpu", weights_only=True)
    return g, json.loads(g["config"])


def state(g: dict[str, Tensor], prefix: str, rename: Callable[[str], str | None] = lambda k: k) -> dict[str, Tensor]:
    """The tensors under ``prefix`` with the prefix stripped, keys passed through ``rename`` (None drops a key)."""
    out = {}
    for k, v in g.items():
        if k.startswith(prefix):
            new = rename(k[len(prefix):])
            if new is not None:
                out[new] = v
    if not out:
        raise AssertionError(f"no {prefix}* tensors in the golden file")
    return out


def max_rel(a: Tensor, b: Tensor) -> float:
    """``max |a - b| / max |b|``."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-300))


def norm_rel(a: Tensor, b: Tensor) -> float:
    """``||a - b|| / ||b||`` (0 when both are zero)."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def rel(ours: float | Tensor, ref: float | Tensor) -> float:
    """``|ours - ref| / |ref|`` (0 when equal)."""
    return abs(float(ours) - float(ref)) / max(abs(float(ref)), 1e-300)


def assert_official_init(model: nn.Module, g: dict[str, Tensor], net_map: dict[str, str], rtol: float) -> None:
    """A seeded build drew the official initial weights: every net has exactly the official ``init.<net>.*`` keys,
    each within ``rtol`` (max relative; seeded draws agree to float rounding of the init formulas)."""
    for off, ours in net_map.items():
        sd = model.nets[ours].state_dict()
        assert set(sd) == {k[len(f"init.{off}."):] for k in g if k.startswith(f"init.{off}.")}, ours
        for k, v in sd.items():
            err = max_rel(v, g[f"init.{off}.{k}"])
            assert err <= rtol, f"{ours}.{k}: {err:.2e}"


def from_uint8(u8: Tensor) -> Tensor:
    """The official ``ToTensor`` + ``Normalize(0.5, 0.5)`` in float64, from stored uint8 images."""
    return (u8.double() / 255 - 0.5) / 0.5


class Spread:
    """The official code's own spread for one golden file (``spread/NAME.pt``; zero if the file is missing)."""

    def __init__(self, path: Path) -> None:
        p = path.parent / "spread" / path.name
        self.values: dict[str, Tensor] = {}
        if p.is_file():
            s = torch.load(p, map_location="cpu", weights_only=True)
            s.pop("config")
            self.values = s

    def tol(self, key: str, step: int | None = None) -> float:
        """Tolerance of ``key`` (``train.<loss>`` at ``step``, or ``final.<net>.<key>``)."""
        worst = 0.0
        for k, v in self.values.items():
            if k.split(".", 1)[1] == key:
                worst = max(worst, float(v[step]) if step is not None else float(v))
        return max(TRAIN_RTOL, SPREAD_FACTOR * worst)


def assert_state_close(ours: dict[str, Tensor], g: dict[str, Tensor], prefix: str, spread: Spread,
                       rename: Callable[[str], str | None] = lambda k: k, where: str = "") -> int:
    """Every tensor of the official final state under ``prefix`` whose ``rename`` is not None is within its
    tolerance of ``ours[rename(key)]``; returns how many were compared."""
    worst = []
    for k, v in g.items():
        if not k.startswith(prefix):
            continue
        our = rename(k[len(prefix):])
        if our is None:
            continue
        assert our in ours, f"{where}: the official {k} has no counterpart {our!r} in ours"
        tol = spread.tol(k)
        err = norm_rel(ours[our], v)
        worst.append((err / tol, err, tol, our))
    assert worst, f"no {prefix}* tensors compared"
    ratio, err, tol, name = max(worst)
    assert ratio <= 1, f"{where}{name}: relative error {err:.2e} > tolerance {tol:.2e}"
    return len(worst)


class ReplayDropout(nn.Module):
    """A dropout layer that applies the recorded masks in order (``x * mask * (1 / (1 - p))``, as the golden
    scripts' dropout) in training mode, and is the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.masks: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        mask = self.masks.pop(0)
        assert mask.shape == x.shape, (tuple(mask.shape), tuple(x.shape))
        return x * mask.to(x.dtype) * (1.0 / (1.0 - self.p))
