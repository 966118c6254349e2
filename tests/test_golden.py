"""Parity with the official NICE-GAN networks: every golden file in NICEGAN_GOLDEN_DIR (default ../shared/golden).

Format (README beside the files): ``config`` (JSON), ``init.<net>.<key>`` / ``final.<net>.<key>`` official state
dicts, inputs ``real_A``/``real_B`` of shape (steps, batch, 3, S, S), eval outputs ``eval.*`` and per-step losses
``train.d_loss``/``train.g_loss``. The test adapts to whatever configuration a file declares.

Tolerances: eval outputs to 1e-5 relative (max |ours - official| / max |official| per tensor); training losses to
1e-4 relative per step; every final parameter and buffer (spectral-norm u/v included) to 1e-4 relative error
||ours - official|| / ||official|| per tensor. The norm is used for trained tensors because Adam's first update is
about lr * sign(grad): an element whose gradient is ~1e-8 can flip on float rounding alone (reordered sums,
another BLAS), which moves that one element by up to 2 * lr.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nicegan.config import TrainConfig
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.training.optim import build_optimizers
from tests.conftest import golden_dir

NET_MAP = {"gen2B": "gen_a2b", "gen2A": "gen_b2a", "disA": "dis_a", "disB": "dis_b"}
EVAL_RTOL, TRAIN_RTOL = 1e-5, 1e-4

GOLDEN_FILES = sorted(golden_dir().glob("*.pt")) if golden_dir().is_dir() else []


def _ids(p: Path) -> str:
    return p.stem


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def _norm_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def _config(c: dict) -> NiceGANConfig:
    return NiceGANConfig(img_size=c["img_size"], ch=c["ch"], n_res=c["n_res"], n_dis=c["n_dis"], light=c["light"],
                         adv_weight=c.get("adv_weight", 1), cycle_weight=c.get("cycle_weight", 10),
                         recon_weight=c.get("recon_weight", 10))


def _load(path: Path) -> tuple[dict, NiceGAN, dict]:
    g = torch.load(path, map_location="cpu", weights_only=True)
    c = json.loads(g["config"])
    model = NiceGAN(_config(c))
    for off, ours in NET_MAP.items():
        prefix = f"init.{off}."
        sd = {k[len(prefix):]: v for k, v in g.items() if k.startswith(prefix)}
        assert sd, f"{path.name} has no {prefix}* tensors"
        model.nets[ours].load_state_dict(sd)  # strict: every official key maps onto ours
    return g, model, c


def test_golden_files_present() -> None:
    if not golden_dir().is_dir():
        pytest.skip(f"golden folder {golden_dir()} not found (set NICEGAN_GOLDEN_DIR)")
    assert GOLDEN_FILES, f"no *.pt in {golden_dir()}"


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=_ids)
def test_seeded_build_draws_the_official_initial_weights(path: Path) -> None:
    g = torch.load(path, map_location="cpu", weights_only=True)
    c = json.loads(g["config"])
    torch.manual_seed(c.get("seed", 0))
    fresh = NiceGAN(_config(c))
    for off, ours in NET_MAP.items():
        for k, v in fresh.nets[ours].state_dict().items():
            assert torch.equal(v, g[f"init.{off}.{k}"]), f"{ours}.{k}"


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=_ids)
def test_eval_outputs_match_official(path: Path) -> None:
    g, model, _ = _load(path)
    model.eval()
    names = ("local", "global", "cam_logit", "heatmap", "z")
    with torch.no_grad():
        for dom, direction in (("A", "a2b"), ("B", "b2a")):
            x = g[f"real_{dom}"][0]
            outs = model.nets[f"dis_{dom.lower()}"](x)
            for name, out in zip(names, outs, strict=True):
                ref = g[f"eval.dis{dom}.{name}"]
                assert out.shape == ref.shape, name
                assert _max_rel(out, ref) <= EVAL_RTOL, f"dis{dom}.{name}: {_max_rel(out, ref):.2e}"
            tr = model.translate(x, direction)
            assert _max_rel(tr, g[f"eval.translate_{dom}"]) <= EVAL_RTOL
            rec = model.decode(model.encode(x, dom.lower()), dom.lower())
            assert _max_rel(rec, g[f"eval.reconstruct_{dom}"]) <= EVAL_RTOL


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=_ids)
def test_training_steps_match_official(path: Path) -> None:
    g, model, c = _load(path)
    train = TrainConfig(lr=c["lr"], betas=tuple(c["betas"]), weight_decay=c["weight_decay"])
    optimizers = build_optimizers(model, train)
    model.train()
    steps = int(c["steps"])
    assert g["real_A"].shape[0] >= steps
    for s in range(steps):
        batch = {"a": g["real_A"][s], "b": g["real_B"][s]}
        for phase, ref in (("dis", g["train.d_loss"][s]), ("gen", g["train.g_loss"][s])):
            for name, net in model.nets.items():
                net.requires_grad_(name in model.phases[phase])
            loss, _ = model.compute_loss(phase, batch)
            assert abs(loss.item() - ref.item()) <= TRAIN_RTOL * abs(ref.item()), (phase, s, loss.item(), ref.item())
            loss.backward()
            optimizers[phase].step()
            optimizers[phase].zero_grad(set_to_none=True)
    worst = []
    for off, ours in NET_MAP.items():
        sd = model.nets[ours].state_dict()
        ref_keys = {k[len(f"final.{off}."):] for k in g if k.startswith(f"final.{off}.")}
        assert ref_keys == set(sd), f"{ours}: key sets differ"
        for k, v in sd.items():
            worst.append((_norm_rel(v, g[f"final.{off}.{k}"]), f"{ours}.{k}"))
    err, name = max(worst)
    assert err <= TRAIN_RTOL, f"{name}: relative error {err:.2e}"
