"""DRIT / DRIT++: official sizes and keys, the d_iter schedule as phases with shared optimizers, style codes, the
mode-seeking switch, and the generic phase options (shared optimizer, LR scale, gradient clipping) it relies on.

The model contract (shapes, phase isolation, round trip, exact resume) runs for every model in tests/test_models.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models.base import ModelConfig, Phase, StyleModel, TranslationModel
from nicegan.models.drit import DRIT, DRITConfig
from nicegan.training.optim import build_optimizers, set_lr
from nicegan.training.step import train_step
from tests.conftest import tiny_model


def images(n: int, size: int = 32, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "b": torch.rand(n, 3, size, size, generator=g) * 2 - 1}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- sizes and keys -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("concat", "enc_a", "gen", "total"), [(True, 2_688_160, 9_564_710, 65_039_315),
                                                               (False, 5_529_872, 17_146_374, 75_462_691)])
def test_parameter_counts_equal_the_official_networks(concat: bool, enc_a: int, gen: int, total: int) -> None:
    with torch.device("meta"):
        m = DRIT(DRITConfig(concat=concat))
    assert m.num_parameters("enc_c") == 9_018_112
    assert m.num_parameters("enc_a") == enc_a and m.num_parameters("gen") == gen
    for net in ("dis_a", "dis_b", "dis_a2", "dis_b2"):
        assert m.num_parameters(net) == 8_271_171
    assert m.num_parameters("dis_content") == 10_683_649
    assert m.num_parameters() == total
    if concat:
        assert m.num_parameters("enc_c") + enc_a + gen == 21_270_982  # the official generator side


def test_official_state_dict_keys_and_shapes_at_216() -> None:
    with torch.device("meta"):
        m = DRIT(DRITConfig()).eval()
        keys = {f"{n}.{k}" for n, net in m.nets.items() for k in net.state_dict()}
        for key in ("enc_c.convA.0.model.1.weight", "enc_c.convB.4.model.1.bias", "enc_c.conv_share.0.model.5.weight",
                    "enc_a.conv_A.2.conv.4.1.weight", "enc_a.conv_B.4.shortcut.1.bias", "enc_a.fcVar_A.0.weight",
                    "gen.dec_share.0.model.1.weight", "gen.decA1.2.model.5.weight", "gen.decB2.0.model.1.weight",
                    "gen.decB4.0.weight", "dis_a2.Diss.2.3.model.1.weight", "dis_content.model.4.weight"):
            assert key in keys, key
        x = torch.empty(1, 3, 216, 216)
        content = m.nets["enc_c"](x, "a")
        assert content.shape == (1, 256, 54, 54)
        assert m.nets["dis_content"](content).shape == (1, 1, 1, 1)  # official: one logit per code at 216
        assert [o.shape[-1] for o in m.nets["dis_b"](x)] == [13, 6, 3]
        assert m.translate(x, "a2b", torch.zeros(1, 8)).shape == (1, 3, 216, 216)
    with torch.device("meta"):
        g = DRIT(DRITConfig(concat=False)).nets["gen"]
    assert {"mlpA.4.weight", "decA3.blk2.2.weight", "decB5.2.weight"} <= set(g.state_dict())


def test_small_sizes_are_refused_with_the_smallest_that_works() -> None:
    with pytest.raises(ConfigError, match=r"content discriminator .* img_size >= 212 or content_dis_layers 0"):
        DRITConfig(img_size=32, dis_layers=3).validate()
    with pytest.raises(ConfigError, match=r"image discriminators .* img_size >= 64"):
        DRITConfig(img_size=32, content_dis_layers=0).validate()
    DRITConfig(img_size=32, dis_layers=3, content_dis_layers=0).validate()  # the drit-digits networks
    with pytest.raises(ConfigError, match="multiple of 4"):
        DRITConfig(img_size=218).validate()


def test_content_dis_norm_adds_the_intended_instance_norm_without_parameters() -> None:
    with torch.device("meta"):
        plain, fixed = DRIT(DRITConfig()), DRIT(DRITConfig(content_dis_norm=True))
    norms = [m for m in fixed.nets["dis_content"].modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(isinstance(m, nn.InstanceNorm2d) for m in plain.nets["dis_content"].modules())
    assert fixed.num_parameters() == plain.num_parameters()


# --- the schedule: phases and optimizers ----------------------------------------------------------------------------


def test_one_step_is_one_official_d_iter_group() -> None:
    """d_iter 3: two content-D-only updates, then D, content D, EG, G-alone; the optimizers are the official ones."""
    model, cfg = tiny_model("drit", "model.d_iter=3")
    assert list(model.phases) == ["content_1", "content_2", "dis", "content", "eg", "g_alone"]
    opts = build_optimizers(model, cfg.train)
    assert set(opts) == {"dis_content", "dis", "gen"}
    set_lr(opts, 1, cfg.train)
    assert opts["dis_content"].param_groups[0]["lr"] == pytest.approx(cfg.train.lr * 0.4)  # official lr / 2.5
    assert opts["gen"].param_groups[0]["lr"] == cfg.train.lr
    before = {k: copy.deepcopy(v.state_dict()) for k, v in model.nets.items()}
    model.train()
    logs = train_step(model, opts, images(6))
    assert all(torch.isfinite(v) for v in logs.values())
    assert all(not torch.equal(v, model.nets[n].state_dict()[k]) for n in model.nets
               for k, v in before[n].items() if k.endswith("weight"))

    def steps(opt: torch.optim.Optimizer, net: str) -> set[int]:
        return {int(opt.state[p]["step"]) for p in model.nets[net].parameters()}

    # Shared Adam moments, as the official per-network optimizers: Dis_content stepped 3 times, enc_c and gen
    # twice (EG and G-alone), enc_a once (G-alone leaves it alone), the image Ds once.
    assert steps(opts["dis_content"], "dis_content") == {3}
    assert steps(opts["gen"], "enc_c") == steps(opts["gen"], "gen") == {2}
    assert steps(opts["gen"], "enc_a") == {1}
    assert steps(opts["dis"], "dis_a2") == {1}


def test_batches_must_split_into_d_iter_minibatches_of_two_halves() -> None:
    model, cfg = tiny_model("drit", "model.d_iter=3")
    with pytest.raises(NiceganError, match=r"train.batch_size to be a multiple of 2 x model.d_iter = 6.* got 4"):
        train_step(model, build_optimizers(model, cfg.train), images(4))


def test_each_d_iter_minibatch_feeds_its_phase() -> None:
    """The content-only phases see minibatches 1 .. d_iter-1 (encoded halves); the full update the last one."""
    model, _ = tiny_model("drit", "model.d_iter=3")
    model.train()
    b = images(6)
    seen: list[torch.Tensor] = []
    enc = model.nets["enc_c"]
    original = enc.forward

    def spy(x: torch.Tensor, domain: str) -> torch.Tensor:
        if domain == "a":
            seen.append(x)
        return original(x, domain)

    enc.forward = spy  # type: ignore[method-assign]
    for name in ("content_1", "content_2", "content"):
        model.phases[name].loss(b)
    assert [torch.equal(x, b["a"][i:i + 1]) for x, i in zip(seen, (0, 2, 4), strict=True)] == [True] * 3


# --- styles ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("concat", [True, False])
def test_style_codes(concat: bool) -> None:
    model, cfg = tiny_model("drit", f"model.concat={str(concat).lower()}")
    assert isinstance(model, StyleModel) and model.style_dim == 8
    model.eval()
    # At the N(0, 0.02) init a 4-channel attribute encoder maps every image to about its bias and the generator
    # barely reads z; PyTorch's default init makes both depend on their inputs, as trained networks do.
    for m in model.nets.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.reset_parameters()
    x = images(2)["a"]
    ref, other = torch.full((2, 3, 32, 32), 0.9), torch.full((2, 3, 32, 32), -0.9)  # a light and a dark reference
    ref[1, 0] = -0.5
    with torch.no_grad():
        torch.manual_seed(3)
        first = model.translate(x, "a2b")
        torch.manual_seed(3)
        assert torch.equal(first, model.translate(x, "a2b")), "same seed, same styles"
        torch.manual_seed(4)
        assert (first - model.translate(x, "a2b")).abs().max() > 1e-3, "another seed, other styles"
        z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
        assert torch.equal(model.translate(x, "a2b", z1), model.translate(x, "a2b", z1.clone()))
        assert (model.translate(x, "a2b", z1) - model.translate(x, "a2b", z2)).abs().max() > 1e-3
        # Example-guided: the reference's attribute code (mu, deterministic) drives the translation.
        code = model.encode_style(ref, "b")
        assert code.shape == (2, 8) and torch.equal(code, model.encode_style(ref, "b"))
        guided = model.translate(x, "a2b", code)
        other_code = model.encode_style(other, "b")
        assert (code - other_code).abs().max() > 1e-3, "the references' codes differ"
        assert (guided - model.translate(x, "a2b", other_code)).abs().max() > 1e-5, "and so do the translations"
        one = model.translate(x, "a2b", code[:1])  # one code for the whole batch
        assert torch.allclose(one[0], guided[0], atol=1e-6)
        with pytest.raises(NiceganError, match="style codes must be"):
            model.translate(x, "a2b", torch.zeros(2, 5))
        with pytest.raises(NiceganError, match="at least 16"):
            model.encode_style(x[:, :, :8, :8], "b")


def test_mode_seeking_switch_changes_the_losses() -> None:
    b = images(2)
    terms = {}
    for ms in (True, False):
        model, _ = tiny_model("drit", f"model.mode_seeking={str(ms).lower()}")
        model.train()
        terms[ms] = set(model.g_alone_loss(b)[1])
        assert set(model.dis_loss(b)[1]) == {"adv_a", "adv_a2", "adv_b", "adv_b2"}
    assert terms[True] - terms[False] == {"mode_seeking_ab", "mode_seeking_ba", "adv_random2_a", "adv_random2_b"}
    assert terms[False] == {"adv_random_a", "adv_random_b", "latent_a", "latent_b"}


def test_visuals_do_not_touch_the_global_generator() -> None:
    model, _ = tiny_model("drit")
    model.eval()
    x = images(2)["a"]
    state = torch.random.get_rng_state()
    with torch.no_grad():
        rows = model.visuals(x, "b2a")
        again = model.visuals(x, "b2a")
    assert torch.equal(torch.random.get_rng_state(), state)
    assert list(rows) == ["real", "fake", "style_2", "style_3"] and torch.equal(rows["fake"], again["fake"])


# --- the generic phase options DRIT relies on -----------------------------------------------------------------------


class _Toy(TranslationModel):
    """Two phases sharing one optimizer (with an LR scale), the second with gradient clipping."""

    def __init__(self) -> None:
        super().__init__(ModelConfig(img_size=4))
        self.nets["a"], self.nets["b"] = nn.Linear(3, 1, bias=False), nn.Linear(3, 1, bias=False)
        big = lambda batch: (1000.0 * (self.nets["a"](batch["a"]) + self.nets["b"](batch["a"])).sum(), {})
        self.phases = {"one": Phase(("a",), big, optimizer="shared", lr_scale=0.5),
                       "two": Phase(("a", "b"), big, optimizer="shared", lr_scale=0.5, clip_grad_norm=2.0)}


def test_phases_share_an_optimizer_scale_its_lr_and_clip_their_gradients() -> None:
    from nicegan.configs.schema import TrainConfig

    model = _Toy()
    train = TrainConfig(lr=0.1, weight_decay=0.0, lr_decay="none")
    opts = build_optimizers(model, train)
    assert list(opts) == ["shared"] and len(opts["shared"].param_groups[0]["params"]) == 2
    assert opts["shared"].param_groups[0]["lr"] == pytest.approx(0.05)
    # Plain SGD (the optimizer's contract is the caller's): the step is lr x the clipped gradient.
    sgd = {"shared": torch.optim.SGD(list(model.nets.parameters()), lr=1.0)}
    sgd["shared"].lr_scale = 0.5  # type: ignore[attr-defined]
    set_lr(sgd, 1, train)
    assert sgd["shared"].param_groups[0]["lr"] == pytest.approx(0.05)
    b0 = model.nets["b"].weight.detach().clone()
    a1 = model.nets["a"].weight.detach().clone()
    grads: dict[str, torch.Tensor] = {}

    def record(params: list[nn.Parameter]) -> None:
        grads[str(len(grads))] = torch.cat([p.grad.flatten() for p in params]).clone()

    train_step(model, sgd, {"a": torch.ones(5, 3)}, reduce_grads=record)
    # Phase one moved a only (unclipped: 1000 x 5 per weight); phase two moved a and b by a step of norm 0.05 x 2.
    assert grads["0"].norm() > 100
    moved_b = (model.nets["b"].weight.detach() - b0).norm()
    assert moved_b > 0 and float(moved_b) < 0.1 + 1e-6
    assert not torch.equal(model.nets["a"].weight, a1)
    with pytest.raises(ValueError, match="not one lr_scale"):
        model.phases["two"] = model.phases["two"]._replace(lr_scale=1.0)
        build_optimizers(model, train)
