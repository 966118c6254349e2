"""Checkpoints: one versioned dict of plain tensors and containers, written atomically, loaded safely.

Contents: ``format``, ``format_version``, ``toolkit_version``, ``model`` (registry name), ``config`` (the whole
run config as a plain dict), ``step`` (completed training steps), ``nets`` (state dicts), ``optimizers``,
``schedulers``, ``rng`` (torch, CUDA, NumPy and Python generator states), ``data`` (stream position) and
``extra`` (e.g. best metric values). Everything loads with ``torch.load(weights_only=True)``; a file that needs
arbitrary unpickling is refused.

Files live in ``RUN/checkpoints/``: ``latest.pt`` is replaced atomically (temporary file, fsync, ``os.replace``)
so a crash mid-write never destroys the previous one; numbered ``step_XXXXXXX.pt`` files are hard links to the
same data (no extra disk) and only the newest ``keep_last`` of them are kept.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nicegan.errors import CheckpointError
from nicegan.version import __version__

FORMAT = "nicegan-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.pt"
_STEP_RE = re.compile(r"step_(\d+)\.pt$")
OFFICIAL_KEYS = {"gen2B", "gen2A", "disA", "disB"}


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_name(step: int) -> str:
    return f"step_{step:07d}.pt"


# --- RNG state as plain tensors/containers (weights_only friendly) ----------------------------------------------


def capture_rng() -> dict[str, Any]:
    """States of every random generator the toolkit may use."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states only where the same devices exist)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# --- saving --------------------------------------------------------------------------------------------------------


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(payload: dict[str, Any], run_dir: Path, numbered: bool, keep_last: int) -> Path:
    """Write ``latest.pt`` (atomically) and, if ``numbered``, ``step_XXXXXXX.pt``; prune old numbered files."""
    ckdir = checkpoint_dir(run_dir)
    latest = ckdir / LATEST
    atomic_save(payload, latest)
    if numbered:
        target = ckdir / step_name(payload["step"])
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        try:
            os.link(latest, tmp)  # same bytes, no extra disk
        except OSError:
            shutil.copyfile(latest, tmp)
        os.replace(tmp, target)
        if keep_last > 0:
            for old in numbered_checkpoints(run_dir)[:-keep_last]:
                old.unlink()
    return latest


def numbered_checkpoints(run_dir: Path) -> list[Path]:
    """Numbered checkpoints of a run, oldest first."""
    ckdir = checkpoint_dir(run_dir)
    if not ckdir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckdir.iterdir() if (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """``RUN/checkpoints/latest.pt`` if it exists."""
    p = checkpoint_dir(run_dir) / LATEST
    return p if p.is_file() else None


# --- loading -------------------------------------------------------------------------------------------------------


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/latest.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        latest = latest_checkpoint(p) or (p / LATEST if (p / LATEST).is_file() else None)
        if latest is None:
            raise CheckpointError(f"no checkpoint in {p} (expected {p / 'checkpoints' / LATEST})")
        return latest
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    return p


def read_torch_file(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU with one-line errors for unsafe, corrupt or non-torch files."""
    try:
        with warnings.catch_warnings():  # torch's warnings about odd files would only precede our own error
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e) or "allowlist" in str(e):  # a class or function would be imported
            raise CheckpointError(f"refusing to load {path}: it needs arbitrary (unsafe) unpickling; nicegan only "
                                  "loads checkpoints made of plain tensors and containers") from None
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt or not a PyTorch file)") from None
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except Exception as e:  # torch.load raises many types on arbitrary bytes (RuntimeError, KeyError, EOFError...)
        raise CheckpointError(f"{path} is not a readable checkpoint (corrupt, truncated or not a PyTorch file: "
                              f"{str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a nicegan checkpoint (a file or a run folder)."""
    p = resolve_checkpoint_path(path)
    ck = read_torch_file(p)
    if isinstance(ck, dict) and set(ck) >= OFFICIAL_KEYS:
        raise CheckpointError(f"{p} is an official NICE-GAN checkpoint; convert it first: "
                              f"nicegan import-official {p} --out converted.pt")
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a nicegan checkpoint")
    version = ck.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{p} has checkpoint format {version!r}; this nicegan ({__version__}) reads formats up "
                              f"to {FORMAT_VERSION}: upgrade nicegan")
    for key in ("model", "config", "step", "nets"):
        if key not in ck:
            raise CheckpointError(f"{p} is incomplete: no {key!r} entry")
    ck["path"] = str(p)
    return ck
