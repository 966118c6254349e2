"""Shared helpers of the golden-tensor scripts that run 2017-era official PyTorch code (Python 2 / PyTorch 0.3).

Nothing here edits an official file or changes its maths. The shims are installed at run time, in the process
that imports the official modules from a checkout outside this repository:

* ``itertools.izip`` = ``zip``, ``numpy.int`` = ``int`` and ``numpy.reshape(..., newshape=...)`` (Python 2 / old
  NumPy names);
* ``Tensor.cuda(...)`` returns the tensor unchanged (the official losses and noise layers hard-code ``.cuda``), so
  everything runs on the CPU;
* ``Tensor.numpy()`` of a 0-d tensor returns a 1-element array (the trainers log ``loss.data.cpu().numpy()[0]``,
  which indexed a 1-element tensor in PyTorch 0.3);
* a ``cv2`` stub (UNIT's ``common_net`` imports it for the Gaussian smoother of COCOMsDis, which is not run).

Random parts are recorded or replayed: :class:`DrawLog` wraps ``torch.randn`` (the official latent noise and the
train scripts' ``z``) and :class:`DropoutLog` gives every ``nn.Dropout`` call in training mode a Bernoulli mask
(the same expression ``x * mask * (1 / (1 - p))`` the tests use to replay it).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

#: environments of the official code's own re-runs: another thread count, and AVX2 kernels
SPREAD_ENVS = {
    "t2": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
    "avx2": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
}


def install_compat() -> None:
    """Install the run-time shims listed in the module docstring (idempotent)."""
    itertools.izip = zip  # type: ignore[attr-defined]
    if not hasattr(np, "int"):
        np.int = int  # type: ignore[attr-defined]
    if not getattr(np.reshape, "_golden_shim", False):
        reshape = np.reshape

        def reshape_newshape(a: object, *args: object, newshape: object = None, **kwargs: object) -> np.ndarray:
            return reshape(a, newshape, **kwargs) if newshape is not None else reshape(a, *args, **kwargs)

        reshape_newshape._golden_shim = True  # type: ignore[attr-defined]
        np.reshape = reshape_newshape
    if "cv2" not in sys.modules:
        stub = types.ModuleType("cv2")

        def _missing(*args: object, **kwargs: object) -> None:
            raise RuntimeError("cv2 is stubbed: the golden scripts do not run the official image I/O or smoother")

        stub.getGaussianKernel = _missing  # type: ignore[attr-defined]
        sys.modules["cv2"] = stub
    if not getattr(torch.Tensor.cuda, "_golden_shim", False):
        def cuda(self: Tensor, *args: object, **kwargs: object) -> Tensor:
            return self

        cuda._golden_shim = True  # type: ignore[attr-defined]
        torch.Tensor.cuda = cuda  # type: ignore[method-assign]
        numpy = torch.Tensor.numpy

        def numpy_1d(self: Tensor, *args: object, **kwargs: object) -> np.ndarray:
            arr = numpy(self, *args, **kwargs)
            return arr.reshape(1) if arr.ndim == 0 else arr

        torch.Tensor.numpy = numpy_1d  # type: ignore[method-assign]


class DrawLog:
    """Every ``torch.randn`` call while :meth:`active`: fresh draws (recorded) or the ``replay`` list, in order.

    Fresh draws are float32 samples cast to the dtype the code asks for, so that a float32 file stores them exactly.
    """

    def __init__(self, replay: list[Tensor] | None = None) -> None:
        self.drawn: list[Tensor] = []
        self._replay = None if replay is None else list(replay)

    @contextmanager
    def active(self) -> Iterator[DrawLog]:
        orig = torch.randn

        def randn(*size: object, **kwargs: object) -> Tensor:
            if self._replay is None:
                # Drawn in float32 and cast to the asked dtype: N(0, 1) samples that a float32 file holds exactly.
                dtype = kwargs.pop("dtype", None) or torch.get_default_dtype()
                out = orig(*size, dtype=torch.float32, **kwargs).to(dtype)
            else:
                shape = torch.Size(size[0] if len(size) == 1 and not isinstance(size[0], int) else size)
                out = self._replay.pop(0)
                if out.shape != shape:
                    raise RuntimeError(f"replayed draw has shape {tuple(out.shape)}, the code asks {tuple(shape)}")
                out = out.clone().to(kwargs.get("dtype") or torch.get_default_dtype())
            self.drawn.append(out.detach().clone())
            return out

        torch.randn = randn  # type: ignore[assignment]
        try:
            yield self
        finally:
            torch.randn = orig  # type: ignore[assignment]


class DropoutLog:
    """Masks of every ``nn.Dropout`` call in training mode while :meth:`active`, in call order.

    Masks are Bernoulli(1 - p) draws of a generator seeded with ``seed``, or the ``replay`` list; masks put in
    ``forced`` are used first (a harness choosing the mask of a pass). Output: ``x * mask * (1 / (1 - p))``.
    """

    def __init__(self, seed: int = 0, replay: list[Tensor] | None = None) -> None:
        self.masks: list[Tensor] = []
        self.forced: list[Tensor] = []
        self._replay = None if replay is None else list(replay)
        self._gen = torch.Generator().manual_seed(seed)

    @property
    def replaying(self) -> bool:
        return self._replay is not None

    def _mask(self, x: Tensor, p: float) -> Tensor:
        if self.forced:
            m = self.forced.pop(0)
        elif self._replay is not None:
            m = self._replay.pop(0)
        else:
            m = torch.bernoulli(torch.full(x.shape, 1.0 - p, dtype=torch.float64), generator=self._gen)
        if m.shape != x.shape:
            raise RuntimeError(f"dropout mask of shape {tuple(m.shape)} for an input of shape {tuple(x.shape)}")
        m = m.to(x.dtype)
        self.masks.append(m.clone())
        return m

    @contextmanager
    def active(self) -> Iterator[DropoutLog]:
        orig = nn.Dropout.forward

        def forward(mod: nn.Dropout, x: Tensor) -> Tensor:
            if not mod.training or mod.p == 0:
                return x
            return x * self._mask(x, mod.p) * (1.0 / (1.0 - mod.p))

        nn.Dropout.forward = forward  # type: ignore[method-assign]
        try:
            yield self
        finally:
            nn.Dropout.forward = orig  # type: ignore[method-assign]


def prefixed(prefix: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``state`` with every key prefixed by ``prefix`` and the tensors detached, cloned and contiguous."""
    return {f"{prefix}{k}": v.detach().clone().contiguous() for k, v in state.items()}


