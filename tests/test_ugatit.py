"""U-GAT-IT: official parameter counts and key names, shapes, rho clipping, CAM details, configs.

The model contract (translate, phases, state dicts, exact resume) is tested for every model in tests/test_models.py.
"""

from __future__ import annotations

import copy

import pytest
import torch

from nicegan.configs.schema import RunConfig, resolve_config
from nicegan.core.errors import ConfigError
from nicegan.models.base import HeatmapModel
from nicegan.models.ugatit import UGATIT, Discriminator, UGATITConfig, dis_sizes
from nicegan.nn import ILN, AdaILN
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.conftest import tiny_model


def tiny(**over: object) -> tuple[UGATIT, RunConfig]:
    """The tiny U-GAT-IT (``UGATITConfig.tiny``: 32 px, global 4 / local 3 discriminator layers), seeded."""
    return tiny_model("ugatit", *(f"model.{k}={v}" for k, v in over.items()))


def batch(cfg: RunConfig, n: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    s = cfg.model.img_size
    return {"a": torch.rand(n, 3, s, s, generator=g) * 2 - 1, "b": torch.rand(n, 3, s, s, generator=g) * 2 - 1}


@pytest.mark.parametrize("light, gen, total", [(True, 10_589_888, 134_021_248), (False, 278_959_808, 670_761_088)])
def test_official_parameter_counts(light: bool, gen: int, total: int) -> None:
    with torch.device("meta"):
        m = UGATIT(UGATITConfig(light=light))
    counts = {k: m.num_parameters(k) for k in m.nets}
    assert counts == {"gen_a2b": gen, "gen_b2a": gen, "dis_ga": 53_130_176, "dis_gb": 53_130_176,
                      "dis_la": 3_290_560, "dis_lb": 3_290_560}
    assert m.num_parameters() == total


def test_official_state_dict_keys() -> None:
    with torch.device("meta"):
        m = UGATIT(UGATITConfig())
    g = list(m.nets["gen_a2b"].state_dict())
    # Official registration order: CAM, gamma/beta, AdaILN blocks, then DownBlock, FC, UpBlock2.
    assert g[:6] == ["gap_fc.weight", "gmp_fc.weight", "conv1x1.weight", "conv1x1.bias", "gamma.weight", "beta.weight"]
    for key in ("DownBlock.1.weight", "DownBlock.5.weight", "DownBlock.9.weight", "DownBlock.12.conv_block.1.weight",
                "DownBlock.15.conv_block.5.weight", "UpBlock1_1.norm1.rho", "UpBlock1_4.conv2.weight",
                "FC.0.weight", "FC.2.weight", "UpBlock2.2.weight", "UpBlock2.3.rho", "UpBlock2.8.gamma",
                "UpBlock2.11.weight"):
        assert key in g
    assert g[-1] == "UpBlock2.11.weight"
    d = list(m.nets["dis_ga"].state_dict())
    assert d[:6] == ["gap_fc.weight_orig", "gap_fc.weight_u", "gap_fc.weight_v",
                     "gmp_fc.weight_orig", "gmp_fc.weight_u", "gmp_fc.weight_v"]
    assert {"conv1x1.weight", "conv1x1.bias", "conv.weight_orig", "model.1.bias", "model.1.weight_orig",
            "model.16.weight_orig"} <= set(d)
    assert "model.19.weight_orig" not in d and "model.10.weight_orig" in m.nets["dis_la"].state_dict()
    assert "conv.bias" not in d


def test_shapes_at_256() -> None:
    with torch.device("meta"):
        m = UGATIT(UGATITConfig())
        out, cam, heat = m.nets["gen_a2b"](torch.empty(2, 3, 256, 256))
    assert out.shape == (2, 3, 256, 256) and cam.shape == (2, 2) and heat.shape == (2, 1, 64, 64)
    assert dis_sizes(UGATITConfig()) == (6, 30)
    # Real (CPU) discriminators at 256 px, narrowed to ch 2 to stay cheap: the official 6x6 and 30x30 maps.
    for depth, side in ((7, 6), (5, 30)):
        logits, cam, heat = Discriminator(3, 2, depth)(torch.zeros(1, 3, 256, 256))
        assert logits.shape == (1, 1, side, side) and cam.shape == (1, 2) and heat.shape[:2] == (1, 1)


def test_tiny_shapes_heatmap_and_visuals() -> None:
    model, cfg = tiny()
    model.eval()
    x = batch(cfg, 3)["a"]
    glob, loc = dis_sizes(cfg.model)
    with torch.no_grad():
        out, cam, heat = model.nets["gen_a2b"](x)
        assert out.shape == x.shape and cam.shape == (3, 2) and heat.shape == (3, 1, 8, 8)
        for name, side in (("dis_ga", glob), ("dis_lb", loc)):
            logits, dcam, _ = model.nets[name](x)
            assert logits.shape == (3, 1, side, side) and dcam.shape == (3, 2)
        assert torch.equal(model.heatmap(x, "a2b"), heat)
        assert torch.equal(model.heatmap(x, "b2a"), model.nets["gen_b2a"](x)[2])
        vis = model.visuals(x, "a2b")
        assert list(vis) == ["real", "heatmap", "fake", "cycle", "identity"]
        assert torch.equal(vis["fake"], out) and torch.equal(vis["heatmap"], heat)
        assert torch.equal(vis["cycle"], model.translate(out, "b2a"))
        assert torch.equal(vis["identity"], model.translate(x, "b2a"))
    assert isinstance(model, HeatmapModel)


def test_rho_is_clipped_after_the_generator_step() -> None:
    model, cfg = tiny()
    opts = build_optimizers(model, cfg.train)
    assert model.translation_nets() == ("gen_a2b", "gen_b2a")
    assert model.phases["gen"].after == model.clip_rho and model.phases["dis"].after is None
    norms = [m for g in model.translation_nets() for m in model.nets[g].modules() if isinstance(m, (ILN, AdaILN))]
    assert norms and all(m.mode == "clip" for m in norms)
    assert {round(m.rho.mean().item(), 6) for m in norms} == {0.9, 0.0}  # official initial values
    with torch.no_grad():
        for i, m in enumerate(norms):
            m.rho.copy_(torch.linspace(-0.5, 1.5, m.rho.numel()).view_as(m.rho) + 0.01 * i)
    b = batch(cfg)
    seen: list[str] = []

    def check(phase: str, logs: dict[str, torch.Tensor]) -> None:
        seen.append(phase)
        if phase == "gen":  # after the D step, before the G step: the D step leaves rho alone
            assert min(m.rho.min().item() for m in norms) < 0 and max(m.rho.max().item() for m in norms) > 1

    train_step(model, opts, b, check=check)
    assert seen == ["dis", "gen"]
    for m in norms:
        assert m.rho.min().item() >= 0.0 and m.rho.max().item() <= 1.0
    assert any(m.rho.min().item() == 0.0 for m in norms) and any(m.rho.max().item() == 1.0 for m in norms)


def test_dis_cam_reweights_with_the_raw_weight() -> None:
    # Scaling weight_orig leaves the spectrally normalised CAM logits unchanged but scales the re-weighting.
    model, cfg = tiny()
    d = model.nets["dis_ga"].eval()
    x = batch(cfg)["a"]
    with torch.no_grad():
        logits, cam, heat = d(x)
        d.gap_fc.weight_orig.mul_(3.0)
        d.gmp_fc.weight_orig.mul_(3.0)
        logits2, cam2, heat2 = d(x)
    torch.testing.assert_close(cam2, cam)
    assert not torch.allclose(heat2, heat)


def test_losses_terms_and_zero_weights() -> None:
    model, cfg = tiny()
    b = batch(cfg)
    dis_terms = {f"{s}_{d}" for s in ("global", "global_cam", "local", "local_cam") for d in "ab"}
    gen_terms = {f"{t}_{d}" for t in ("adv", "cycle", "identity", "cam") for d in "ab"}
    _, terms = model.phases["dis"].loss(b)
    assert set(terms) == dis_terms
    loss, terms = model.phases["gen"].loss(b)
    assert set(terms) == gen_terms
    w = cfg.model
    expect = sum(w.adv_weight * terms[f"adv_{d}"] + w.cycle_weight * terms[f"cycle_{d}"]
                 + w.identity_weight * terms[f"identity_{d}"] + w.cam_weight * terms[f"cam_{d}"] for d in "ab")
    torch.testing.assert_close(loss.detach(), expect.detach())
    # The training step logs the terms under their phase, adds each phase's total and detaches them all.
    model, cfg = tiny()
    logs = train_step(model, build_optimizers(model, cfg.train), b)
    assert set(logs) == ({f"dis/{t}" for t in dis_terms} | {"dis/total"} | {f"gen/{t}" for t in gen_terms}
                         | {"gen/total"})
    assert all(not v.requires_grad for v in logs.values())
    model, cfg = tiny(cycle_weight=0, identity_weight=0)
    _, terms = model.phases["gen"].loss(b)
    assert set(terms) == {"adv_a", "adv_b", "cam_a", "cam_b"}


def test_dis_step_does_not_build_the_generator_graph() -> None:
    model, cfg = tiny()
    for net in model.nets.values():
        net.requires_grad_(True)  # even when the generators are trainable, the D loss must not reach them
    loss, _ = model.dis_loss(batch(cfg))
    loss.backward()
    assert all(p.grad is None for g in model.translation_nets() for p in model.nets[g].parameters())


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="model.global_layers 7 is too deep for img_size 32.*<= 5"):
        UGATITConfig(img_size=32).validate()
    with pytest.raises(ConfigError, match="model.local_layers"):
        UGATITConfig(img_size=32, global_layers=5, local_layers=6).validate()
    with pytest.raises(ConfigError, match="model.global_layers must be >= 3"):
        UGATITConfig(global_layers=2).validate()
    with pytest.raises(ConfigError, match="model.img_size"):
        UGATITConfig(img_size=30).validate()
    with pytest.raises(ConfigError, match="all 0"):
        UGATITConfig(adv_weight=0, cycle_weight=0, identity_weight=0, cam_weight=0).validate()
    UGATITConfig(img_size=96).validate()  # the official depths need at least 96 px
    with pytest.raises(ConfigError, match="global_layers 7 is too deep for img_size 92"):
        UGATITConfig(img_size=92).validate()


