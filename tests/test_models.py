"""Contract tests run for every registered model on a tiny config."""

from __future__ import annotations

import copy

import pytest
import torch

from nicegan.config import RunConfig, apply_overrides
from nicegan.registry import create_model, list_models
from nicegan.training.optim import build_optimizers
from tests.conftest import straight_and_resumed

# Tiny, fast configs per model (the real architecture at a small width); every registered model needs one.
TINY_MODEL = {
    "nicegan": ["model.img_size=32", "model.ch=4", "model.n_res=1", "model.n_dis=6", "model.global_downsamples=1"],
    "cyclegan": ["model.img_size=32", "model.ngf=4", "model.ndf=4", "model.n_blocks=1"],
    "ugatit": ["model.img_size=32", "model.ch=4", "model.n_res=1", "model.global_layers=4", "model.local_layers=3"],
    "unit": ["model.img_size=32", "model.ch=4", "model.n_enc_res_blk=1", "model.n_gen_res_blk=1", "model.dis_ch=4",
             "model.n_dis_layer=3"],
    "cogan": ["model.gen_ch=32", "model.dis_ch=4", "model.dis_fc=16", "model.invert_steps=3", "model.invert_restarts=2",
              "model.visual_invert_steps=2"],
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


# Total parameters at each model's default configuration: the official counts (specs), for CoGAN the 32 px RGB
# digits default (its official 28 px / 1-channel counts are checked in tests/test_cogan.py).
EXPECTED_TOTALS = {
    "nicegan": 109_958_146,  # light, 256 px, ch 64, n_res 6, n_dis 7
    "ugatit": 134_021_248,  # light, 256 px
    "cyclegan": 28_285_832,  # resnet_9blocks + 70x70 PatchGAN, 256 px
    "unit": 18_017_286 + 2 * 25_149_057,  # version_02 generators (shared blocks once) + two COCODis, 256 px
    "cogan": 7_861_130 + 654_593,  # coupled generators + coupled discriminators, 32 px RGB
}


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts_at_the_default_configuration(name: str) -> None:
    from nicegan.cli.models import model_info

    assert name in EXPECTED_TOTALS, f"add the official parameter count of {name!r}"
    assert model_info(name)["total"] == EXPECTED_TOTALS[name]


@pytest.mark.parametrize("name", list_models())
def test_exact_resume(name: str, tiny_data, tmp_path) -> None:
    """4 steps == 2 steps + resume + 2 steps, bit for bit: nets, optimizers and model extra state (pools)."""
    from nicegan.config import resolve_config

    overrides = TINY_MODEL[name] + ["model.img_size=32", "data.resize_margin=4", "train.batch_size=2",
                                    "train.max_steps=4", "train.sample_every=0", f"data.root={tiny_data}"]
    cfg = resolve_config(_default_preset(name), overrides)
    a, b = straight_and_resumed(cfg, tmp_path, stop_at=2)
    for phase in a["optimizers"]:
        for i, st in a["optimizers"][phase]["state"].items():
            assert torch.equal(st["exp_avg"], b["optimizers"][phase]["state"][i]["exp_avg"]), (phase, i)
    for key, value in a["model_extra"].items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["model_extra"][key])), key


def _default_preset(name: str) -> str:
    from nicegan.cli.models import presets_by_model

    presets = presets_by_model()[name]
    return next((p for p in presets if not p.endswith(("-digits", "-da", "-full"))), presets[0])


@pytest.mark.parametrize("name", [n for n in list_models() if n in ("unit", "cogan")])
def test_checkpoint_restores_the_domain_adaptation_classifier(name: str, tmp_path) -> None:
    """``load_model`` (what evaluate and translate use) must restore every net ``classify`` needs."""
    from nicegan.inference import load_model
    from nicegan.training.checkpoint import atomic_save
    from nicegan.training.distributed import DistInfo
    from nicegan.training.state import make_checkpoint

    d = apply_overrides({"model": {"name": name}}, TINY_MODEL[name] + ["model.cls_weight=10"])
    cfg = RunConfig.from_dict(d)
    torch.manual_seed(0)
    model = create_model(name, cfg.model)
    with torch.no_grad():  # trained weights differ from any fresh draw: perturb every parameter
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "da.pt"
    atomic_save(make_checkpoint(cfg, model, build_optimizers(model, cfg.train), 1, {}, DistInfo()), path)
    torch.manual_seed(123)
    loaded, _, _ = load_model(path)
    model.eval()
    x = batch(cfg, n=3)["b"]
    with torch.no_grad():
        for dom in "ab":
            assert torch.equal(loaded.classify(x, dom), model.classify(x, dom)), dom
