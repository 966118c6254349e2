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

from nicegan.cli import main
from nicegan.formats.checkpoint import load as load_checkpoint
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
    "unit-version_02": ("unit", ["unit_gen_00000002.pkl", "unit_dis_00000002.pkl"], "expected.pt", "run", BOTH,
                        {"img_size": 32}),
    "munit-trainer": ("munit", ["gen_00000002.pt", "dis_00000002.pt", "optimizer.pt"], "expected.pt", "run", BOTH,
                      {"img_size": 32}),
    "munit-released-gen-only": ("munit", ["gen_00000002.pt"], "expected.pt", "bundle", BOTH, {"img_size": 32}),
    "drit-concat1": ("drit", ["concat1/00000.pth"], "expected_concat1.pt", "run", BOTH, {"img_size": 48}),
    "drit-concat0": ("drit", ["concat0/00000.pth"], "expected_concat0.pt", "run", BOTH, {"img_size": 48}),
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _case(name: str) -> tuple[Path, list[Path], dict[str, Any]]:
    method, files, expected, *_ = CASES[name]
    return _require(method, files, expected)


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
            for key in (d, f"{d}_guided"):  # a sampled style, and one encoded from an example (multimodal)
                if key not in expected:
                    continue
                style = expected.get(f"style_{key}")
                y = model.translate(x, d, style.flatten(1)) if style is not None else model.translate(x, d)
                assert y.shape == expected[key].shape
                worst = max(worst, _max_diff_in_pixels(y, expected[key]))
    assert worst <= 1 / 255, f"{name}: the imported model differs from the official one by {worst * 255:.3f}/255"
    if kind == "run":  # and the run continues from the official step
        step = load_checkpoint(out).step
        assert main(["-q", "resume", str(out), "--stop-at", str(step + 1), "--no-progress", "--threads", "1",
                     "--max-steps", str(step + 10)]) == 0, config
        assert load_checkpoint(out).step == step + 1


def test_unit_da_nets_with_a_one_channel_domain(tmp_path: Path, tiny_data: Path) -> None:
    """svhn2mnist: domain B is one-channel in the official nets; ours read it as RGB with R = G = B."""
    _, paths, expected = _require("unit_da", ["svhn2mnist_gen_00000000.pkl", "svhn2mnist_dis_00000000.pkl"],
                                  "expected.pt")
    report = import_official(paths, tmp_path / "run", data_root="builtin:digits")
    assert report.kind == "run" and any("domain B is one-channel" in n for n in report.notes)
    model, _, _ = load_model(tmp_path / "run")
    model.eval()
    x_a, x_b = expected["input_a"], expected["input_b"].expand(-1, 3, -1, -1)
    with torch.no_grad():
        worst = max(_max_diff_in_pixels(model.translate(x_a, "a2b"), expected["a2b"].expand(-1, 3, -1, -1)),
                    _max_diff_in_pixels(model.translate(x_b, "b2a"), expected["b2a"]))
        assert worst <= 1 / 255, worst * 255
        torch.testing.assert_close(model.classify(x_a, "a"), expected["cls_a"], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.classify(x_b, "b"), expected["cls_b"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("which", ["edge", "da"])
def test_cogan_port_files_are_re_expressed_with_outputs_unchanged(which: str, tmp_path: Path) -> None:
    prefix = "mnistedge_cogan" if which == "edge" else "mnist2usps_full_cogan"
    _, paths, expected = _require("cogan", [f"{prefix}_gen_00000001.pkl", f"{prefix}_dis_00000001.pkl"],
                                  "expected.pt" if which == "edge" else "expected_da.pt")
    report = import_official(paths, tmp_path / "run", data_root="builtin:digits")
    assert report.kind == "run" and report.settings["model.img_size"] == 28
    model, _, _ = load_model(tmp_path / "run")
    model.eval()
    with torch.no_grad():
        gen_a, gen_b = model.nets["gen"](expected["z"])
        worst = max(_max_diff_in_pixels(gen_a, expected["gen_a"] * 2 - 1),  # the port's images are in [0, 1]
                    _max_diff_in_pixels(gen_b, expected["gen_b"] * 2 - 1))
        assert worst <= 1 / 255, worst * 255
        if which == "da":  # the classifier on the shared features, through each domain's first layer
            torch.testing.assert_close(model.classify(expected["input_a"], "a"), expected["cls_a"], rtol=1e-4,
                                       atol=1e-4)
            torch.testing.assert_close(model.classify(expected["input_b"], "b"), expected["cls_b"], rtol=1e-4,
                                       atol=1e-4)


def _require(method: str, files: list[str], expected: str) -> tuple[Path, list[Path], dict[str, Any]]:
    folder = GOLDEN / method / "import"
    paths = [folder / f for f in files]
    missing = [p for p in [*paths, folder / expected] if not p.exists()]
    if missing:
        msg = f"official import fixture missing: {missing[0]} (scripts/golden_{method}.py writes it)"
        if _in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return folder, paths, torch.load(folder / expected, map_location="cpu", weights_only=True)


def test_munit_import_resumes_like_the_official_trainer(tmp_path: Path) -> None:
    """One more iteration after the import equals the official MUNIT_Trainer.resume + dis_update + gen_update on
    the same images and style draws (the losses; they are not sensitive to the Adam moments, which the by-name
    mapping tests of tests/test_import_official.py pin)."""
    from nicegan.configs.schema import resolve_config
    from nicegan.models import create_model
    from nicegan.training.optim import build_optimizers, set_lr
    from nicegan.training.step import train_step

    _, paths, expected = _require("munit", ["gen_00000002.pt", "dis_00000002.pt", "optimizer.pt"], "expected.pt")
    import_official(paths, tmp_path / "run", img_size=32)
    ck = load_checkpoint(tmp_path / "run")
    assert ck.step == 2 and all(int(st["step"]) == 2 for o in ck.optimizers.values() for st in o["state"].values()), \
        "every parameter carries the official Adam moments of its two updates"
    cfg = resolve_config(ck.config)
    model = create_model(cfg.model_name, cfg.model)
    for name, net in model.nets.items():
        net.load_state_dict(ck.nets[name])
    optimizers = build_optimizers(model, cfg.train)
    for key, opt in optimizers.items():
        opt.load_state_dict(ck.optimizers[key])
    model.train()
    set_lr(optimizers, ck.step + 1, cfg.train)
    torch.manual_seed(int(expected["resume.seed"]))
    logs = train_step(model, optimizers, {"a": expected["resume.x_a"], "b": expected["resume.x_b"]})
    for ours, official in (("dis/total", "resume.loss_dis_total"), ("gen/total", "resume.loss_gen_total")):
        ref = float(expected[official])
        assert abs(float(logs[ours]) - ref) <= 1e-5 * abs(ref), (ours, float(logs[ours]), ref)
