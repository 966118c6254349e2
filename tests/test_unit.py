"""UNIT (NIPS-paper network, official branch version_02): sizes, weight sharing, the latent, losses, DA mode.

The model contract (translate, phases, state dicts, exact resume) is tested for every model in tests/test_models.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from nicegan.config import RunConfig, resolve_config
from nicegan.errors import ConfigError, NiceganError
from nicegan.models.base import ClassifierModel
from nicegan.models.unit import UNIT, UNITConfig
from nicegan.training.optim import build_optimizers
from tests.conftest import tiny_model, tiny_overrides


def tiny(*extra: str) -> tuple[UNIT, RunConfig]:
    """The tiny UNIT (``UNITConfig.tiny``: every block kind present, 3 D convs) plus ``extra``, seeded."""
    return tiny_model("unit", *extra)


def images(n: int = 2, size: int = 32, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "b": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "a_label": torch.randint(0, 10, (n,), generator=g), "b_label": torch.randint(0, 10, (n,), generator=g)}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- sizes ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("generator", ["COCOResGen", "COCOResGen2"])
def test_parameter_counts_equal_the_official_networks(generator: str) -> None:
    with torch.device("meta"):
        m = UNIT(UNITConfig(generator=generator))
    gen = m.nets["gen"]
    assert count(gen) == 18_017_286
    assert count(gen.encode_A) == count(gen.encode_B) == 3_918_976
    assert count(gen.decode_A) == count(gen.decode_B) == 3_909_507
    assert count(gen.enc_shared) == 1_180_160 and count(gen.dec_shared) == 1_180_160
    assert m.num_parameters("dis_a") == m.num_parameters("dis_b") == 25_149_057
    assert m.num_parameters() == 68_315_400
    assert set(m.nets) == {"gen", "dis_a", "dis_b"}


def test_shapes_at_256_on_meta() -> None:
    with torch.device("meta"):
        m = UNIT(UNITConfig()).eval()
        x = torch.empty(1, 3, 256, 256)
        assert m.encode(x, "a").shape == (1, 256, 64, 64)
        assert m.translate(x, "a2b").shape == (1, 3, 256, 256)
        assert m.nets["dis_b"](x).shape == (1, 1, 4, 4)  # official COCODis at 256: a 4 x 4 logit map


def test_official_state_dict_keys() -> None:
    with torch.device("meta"):
        m = UNIT(UNITConfig())
    gen_keys, dis_keys = set(m.nets["gen"].state_dict()), set(m.nets["dis_a"].state_dict())
    for key in ("encode_A.0.model.0.weight", "encode_B.2.model.0.bias", "encode_A.5.model.3.weight",
                "enc_shared.0.model.0.weight", "dec_shared.0.model.3.bias", "decode_A.3.model.0.weight",
                "decode_B.4.model.0.bias", "decode_B.5.weight"):
        assert key in gen_keys, key
    assert not any(k.startswith(("enc_a", "enc_b", "dec_a", "dec_b", "noise")) for k in gen_keys), "no alias keys"
    assert {"model.0.model.0.weight", "model.5.model.0.weight", "model.6.weight", "model.6.bias"} <= dis_keys


def test_conv_weights_start_normal_002() -> None:
    torch.manual_seed(0)
    m = UNIT(UNITConfig(img_size=32, ch=16, n_dis_layer=4))
    for w in (m.nets["gen"].enc_shared[0].model[0].weight, m.nets["gen"].decode_B[3].model[0].weight,
              m.nets["dis_a"].model[3].model[0].weight):
        w = w.detach()
        assert abs(float(w.std()) - 0.02) < 0.0015 and abs(float(w.mean())) < 0.002


# --- the shared latent space ----------------------------------------------------------------------------------------


def test_shared_blocks_are_one_module_used_by_both_domains() -> None:
    m, _ = tiny()
    gen = m.nets["gen"]
    assert gen.encoder("a") is not gen.encoder("b") and gen.decoder("a") is not gen.decoder("b")
    calls: list[str] = []
    gen.enc_shared.register_forward_hook(lambda mod, i, o: calls.append(f"enc_shared:{id(mod)}"))
    gen.dec_shared.register_forward_hook(lambda mod, i, o: calls.append(f"dec_shared:{id(mod)}"))
    m.eval()
    x = images()["a"]
    with torch.no_grad():
        m.translate(x, "a2b")
        m.translate(x, "b2a")
    assert calls == [f"enc_shared:{id(gen.enc_shared)}", f"dec_shared:{id(gen.dec_shared)}"] * 2
    # Shared parameters are counted once: both domains' paths own the same tensors.
    per_domain = count(gen.encode_A) + count(gen.encode_B) + count(gen.decode_A) + count(gen.decode_B)
    assert count(gen) == per_domain + count(gen.enc_shared) + count(gen.dec_shared)


def test_latent_is_noisy_in_training_and_the_mean_in_eval() -> None:
    m, _ = tiny()
    gen = m.nets["gen"]
    x = images(4)["b"]
    m.eval()
    with torch.no_grad():
        mu = gen.enc_shared(gen.encode_B(x))
        assert torch.equal(m.encode(x, "b"), mu)
        assert torch.equal(m.translate(x, "b2a"), gen.decode_A(gen.dec_shared(mu)))
        assert torch.equal(m.decode(mu, "b"), gen.decode_B(gen.dec_shared(mu)))
    m.train()
    with torch.no_grad():
        eps = m.encode(x, "b") - mu  # z = mu + N(0, I): unit variance, zero mean
    assert abs(float(eps.std()) - 1.0) < 0.1 and abs(float(eps.mean())) < 0.1
    assert not torch.equal(m.encode(x, "b"), m.encode(x, "b"))


def test_visuals_rows() -> None:
    m, _ = tiny()
    m.eval()
    x = images()["a"]
    with torch.no_grad():
        vis = m.visuals(x, "a2b")
        assert list(vis) == ["real", "recon", "fake", "cycle"] and vis["real"] is x
        assert torch.equal(vis["fake"], m.translate(x, "a2b"))
        assert torch.equal(vis["cycle"], m.translate(vis["fake"], "b2a"))
        assert torch.equal(vis["recon"], m.decode(m.encode(x, "a"), "a"))


# --- losses ---------------------------------------------------------------------------------------------------------


def test_generator_loss_is_the_official_formula() -> None:
    m, cfg = tiny()
    gen, w = m.nets["gen"], cfg.model
    b = images()
    a, bb = b["a"], b["b"]
    m.train()
    torch.manual_seed(5)
    loss, logs = m.phases["gen"].loss(b)
    torch.manual_seed(5)  # the same noise draws, by hand
    with torch.no_grad():
        mu = gen.enc_shared(torch.cat([gen.encode_A(a), gen.encode_B(bb)]))
        h = gen.dec_shared(mu + torch.randn_like(mu))
        x_aa, x_ba = gen.decode_A(h).chunk(2)
        x_ab, x_bb = gen.decode_B(h).chunk(2)
        mu2 = gen.enc_shared(torch.cat([gen.encode_B(x_ab), gen.encode_A(x_ba)]))
        h2 = gen.dec_shared(mu2 + torch.randn_like(mu2))
        x_aba, x_bab = gen.decode_A(h2[:2]), gen.decode_B(h2[2:])
        ones = lambda t: torch.ones_like(t)
        expect = {
            "recon_a": F.l1_loss(x_aa, a), "recon_b": F.l1_loss(x_bb, bb),
            "adv_a": F.binary_cross_entropy(torch.sigmoid(m.nets["dis_a"](x_ba)), ones(m.nets["dis_a"](x_ba))),
            "adv_b": F.binary_cross_entropy(torch.sigmoid(m.nets["dis_b"](x_ab)), ones(m.nets["dis_b"](x_ab))),
            "kl_a": mu[:2].pow(2).mean(), "kl_b": mu[2:].pow(2).mean(),
            "cycle_a": F.l1_loss(x_aba, a), "cycle_b": F.l1_loss(x_bab, bb),
            "kl_cycle_a": mu2[:2].pow(2).mean(), "kl_cycle_b": mu2[2:].pow(2).mean(),
        }
    assert set(logs) == set(expect)
    for k, v in expect.items():
        torch.testing.assert_close(logs[k].detach(), v, msg=k)
    weight = {"recon": w.recon_weight, "adv": w.adv_weight, "kl": w.kl_weight, "cycle": w.cycle_weight,
              "kl_cycle": w.kl_cycle_weight}
    total = sum(weight[k.rsplit("_", 1)[0]] * v for k, v in expect.items())
    torch.testing.assert_close(loss.detach(), total)
    assert (w.adv_weight, w.recon_weight, w.cycle_weight, w.kl_weight, w.kl_cycle_weight) == (10, 100, 100, .1, .1)


def test_discriminator_is_vanilla_gan_on_real_and_translated() -> None:
    m, cfg = tiny()
    for name in ("dis_a", "dis_b"):  # logits 0 everywhere: every BCE term is log 2
        last = m.nets[name].model[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    m.train()
    loss, logs = m.phases["dis"].loss(images())
    assert set(logs) == {"adv_a", "adv_b"}
    torch.testing.assert_close(logs["adv_a"].detach(), torch.tensor(2 * math.log(2)))
    torch.testing.assert_close(loss.detach(), torch.tensor(cfg.model.adv_weight * 4 * math.log(2)))
    _, logs = m.phases["gen"].loss(images())
    torch.testing.assert_close(logs["adv_b"].detach(), torch.tensor(math.log(2)))


def test_zero_weights_remove_terms() -> None:
    m, _ = tiny("model.cycle_weight=0", "model.kl_cycle_weight=0", "model.recon_weight=0")
    m.train()
    loss, logs = m.phases["gen"].loss(images())
    assert set(logs) == {"adv_a", "adv_b", "kl_a", "kl_b"}
    loss.backward()


# --- domain adaptation ------------------------------------------------------------------------------------------------


def test_domain_adaptation_mode_trains_a_classifier_on_the_shared_code() -> None:
    plain, _ = tiny()
    assert not isinstance(plain, ClassifierModel) and "cls" not in plain.nets
    assert not hasattr(plain, "classify"), "the classify capability exists in domain-adaptation mode only"

    m, cfg = tiny("model.cls_weight=10")
    assert isinstance(m, ClassifierModel)
    assert {k: p.nets for k, p in m.phases.items()} == {"dis": ("dis_a", "dis_b"), "gen": ("gen", "cls")}
    assert m.inference_nets == m.translation_nets() == ("gen", "cls")
    for other in (plain, tiny()[0]):  # a plain model's phases stay those of translation
        assert other.phases["gen"].nets == ("gen",) and other.translation_nets() == ("gen",)
        assert not isinstance(other, ClassifierModel)
    opts = build_optimizers(m, cfg.train)
    b = images()
    before = copy.deepcopy(m.nets["cls"].state_dict())
    dis_before = copy.deepcopy(m.nets["dis_a"].state_dict())
    m.train()
    for name, net in m.nets.items():
        net.requires_grad_(name in m.phases["gen"].nets)
    loss, logs = m.phases["gen"].loss(b)
    assert "cls_a" in logs
    loss.backward()
    assert all(p.grad is not None for p in m.nets["cls"].parameters())
    opts["gen"].step()
    assert not torch.equal(before["fc.weight"], m.nets["cls"].fc.weight)
    assert all(torch.equal(v, m.nets["dis_a"].state_dict()[k]) for k, v in dis_before.items())
    m.eval()
    with torch.no_grad():
        for domain in ("a", "b"):
            logits = m.classify(b[domain], domain)
            assert logits.shape == (2, 10) and torch.isfinite(logits).all()
            torch.testing.assert_close(logits, m.nets["cls"](m.encode(b[domain], domain)))
    with pytest.raises(NiceganError, match="a_label"):
        m.train().phases["gen"].loss({"a": b["a"], "b": b["b"]})


def test_domain_adaptation_head_sees_the_layout_of_the_code() -> None:
    # The KL term drives every channel's spatial mean of the code to ~0 in training, so a head on pooled channel
    # means gets no signal (it stayed at chance on digits). Two codes with equal channel means but different
    # layouts must get different logits.
    m, cfg = tiny("model.cls_weight=10")
    c, s = cfg.model.latent_ch, cfg.model.latent_size
    z = torch.randn(1, c, s, s, generator=torch.Generator().manual_seed(0))
    z = z - z.mean(dim=(2, 3), keepdim=True)
    with torch.no_grad():
        assert m.nets["cls"](z).shape == (1, 10)
        assert not torch.allclose(m.nets["cls"](z), m.nets["cls"](z.flip(-1)), atol=1e-4)
    with pytest.raises(NiceganError, match="32 x 32"):
        m.eval().classify(torch.zeros(1, 3, 64, 64), "a")


# --- config and presets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "key"), [
    (["model.n_dis_layer=6"], "model.n_dis_layer"),  # 6 stride-2 convs need >= 64 px
    (["model.img_size=30"], "model.img_size"),
    (["model.generator=COCOResGen3"], "model.generator"),
    (["model.res_dropout=1.0"], "model.res_dropout"),
    (["model.kl_weight=-1"], "model.kl_weight"),
    (["model.adv_weight=0", "model.recon_weight=0", "model.cycle_weight=0"], "model.adv_weight"),
])
def test_config_errors_name_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve_config({}, tiny_overrides("unit", *overrides))


def test_check_input_size() -> None:
    m, _ = tiny()
    m.check_input_size(36)
    with pytest.raises(ConfigError, match="multiple of 4"):
        m.check_input_size(34)


def test_presets() -> None:
    paper = resolve_config("unit")
    assert paper.model == UNITConfig()
    t = paper.train
    assert (t.lr, t.betas, t.weight_decay, t.lr_decay, t.batch_size, t.max_steps) == (
        1e-4, (0.5, 0.999), 1e-4, "none", 1, 500_000)
    assert paper.data.resize_margin == 30 and paper.data.flip
    digits = resolve_config("unit-digits")
    assert digits.model.img_size == 32 and digits.data.root == "builtin:digits" and not digits.data.flip
    assert digits.model.cls_weight == 0 and digits.model.generator == "COCOResGen2"
    da = resolve_config("unit-digits-da")
    assert da.model.cls_weight > 0 and isinstance(UNIT(da.model), ClassifierModel)
