"""Shared fixtures: tiny on-disk datasets, a tiny NICE-GAN config, the golden folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.browser import chrome  # noqa: F401  (registers the headless-Chromium fixture for the web tests)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Run settings of the tiny test runs (each model's own tiny architecture is ``<Model>Config.tiny``).
TINY_RUN = ["data.resize_margin=4", "train.batch_size=2", "train.log_every=1", "train.sample_every=2",
            "train.ckpt_every=2", "train.keep_last=2", "train.lr=2e-4"]


def tiny_overrides(name: str, *extra: str) -> list[str]:
    """``model.key=value`` overrides of the model's tiny config (it must declare one), then ``extra``."""
    from nicegan.models import get_model_class

    tiny = get_model_class(name).config_class.tiny
    assert tiny, f"the {name} model's config must declare a tiny configuration (ModelConfig.tiny)"
    return [f"model.name={name}", *(f"model.{k}={v}" for k, v in tiny.items()), *extra]


# NICE-GAN: small enough for a CPU step in well under a second, yet the real architecture (32 px, reduced head).
TINY = tiny_overrides("nicegan", *TINY_RUN)


def tiny_model(name: str, *extra: str, seed: int = 0):
    """``(model, run config)`` of the model's tiny configuration plus ``extra`` overrides, seeded."""
    from nicegan.configs.schema import resolve_config
    from nicegan.models import create_model

    cfg = resolve_config({}, tiny_overrides(name, *extra))
    torch.manual_seed(seed)
    return create_model(name, cfg.model), cfg


def perturbed_checkpoint(name: str, path: Path, seed: int, step: int) -> Path:
    """A tiny ``name`` checkpoint at ``path`` whose weights are not a fresh draw (each moved by 0.05 noise), so no
    output is trivially constant and styles change the output visibly."""
    from nicegan.formats import checkpoint

    model, cfg = tiny_model(name, seed=seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return checkpoint.write(checkpoint.Checkpoint(model=name, config=cfg.to_dict(), step=step,
                                                  nets={k: v.state_dict() for k, v in model.nets.items()}), path)


def golden_dir() -> Path:
    return Path(os.environ.get("NICEGAN_GOLDEN_DIR", SHARED / "golden" / "nicegan"))


def write_images(folder: Path, n: int, seed: int, size: tuple[int, int] = (40, 36)) -> list[Path]:
    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        arr = rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        p = folder / f"img_{i:02d}.png"
        Image.fromarray(arr).save(p)
        out.append(p)
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trainA/trainB/testA/testB with a handful of random images (mixed sizes, a nested folder, a JPEG)."""
    root = tmp_path_factory.mktemp("tiny_data")
    for k, split in enumerate(("trainA", "trainB", "testA", "testB")):
        write_images(root / split, 5, seed=k, size=(40 + k, 36))
    write_images(root / "trainA" / "nested" / "deeper", 2, seed=10, size=(50, 50))
    Image.fromarray(np.full((30, 44, 3), 90, np.uint8)).save(root / "trainB" / "photo.jpg", quality=90)
    return root


@pytest.fixture(autouse=True)
def _deterministic_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads everywhere, commands and their subprocesses included: the automatic choice follows the machine's
    load, and bit-for-bit checks (exact resume, fast paths against the default) must not see the count change
    between two runs. tests/test_threads.py unsets it where it tests the automatic choice."""
    monkeypatch.setenv("NICEGAN_THREADS", "2")
    torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Weights and feature caches of the test session live in a temporary folder, not in ~/.cache."""
    os.environ["NICEGAN_CACHE_DIR"] = str(tmp_path_factory.mktemp("nicegan_cache"))


def pytest_configure(config: pytest.Config) -> None:
    from nicegan.core.runtime import tune_malloc

    tune_malloc()  # the CLI does this too; without it CPU steps spend much of their time page-faulting


def straight_and_resumed(cfg, tmp_path: Path, stop_at: int) -> tuple:
    """Train ``cfg`` straight through, and again stopping at ``stop_at`` then resuming; return both last checkpoints
    after asserting that every network tensor is bit-identical."""
    from nicegan.formats import checkpoint
    from nicegan.training.runs import resume_run, start_run

    start_run(cfg, tmp_path / "straight", progress=False, tensorboard=False)
    start_run(cfg, tmp_path / "split", progress=False, tensorboard=False, stop_at=stop_at)
    resume_run(tmp_path / "split", progress=False, tensorboard=False)
    a, b = checkpoint.load(tmp_path / "straight"), checkpoint.load(tmp_path / "split")
    assert a.step == b.step == cfg.train.max_steps
    for net in a.nets:
        for k, v in a.nets[net].items():
            assert torch.equal(v, b.nets[net][k]), f"{net}.{k}"
    return a, b
