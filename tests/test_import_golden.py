"""Import round trips on files written by the official code itself (tests/golden/<method>/import/).

Each case imports the files exactly as the official save functions wrote them, then translates the official test
image through the imported model and compares it with the official network's own translation of it (to 1/255 of
the image range, the issue's bar; the measured difference is far smaller). Resumable imports are resumed for one
step. The fixtures and the scripts that made them are described in each folder's README.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from nicegan.checkpoint import load as load_checkpoint
from nicegan.cli import main
from nicegan.inference import load_model
from nicegan.training.importers import import_official
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"
BOTH = ("a2b", "b2a")

#: id -> (method folder, files or folders under import/, expected file, kind, directions, import options)
CASES: dict[str, tuple[str, list[str], str, str, tuple[str, ...], dict[str, Any]]] = {
    "cyclegan-train": ("cyclegan", ["train"], "expected.pt", "run", BOTH, {"img_size": 32}),
    "cyclegan-release": ("cyclegan", ["release/latest_net_G.pth"], "expected.pt", "bundle", ("a2b",),
                         {"img_size": 32}),
    "cyclegan-release-old-norm-stats": ("cyclegan", ["release_old/latest_net_G.pth"], "expected.pt", "bundle",
                                        ("a2b",), {"img_size": 32}),
    "ugatit-light": ("ugatit", ["light/cat2dog_params_0000002.pt"], "expected_light.pt", "run", BOTH,
                     {"img_size": 32}),
    "ugatit-full": ("ugatit", ["full/cat2dog_params_0000002.pt"], "expected_full.pt", "run", BOTH, {}),
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _case(name: str) -> tuple[Path, list[Path], dict[str, Any]]:
    method, files, expected, *_ = CASES[name]
    folder = GOLDEN / method / "import"
    paths = [folder / f for f in files]
    missing = [p for p in [*paths, folder / expected] if not p.exists()]
    if missing:
        msg = f"official import fixture missing: {missing[0]} (scripts/golden_{method}.py writes it)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return folder, paths, torch.load(folder / expected, map_location="cpu", weights_only=True)


def _max_diff_in_pixels(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest difference in [0, 1] image units (tensors are in [-1, 1])."""
    return float((ours.double() - ref.double()).abs().max()) / 2


@pytest.mark.parametrize("name", sorted(CASES))
def test_official_files_import_and_translate_like_the_official_network(name: str, tmp_path: Path,
                                                                        tiny_data: Path) -> None:
    method, _, _, kind, directions, opts = CASES[name]
    _, paths, expected = _case(name)
    config = json.loads(expected["config"])
    out = tmp_path / "out"
    report = import_official(paths, out, data_root=str(tiny_data), **opts)
    assert report.kind == kind and report.directions == directions, report
    model, _, _ = load_model(out)
    model.eval()
    worst = 0.0
    with torch.no_grad():
        for d in directions:
            x = expected["input_a" if d == "a2b" else "input_b"]
            style = expected.get(f"style_{d}")
            y = model.translate(x, d, style) if style is not None else model.translate(x, d)
            assert y.shape == expected[d].shape
            worst = max(worst, _max_diff_in_pixels(y, expected[d]))
    assert worst <= 1 / 255, f"{name}: the imported model differs from the official one by {worst * 255:.3f}/255"
    if kind == "run":  # and the run continues from the official step
        step = load_checkpoint(out).step
        assert main(["-q", "resume", str(out), "--stop-at", str(step + 1), "--no-progress", "--threads", "1",
                     "--max-steps", str(step + 10)]) == 0, config
        assert load_checkpoint(out).step == step + 1
