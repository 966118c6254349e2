"""Helpers of the official-code golden scripts of the multimodal baselines (scripts/golden_munit.py, golden_drit.py).

Nothing here is official code: real input images, the thread / instruction-set re-runs that measure the official
code's own numerical spread, recording the official code's random draws, and writing the golden files.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

#: the cat2dog images the goldens are made from (read-only shared data)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cat2dog"

#: the official code's re-runs whose differences from the golden run are its own numerical spread: the golden runs
#: with 1 thread and the default (AVX-512) kernels; ``t2`` with 2 threads, ``avx2`` with AVX2 kernels
SPREAD_RUNS: dict[str, tuple[dict[str, str], int]] = {
    "t2": ({"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, 2),
    "avx2": ({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2",
              "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, 1),
}


def image_files(split: str, n: int, data: Path | None = None) -> list[Path]:
    """The first ``n`` images (sorted by name) of a split (trainA, trainB, testA, testB) of ``data`` (default
    :data:`DATA`, which the scripts' ``--data`` sets)."""
    root = data or DATA
    files = sorted(p for p in (root / split).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < n:
        raise SystemExit(f"{root / split} has {len(files)} images, {n} needed")
    return files[:n]


def pil_to_u8(img: Image.Image) -> torch.Tensor:
    """3 x H x W uint8 tensor of an RGB PIL image."""
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def u8_to_unit(u8: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The official ToTensor + Normalize(0.5, 0.5) of uint8 pixels, computed in ``dtype``: (u8 / 255 - 0.5) / 0.5."""
    return (u8.to(dtype) / 255 - 0.5) / 0.5


@contextlib.contextmanager
def recording(module: object, name: str, out: list[torch.Tensor]) -> Iterator[None]:
    """Append a copy of every tensor ``module.name(...)`` returns to ``out`` (e.g. ``torch.randn``): the draws of the
    official code, recorded without changing them."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        value = original(*args, **kwargs)
        out.append(value.detach().clone())
        return value

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def replaying(module: object, name: str, draws: list[torch.Tensor]) -> Iterator[None]:
    """Make ``module.name(...)`` return the tensors of ``draws`` in order (shape-checked) instead of drawing."""
    original = getattr(module, name)
    queue = list(draws)

    def wrapper(*args, **kwargs):
        value = original(*args, **kwargs)  # drawn only for its shape and dtype
        if not queue:
            raise RuntimeError(f"{name}: more draws than recorded")
        nxt = queue.pop(0)
        if nxt.numel() != value.numel():
            raise RuntimeError(f"{name}: replayed draw has {nxt.numel()} values, the call wants {value.numel()}")
        return nxt.reshape(value.shape).to(value.dtype).clone()

    setattr(module, name, wrapper)
    try:
        yield
        if queue:
            raise RuntimeError(f"{name}: {len(queue)} recorded draws were not used")
    finally:
        setattr(module, name, original)


def cpu_cuda_shims() -> None:
    """The official codes hard-wire ``.cuda()`` on tensors and modules; on CPU make it the identity (runtime patch of
    this process only; no official file is changed)."""
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]


def flatten_state(prefix: str, state: dict[str, torch.Tensor],
                  dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """``{prefix.key: tensor}`` copies of a state dict (cast to ``dtype`` if given)."""
    return {f"{prefix}.{k}": (v.detach().clone() if dtype is None else v.detach().to(dtype).clone())
            for k, v in state.items()}


def round_to_fp32(module: torch.nn.Module) -> None:
    """Round every parameter and buffer to the nearest float32 value (kept in the module's dtype), so that a float32
    copy of the initial state is exact."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.float().to(t.dtype))


def norm_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64 (0 when both are 0)."""
    a, b = a.double(), b.double()
    den = float(b.norm())
    num = float((a - b).norm())
    return 0.0 if num == 0 else num / max(den, 1e-300)


def rel(a: float, b: float) -> float:
    """|a - b| / |b| (0 when equal)."""
    return 0.0 if a == b else abs(a - b) / max(abs(b), 1e-300)


def save(path: Path, tensors: dict[str, torch.Tensor], config: dict) -> None:
    """Write a golden file: plain tensors plus the ``config`` JSON string (torch.load(weights_only=True) reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # the legacy (non-zip) format: a zip record per tensor costs ~300 bytes, and these files hold hundreds of small
    # tensors (biases); torch.load(weights_only=True) reads both formats
    torch.save({"config": json.dumps(config, sort_keys=True), **tensors}, path, _use_new_zipfile_serialization=False)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def spread_reruns(script: Path, argv: list[str], name: str, golden_final: dict[str, torch.Tensor],
                  golden_losses: dict[str, torch.Tensor], config: dict, out_dir: Path,
                  runs: dict[str, tuple[dict[str, str], int]] = SPREAD_RUNS) -> None:
    """Re-run the official steps of golden ``name`` in subprocesses (``script ARGV --rerun NAME --rerun-out F
    --threads N`` with each run's environment) and write ``spread/NAME.KIND.pt``: the re-run's losses
    (``train.*``) and ``spread.final``, the relative difference ||rerun - golden|| / ||golden|| of each final tensor,
    in the order of the config's ``spread_keys`` (the golden's ``final.*`` keys, sorted)."""
    for kind, (env_extra, threads) in runs.items():
        tmp = out_dir / "spread" / f".{name}.{kind}.tmp.pt"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **env_extra}
        cmd = [sys.executable, str(script), *argv, "--rerun", name, "--rerun-out", str(tmp), "--threads", str(threads)]
        subprocess.run(cmd, env=env, check=True)
        rerun = torch.load(tmp, weights_only=True)
        tmp.unlink()
        tensors = {k: v for k, v in rerun.items() if k.startswith("train.")}
        keys = sorted(golden_final)
        # one vector rather than a scalar per tensor: a few hundred 0-d tensors would make the file 10x larger
        spread = torch.tensor([norm_rel(rerun[k], golden_final[k]) for k in keys], dtype=torch.float64)
        tensors["spread.final"] = spread
        worst = float(spread.max())
        loss_worst = max(max(rel(float(a), float(b)) for a, b in zip(rerun[k].flatten(), v.flatten(), strict=True))
                         for k, v in golden_losses.items())
        print(f"spread {name}.{kind}: final tensors up to {worst:.2e}, losses up to {loss_worst:.2e}")
        save(out_dir / "spread" / f"{name}.{kind}.pt", tensors, {**config, "spread_run": kind, "spread_keys": keys,
                                                               "spread_env": env_extra, "spread_threads": threads})


def run_rerun(load_and_run: Callable[[dict], tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]],
              golden_path: Path, out: Path) -> None:
    """Rerun mode: run the official steps of a written golden from its own initial state and inputs; write the final
    state (float64) and the losses to ``out``."""
    g = torch.load(golden_path, weights_only=True)
    final, losses = load_and_run(g)
    torch.save({**final, **losses}, out)