def test_presets() -> None:
    light, full, digits = (resolve_config(p) for p in ("ugatit-light", "ugatit-full", "ugatit-digits"))
    assert light.model == UGATITConfig(light=True) and full.model == UGATITConfig(light=False)
    for c in (light, full):
        t = c.train
        assert (t.lr, tuple(t.betas), t.weight_decay, t.lr_decay, t.decay_start) == (1e-4, (0.5, 0.999), 1e-4,
                                                                                       "linear", 0.5)
        assert (t.batch_size, t.max_steps, c.data.resize_margin, c.data.flip) == (1, 1_000_000, 30, True)
    assert digits.model.img_size == 32 and digits.data.root == "builtin:digits" and not digits.data.flip
    assert dis_sizes(digits.model) == (2, 14)


def test_check_input_size() -> None:
    model, _ = tiny()
    model.check_input_size(64)
    with pytest.raises(ConfigError):
        model.check_input_size(30)
    full, _ = tiny(light=False)
    full.check_input_size(32)
    with pytest.raises(ConfigError, match="full U-GAT-IT"):
        full.check_input_size(64)


def test_seeded_training_is_repeatable() -> None:
    states = []
    for _ in range(2):
        model, cfg = tiny()
        opts = build_optimizers(model, cfg.train)
        train_step(model, opts, batch(cfg))
        states.append(copy.deepcopy(model.state_dict()))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
