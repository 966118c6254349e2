"""Contract tests run for every registered model on a tiny config."""

from __future__ import annotations

import copy

import pytest
import torch

from nicegan.config import RunConfig, apply_overrides
from nicegan.registry import create_model, list_models
from nicegan.training.optim import build_optimizers

# Tiny, fast configs per model (the real architecture at a small width); every registered model needs one.
TINY_MODEL = {
    "nicegan": ["model.img_size=32", "model.ch=4", "model.n_res=1", "model.n_dis=6", "model.global_downsamples=1"],
}


def tiny_model(name: str):
    assert name in TINY_MODEL, f"add a tiny config for the new model {name!r} to TINY_MODEL"
    d = apply_overrides({"model": {"name": name}}, TINY_MODEL[name])
    cfg = RunConfig.from_dict(d)
    torch.manual_seed(0)
    return create_model(name, cfg.model), cfg


def batch(cfg: RunConfig, n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    s = cfg.model.img_size
    return {"a": torch.rand(n, 3, s, s, generator=g) * 2 - 1, "b": torch.rand(n, 3, s, s, generator=g) * 2 - 1}


@pytest.mark.parametrize("name", list_models())
def test_translate_shapes_and_range(name: str) -> None:
    model, cfg = tiny_model(name)
    model.eval()
    x = batch(cfg)["a"]
    with torch.no_grad():
        for direction in ("a2b", "b2a"):
            y = model.translate(x, direction)
            assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
            vis = model.visuals(x, direction)
            assert vis["real"] is x and vis["fake"].shape == x.shape


@pytest.mark.parametrize("name", list_models())
def test_each_phase_updates_only_its_nets(name: str) -> None:
    model, cfg = tiny_model(name)
    opts = build_optimizers(model, cfg.train)
    b = batch(cfg)
    model.train()
    for phase, nets in model.phases.items():
        before = {k: copy.deepcopy(v.state_dict()) for k, v in model.nets.items()}
        for k, net in model.nets.items():
            net.requires_grad_(k in nets)
        loss, logs = model.compute_loss(phase, b)
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in logs.values())
        assert all(k.startswith(f"{phase}/") for k in logs)
        loss.backward()
        for k, net in model.nets.items():
            grads = [p.grad for p in net.parameters() if p.grad is not None]
            assert bool(grads) == (k in nets), f"{phase}: gradients on {k}"
        opts[phase].step()
        opts[phase].zero_grad(set_to_none=True)
        for k, net in model.nets.items():
            params = dict(net.named_parameters())
            changed = [n for n, v in net.state_dict().items() if n in params and not torch.equal(v, before[k][n])]
            if k in nets:
                assert changed, f"{phase} did not update {k}"
            else:
                assert not changed, f"{phase} changed {k}: {changed[:3]}"


@pytest.mark.parametrize("name", list_models())
def test_state_dict_round_trip_gives_identical_outputs(name: str) -> None:
    model, cfg = tiny_model(name)
    other, _ = tiny_model(name)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    other.load_state_dict(model.state_dict())
    model.eval(), other.eval()
    x = batch(cfg)["b"]
    with torch.no_grad():
        assert torch.equal(model.translate(x, "b2a"), other.translate(x, "b2a"))