def save_golden(path: Path, tensors: dict[str, Tensor], config: dict) -> None:
    """Write a golden file: plain tensors plus the ``config`` JSON string (``torch.load(weights_only=True)``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": json.dumps(config, sort_keys=True), **tensors}, path)


def git_commit(checkout: Path) -> str:
    """The commit of an official checkout (``unknown`` if it is not a git work tree)."""
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def norm_rel(a: Tensor, b: Tensor) -> float:
    """``||a - b|| / ||b||`` in float64 (0 for two zero tensors)."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def run_spread(script: Path, args: list[str], full: Path, reference: dict[str, Tensor], out: Path) -> None:
    """Re-run ``script --spread-of full`` once per :data:`SPREAD_ENVS` entry, each in a fresh process, and write
    ``out``: per kind and key, the re-run's difference from ``reference`` (the golden run at full precision):
    ``<kind>.train.<loss>`` relative per step (a tensor of ``steps`` values), ``<kind>.final.<net>.<key>`` as
    :func:`norm_rel`."""
    spread: dict[str, Tensor] = {}
    envs = {}
    for kind, env in SPREAD_ENVS.items():
        rerun = out.parent / f"{out.stem}.{kind}.tmp.pt"
        cmd = [sys.executable, str(script), *args, "--spread-of", str(full), "--spread-out", str(rerun)]
        subprocess.run(cmd, check=True, env={**os.environ, **env})
        r = torch.load(rerun, weights_only=True)
        rerun.unlink()
        envs[kind] = json.loads(r.pop("config"))["spread_env"]
        for key, ref in reference.items():
            if key.startswith("train."):
                spread[f"{kind}.{key}"] = ((r[key] - ref).abs() / ref.abs().clamp_min(1e-300)).double()
            elif key.startswith("final."):
                spread[f"{kind}.{key}"] = torch.tensor(norm_rel(r[key], ref), dtype=torch.float64)
    save_golden(out, spread, {"kinds": envs})
    worst = max((float(v.max()), k) for k, v in spread.items())
    print(f"wrote {out}: largest spread {worst[0]:.2e} ({worst[1]})")
