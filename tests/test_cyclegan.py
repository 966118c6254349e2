"""CycleGAN: official parameter counts and layouts, the image pool, the losses, presets.

The model contract (translate, phases, state dicts, exact resume) is tested for every model in tests/test_models.py.
"""

from __future__ import annotations

import copy
import io
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nicegan.models.cyclegan as cg
from nicegan.configs.schema import resolve_config
from nicegan.core.errors import ConfigError
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.conftest import straight_and_resumed, tiny_model, tiny_overrides


def tiny(*extra: str) -> cg.CycleGAN:
    """The tiny CycleGAN (``CycleGANConfig.tiny``: 32 px) plus ``extra`` overrides, seeded."""
    return tiny_model("cyclegan", *extra)[0]


def images(n: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


# --- networks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_blocks", "gen", "total"), [(9, 11_378_179, 28_285_832), (6, 7_837_699, 21_204_872)])
def test_parameter_counts_match_the_official_networks(n_blocks: int, gen: int, total: int) -> None:
    with torch.device("meta"):
        m = cg.CycleGAN(cg.CycleGANConfig(n_blocks=n_blocks))
    assert {k: m.num_parameters(k) for k in m.nets} == {"gen_a2b": gen, "gen_b2a": gen,
                                                         "dis_a": 2_764_737, "dis_b": 2_764_737}
    assert m.num_parameters() == total


def test_official_layouts_and_output_shapes_at_256() -> None:
    with torch.device("meta"):
        m = cg.CycleGAN(cg.CycleGANConfig())
        x = torch.empty(1, 3, 256, 256)
        assert m.nets["dis_a"](x).shape == (1, 1, 30, 30)
        assert m.translate(x, "a2b").shape == (1, 3, 256, 256)
    g = m.nets["gen_a2b"].state_dict()
    # Official key names: conv1, two downsamplings, 9 blocks at 10..18, transposed convs at 19/22, last conv at 26.
    assert list(g)[:6] == ["model.1.weight", "model.1.bias", "model.4.weight", "model.4.bias", "model.7.weight",
                           "model.7.bias"]
    assert {"model.10.conv_block.1.weight", "model.18.conv_block.5.bias", "model.19.weight", "model.22.weight",
            "model.26.bias"} <= set(g)
    assert list(m.nets["dis_b"].state_dict()) == [f"model.{i}.{p}" for i in (0, 2, 5, 8, 11)
                                                   for p in ("weight", "bias")]
    norms = [mod for mod in m.modules() if isinstance(mod, nn.InstanceNorm2d)]
    assert norms and all(not n.affine and not n.track_running_stats for n in norms)
    assert not any(isinstance(mod, nn.Dropout) for mod in m.modules())
    assert m.cfg.n_blocks == 9 and m.inference_nets == m.translation_nets() == ("gen_a2b", "gen_b2a")
    assert list(m.phases) == ["gen", "dis"], "official order: G step (D frozen), then D step"


def test_init_is_normal_002_with_zero_biases() -> None:
    torch.manual_seed(0)
    d = cg.NLayerDiscriminator(3, 64, 3)
    cg.init_normal(d, 0.02)
    w = torch.cat([m.weight.detach().flatten() for m in d.modules() if isinstance(m, nn.Conv2d)])
    assert abs(float(w.std()) - 0.02) < 5e-4 and abs(float(w.mean())) < 5e-4
    assert all(not m.bias.detach().any() for m in d.modules() if isinstance(m, nn.Conv2d))


def test_tiny_shapes_and_patch_sizes() -> None:
    m = tiny()
    x = images(2)
    with torch.no_grad():
        assert m.nets["dis_b"](x).shape == (2, 1, 2, 2)  # 32 -> 16 -> 8 -> 4 -> 3 -> 2
        assert m.translate(x, "b2a").shape == x.shape
    assert cg.patch_size(256, 3) == 30 and cg.patch_size(32, 3) == 2 and cg.patch_size(24, 3) == 1


@pytest.mark.parametrize(("override", "match"), [
    ("model.img_size=30", "model.img_size must be a multiple of 4"),
    ("model.img_size=20", "too small for the PatchGAN with n_layers_d 3.*img_size >= 24"),
    ("model.n_layers_d=4", "too small for the PatchGAN with n_layers_d 4"),
    ("model.ngf=0", "model.ngf"),
    ("model.pool_size=-1", "model.pool_size"),
    ("model.lambda_identity=-0.5", "model.lambda_identity"),
    ("model.init_gain=0", "model.init_gain"),
])
def test_bad_configs_raise_config_errors(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_config("cyclegan", tiny_overrides("cyclegan", override))
    with pytest.raises(ConfigError, match="no loss"):
        resolve_config("cyclegan", ["model.adv_weight=0", "model.lambda_a=0", "model.lambda_b=0"])


def test_check_input_size() -> None:
    m = tiny()
    m.check_input_size(36)
    for bad in (30, 4):
        with pytest.raises(ConfigError, match="multiple of 4 and at least 8"):
            m.check_input_size(bad)


# --- image pool ---------------------------------------------------------------------------------------------------


def test_pool_fills_to_its_size_then_returns_the_new_or_a_stored_image() -> None:
    pool = cg.ImagePool(50)
    # Images are constant tensors carrying their serial number: what comes back shows where it came from.
    for i in range(0, 50, 5):
        batch = torch.arange(i, i + 5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 3, 2, 2)
        assert torch.equal(pool.query(batch), batch), "a pool that is not full returns its input"
    assert len(pool.images) == 50
    random.seed(3)
    stored, swaps = {float(t[0, 0, 0]) for t in pool.images}, 0
    for i in range(50, 250):
        before = {float(t[0, 0, 0]) for t in pool.images}
        out = float(pool.query(torch.full((1, 3, 2, 2), float(i)))[0, 0, 0, 0])
        after = {float(t[0, 0, 0]) for t in pool.images}
        assert len(pool.images) == 50
        if out == i:
            assert after == before, "the new image is returned and not stored"
        else:
            swaps += 1
            assert out in before and after == before - {out} | {i}, "a stored image is swapped for the new one"
        stored |= after
    assert 70 < swaps < 130, swaps  # probability 0.5 per image
    # The draws are the official ones: uniform(0, 1) > 0.5, then randint(0, size - 1), Python's random.
    random.seed(7)
    expected = [random.randint(0, 49) if random.uniform(0, 1) > 0.5 else -1 for _ in range(20)]
    random.seed(7)
    for j in range(20):
        snapshot = [t.clone() for t in pool.images]
        out = pool.query(torch.full((1, 3, 2, 2), -1.0 - j))
        if expected[j] < 0:
            assert float(out[0, 0, 0, 0]) == -1.0 - j
        else:
            assert torch.equal(out[0], snapshot[expected[j]]) and float(pool.images[expected[j]][0, 0, 0]) == -1 - j


def test_pool_of_size_zero_passes_images_through() -> None:
    pool, x = cg.ImagePool(0), images(3)
    assert pool.query(x) is x and pool.state().numel() == 0


def test_pools_round_trip_through_a_weights_only_checkpoint() -> None:
    m = tiny("model.pool_size=4")
    b = {"a": images(3, seed=1), "b": images(3, seed=2)}
    for _ in range(2):
        m.phases["gen"].loss(b)
        m.phases["dis"].loss(b)
    state = m.extra_state()
    assert state["pool_a"].shape == (4, 3, 32, 32) and state["pool_b"].shape == (4, 3, 32, 32)
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    other = tiny("model.pool_size=4")
    other.load_extra_state(loaded)
    for k in ("pool_a", "pool_b"):
        assert torch.equal(other.extra_state()[k], state[k])
    # Same Python random state -> the same draws and the same discriminator losses.
    other.load_state_dict(m.state_dict())
    losses = []
    for model in (m, other):
        random.seed(11)
        model.phases["gen"].loss(b)
        losses.append(model.phases["dis"].loss(b)[1])
    assert all(torch.equal(losses[0][k], losses[1][k]) for k in losses[0])
    empty = tiny()
    empty.load_extra_state({})
    assert empty.extra_state()["pool_a"].numel() == 0


def test_four_steps_equal_two_plus_resume_plus_two(tiny_data: Path, tmp_path: Path) -> None:
    # A pool of 3 at batch 2 is full after two steps, so the resumed half swaps images from the restored pool.
    cfg = resolve_config("cyclegan", tiny_overrides("cyclegan", f"data.root={tiny_data}", "data.resize_margin=4",
                                                    "model.pool_size=3", "train.batch_size=2", "train.max_steps=4",
                                                    "train.sample_every=0", "train.ckpt_every=2", "train.log_every=1"))
    a, b = straight_and_resumed(cfg, tmp_path, stop_at=2)
    for k in ("pool_a", "pool_b"):
        assert a.model_extra[k].shape[0] == 3 and torch.equal(a.model_extra[k], b.model_extra[k])


# --- losses -------------------------------------------------------------------------------------------------------


def test_generator_loss_is_the_official_sum() -> None:
    m, cfg = tiny_model("cyclegan")
    stepped = copy.deepcopy(m)
    a, b = images(2, seed=1), images(2, seed=2)
    loss, logs = m.phases["gen"].loss({"a": a, "b": b})
    g_ab, g_ba, d_a, d_b = (m.nets[k] for k in ("gen_a2b", "gen_b2a", "dis_a", "dis_b"))
    with torch.no_grad():
        fake_b, fake_a = g_ab(a), g_ba(b)
        assert torch.allclose(logs["adv_b"], F.mse_loss(d_b(fake_b), torch.ones_like(d_b(fake_b))))
        assert torch.allclose(logs["adv_a"], F.mse_loss(d_a(fake_a), torch.ones_like(d_a(fake_a))))
        assert torch.allclose(logs["cycle_a"], F.l1_loss(g_ba(fake_b), a))
        assert torch.allclose(logs["cycle_b"], F.l1_loss(g_ab(fake_a), b))
        assert torch.allclose(logs["identity_b"], F.l1_loss(g_ab(b), b))
        assert torch.allclose(logs["identity_a"], F.l1_loss(g_ba(a), a))
    expected = (logs["adv_b"] + logs["adv_a"] + 10 * (logs["cycle_a"] + logs["cycle_b"])
                + 5 * (logs["identity_b"] + logs["identity_a"]))  # identity: 0.5 x lambda 10
    assert torch.allclose(loss, expected)
    # The training step (G phase first, as here) logs this loss as gen/total and the same terms.
    step_logs = train_step(stepped, build_optimizers(stepped, cfg.train), {"a": a, "b": b})
    assert torch.equal(step_logs["gen/total"], loss.detach())
    assert all(torch.equal(step_logs[f"gen/{k}"], v.detach()) for k, v in logs.items())
    _, logs = tiny("model.lambda_identity=0").phases["gen"].loss({"a": a, "b": b})
    assert "identity_a" not in logs and "cycle_a" in logs


def test_discriminator_phase_uses_the_fakes_of_the_generator_phase() -> None:
    m = tiny("model.pool_size=0")
    batch = {"a": images(2, seed=1), "b": images(2, seed=2)}
    m.phases["gen"].loss(batch)
    with torch.no_grad():
        fake_b, fake_a = m.nets["gen_a2b"](batch["a"]), m.nets["gen_b2a"](batch["b"])
        for p in m.nets["gen_a2b"].parameters():  # stands for the generator update between the phases
            p.add_(0.05)
    loss, logs = m.phases["dis"].loss(batch)
    d_a, d_b = m.nets["dis_a"], m.nets["dis_b"]

    def lsgan(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        pr, pf = d(real), d(fake)
        return 0.5 * (F.mse_loss(pr, torch.ones_like(pr)) + F.mse_loss(pf, torch.zeros_like(pf)))

    with torch.no_grad():
        assert torch.allclose(logs["adv_b"], lsgan(d_b, batch["b"], fake_b))
        assert torch.allclose(logs["adv_a"], lsgan(d_a, batch["a"], fake_a))
        assert torch.allclose(loss, logs["adv_a"] + logs["adv_b"])
        # Without a generator phase for this batch, the current generators translate it.
        _, logs2 = m.phases["dis"].loss(batch)
        assert torch.allclose(logs2["adv_b"], lsgan(d_b, batch["b"], m.nets["gen_a2b"](batch["a"])))
        assert not torch.allclose(logs2["adv_b"], logs["adv_b"])


def test_visuals_rows() -> None:
    m = tiny().eval()
    x = images(2)
    with torch.no_grad():
        vis = m.visuals(x, "a2b")
        assert list(vis) == ["real", "fake", "cycle", "identity"] and vis["real"] is x
        assert torch.equal(vis["fake"], m.nets["gen_a2b"](x))
        assert torch.equal(vis["cycle"], m.nets["gen_b2a"](vis["fake"]))
        assert torch.equal(vis["identity"], m.nets["gen_b2a"](x))


# --- presets ------------------------------------------------------------------------------------------------------


def test_presets_resolve() -> None:
    cfg = resolve_config("cyclegan")
    assert cfg.model_name == "cyclegan" and cfg.model == cg.CycleGANConfig()
    t = cfg.train
    assert (t.lr, t.betas, t.weight_decay, t.batch_size, t.lr_decay) == (2e-4, (0.5, 0.999), 0.0, 1, "linear")
    assert (t.max_steps, t.decay_start) == (200_000, 0.5)
    assert (cfg.data.resize_margin, cfg.data.flip) == (30, True)
    d = resolve_config("cyclegan-digits")
    assert d.model.img_size == 32 and d.data.root == "builtin:digits" and not d.data.flip
    assert d.data.resize_margin == 4 and d.train.batch_size == 8
    assert cg.patch_size(d.model.img_size, d.model.n_layers_d) == 2
