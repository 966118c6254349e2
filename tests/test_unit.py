"""UNIT (NIPS-paper network, official branch version_02): sizes, weight sharing, the latent, losses, and the
domain-adaptation networks (arch da32: CoVAE32x32 + CoDis32x32, the classifier path, resume).

The model contract (translate, phases, state dicts, exact resume) is tested for every model in tests/test_models.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from nicegan.configs.schema import RunConfig, resolve_config
from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models.base import ClassifierModel, LatentModel
from nicegan.models.unit import UNIT, CoDis32x32, CoVAE32x32, UNITConfig, xy_channels
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step
from tests.conftest import TINY_RUN, straight_and_resumed, tiny_model, tiny_overrides


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
        z = mu + torch.randn_like(mu)
        h = gen.dec_shared(z)
        x_aa, x_ba = gen.decode_A(h).chunk(2)
        x_ab, x_bb = gen.decode_B(h).chunk(2)
        mu2 = gen.enc_shared(torch.cat([gen.encode_B(x_ab), gen.encode_A(x_ba)]))
        z2 = mu2 + torch.randn_like(mu2)
        h2 = gen.dec_shared(z2)
        x_aba, x_bab = gen.decode_A(h2[:2]), gen.decode_B(h2[2:])
        ones = lambda t: torch.ones_like(t)
        expect = {
            "recon_a": F.l1_loss(x_aa, a), "recon_b": F.l1_loss(x_bb, bb),
            "adv_a": F.binary_cross_entropy(torch.sigmoid(m.nets["dis_a"](x_ba)), ones(m.nets["dis_a"](x_ba))),
            "adv_b": F.binary_cross_entropy(torch.sigmoid(m.nets["dis_b"](x_ab)), ones(m.nets["dis_b"](x_ab))),
            "kl_a": z[:2].pow(2).mean(), "kl_b": z[2:].pow(2).mean(),  # official: on the noisy code
            "cycle_a": F.l1_loss(x_aba, a), "cycle_b": F.l1_loss(x_bab, bb),
            "kl_cycle_a": z2[:2].pow(2).mean(), "kl_cycle_b": z2[2:].pow(2).mean(),
        }
        mean_form = {"kl_a": mu[:2].pow(2).mean(), "kl_b": mu[2:].pow(2).mean(),
                     "kl_cycle_a": mu2[:2].pow(2).mean(), "kl_cycle_b": mu2[2:].pow(2).mean()}
    assert set(logs) == set(expect)
    for k, v in expect.items():
        torch.testing.assert_close(logs[k].detach(), v, msg=k)
    weight = {"recon": w.recon_weight, "adv": w.adv_weight, "kl": w.kl_weight, "cycle": w.cycle_weight,
              "kl_cycle": w.kl_cycle_weight}
    total = sum(weight[k.rsplit("_", 1)[0]] * v for k, v in expect.items())
    torch.testing.assert_close(loss.detach(), total)
    assert (w.adv_weight, w.recon_weight, w.cycle_weight, w.kl_weight, w.kl_cycle_weight) == (10, 100, 100, .1, .1)
    assert w.kl_on == "noisy"  # the official form is the default
    # kl_on=mean: the same draws, the KL terms on the mean instead
    m.cfg.kl_on = "mean"
    torch.manual_seed(5)
    _, logs = m.phases["gen"].loss(b)
    for k, v in {**expect, **mean_form}.items():
        torch.testing.assert_close(logs[k].detach(), v, msg=k)


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


# --- domain adaptation (arch da32: the official CoVAE32x32 + CoDis32x32) ------------------------------------------

#: the tiny DA model: the tiny widths with the DA networks and the official DA weights
DA = ("model.arch=da32", "model.adv_weight=1", "model.recon_weight=1e-3", "model.kl_weight=1e-4",
      "model.cycle_weight=0", "model.kl_cycle_weight=0", "model.cls_weight=10", "model.feat_weight=1e-4")


def test_da_parameter_counts_equal_the_official_networks() -> None:
    # svhn2mnist.yaml: gen_ch 96, dis_ch 64, SVHN 3 channels, MNIST 1 channel (+ 2 xy channels into G).
    with torch.device("meta"):
        gen, dis = CoVAE32x32(96, 3, 1), CoDis32x32(64, 3, 1, 10)
        model = UNIT(resolve_config("unit-digits-da", ["model.ch=96", "model.dis_ch=64"]).model)
    assert count(gen) == 22_606_468 and count(dis) == 4_332_812
    assert count(gen.g_en_conv0_a) == 12_192 and count(dis.conv_cl) == 20_490
    # Both domains RGB in the toolkit: B's first and last layers are wider by exactly the two extra channels.
    assert model.num_parameters("gen") == 22_606_468 + 2 * 25 * 96 + 2 * 96 + 2
    assert model.num_parameters("dis") == 4_332_812 + 2 * 25 * 64
    assert set(model.nets) == {"gen", "dis"}


def test_da_official_state_dict_keys() -> None:
    with torch.device("meta"):
        gen, dis = CoVAE32x32(8, 3, 1), CoDis32x32(8, 3, 1, 10)
    for key in ("g_en_conv0_a.model.0.weight", "g_en_conv0_b.model.2.bias", "g_en_conv2.model.1.running_mean",
                "g_vae.en_mu.weight", "g_vae.en_sigma.bias", "g_de_conv0.model.0.weight", "g_de_conv3_b.model.2.bias",
                "de_conv4_a.weight", "de_conv4_b.bias"):
        assert key in gen.state_dict(), key
    assert set(dis.state_dict()) == {f"{n}.{p}" for n in ("conv0_a.0", "conv0_b.0", "conv1.0", "conv2.0", "conv3.0",
                                                         "conv4", "conv_cl") for p in ("weight", "bias")}


def test_xy_channels_are_the_official_coordinate_image() -> None:
    xy = xy_channels(32, torch.zeros(1))
    assert xy.shape == (2, 32, 32)
    assert torch.equal(xy[0, :, 0], (torch.arange(32) - 16) / 16) and torch.equal(xy[0, 5], xy[0, 5, :1].expand(32))
    assert torch.equal(xy[1], xy[0].T) and float(xy.min()) == -1 and float(xy.max()) == 15 / 16
    m, _ = tiny(*DA)
    seen = []
    m.nets["gen"].g_en_conv0_b.register_forward_hook(lambda mod, i, o: seen.append(i[0]))
    x = images()["b"]
    m.eval()
    with torch.no_grad():
        m.translate(x, "b2a")
    assert seen[0].shape == (2, 5, 32, 32) and torch.equal(seen[0][:, :3], x) and torch.equal(seen[0][1, 3:], xy)


def test_da_mode_is_a_classifier_model_with_its_own_networks() -> None:
    plain, _ = tiny()
    assert not isinstance(plain, ClassifierModel) and not hasattr(plain, "classify")
    m, _ = tiny(*DA)
    assert isinstance(m, ClassifierModel) and isinstance(m, LatentModel)
    assert {k: p.nets for k, p in m.phases.items()} == {"dis": ("dis",), "gen": ("gen",)}
    assert m.inference_nets == m.translation_nets() == ("gen", "dis")
    m.eval()
    x = images()["a"]
    with torch.no_grad():
        assert m.encode(x, "a").shape == (2, 32, 1, 1)  # ch * 8 x 1 x 1 (tiny ch 4)
        assert torch.equal(m.encode(x, "a"), m.encode(x, "a"))  # eval: the mean
        y = m.translate(x, "a2b")
        assert y.shape == x.shape and float(y.abs().max()) <= 1
        assert list(m.visuals(x, "a2b")) == ["real", "recon", "fake", "cycle"]
    m.train()
    assert not torch.equal(m.encode(x, "a"), m.encode(x, "a"))  # training: mu + sd * eps


def test_classify_b_is_b_first_layer_then_shared_layers_then_head() -> None:
    m, _ = tiny(*DA)
    dis = m.nets["dis"]
    x = images(3)["b"]
    m.eval()
    with torch.no_grad():
        expect = dis.conv_cl(dis.conv3(dis.conv2(dis.conv1(dis.conv0_b(x))))).flatten(1)
        logits_b, logits_a = m.classify(x, "b"), m.classify(x, "a")
        torch.testing.assert_close(logits_b, expect, rtol=0, atol=0)
        assert logits_b.shape == (3, 10)
        # Nothing outside that path matters: A's first block, the real/fake head, the generator.
        for p in [*dis.conv0_a.parameters(), *dis.conv4.parameters(), *m.nets["gen"].parameters()]:
            p.add_(torch.randn_like(p))
        assert torch.equal(m.classify(x, "b"), logits_b)
        assert not torch.equal(m.classify(x, "a"), logits_a)
        dis.conv0_b[0].weight.add_(1.0)  # ... and B's first block does
        assert not torch.equal(m.classify(x, "b"), logits_b)
    with pytest.raises(NiceganError, match="32 x 32"):
        m.classify(torch.zeros(1, 3, 64, 64), "b")
    with pytest.raises(ConfigError, match="32 x 32"):
        m.check_input_size(64)


def test_da_losses_are_the_official_formulas() -> None:
    m, cfg = tiny(*DA)
    gen, dis, w = m.nets["gen"], m.nets["dis"], cfg.model
    for p in (dis.dropout0, dis.dropout1, dis.dropout2, dis.dropout3):
        p.p = 0.0  # dropout off: the heads then read the same features as feature matching
    b = images(2)
    a, bb, la = b["a"], b["b"], b["a_label"]
    m.train()
    ce = lambda logits, y: F.cross_entropy(logits, torch.full((logits.shape[0],), y))
    xy = xy_channels(32, a).expand(2, -1, -1, -1)

    def forward() -> tuple[torch.Tensor, ...]:  # the official CoVAE32x32.forward with the context trainer's input
        h = torch.cat([gen.g_en_conv0_a.model(torch.cat([a, xy], 1)), gen.g_en_conv0_b.model(torch.cat([bb, xy], 1))])
        h3 = gen.g_en_conv3(gen.g_en_conv2(gen.g_en_conv1(h)))
        mu, sd = gen.g_vae.en_mu(h3), F.softplus(gen.g_vae.en_sigma(h3))
        d = gen.g_de_conv2(gen.g_de_conv1(gen.g_de_conv0(mu + sd * torch.randn_like(mu))))
        out_a = torch.tanh(gen.de_conv4_a(gen.g_de_conv3_a(d)))
        out_b = torch.tanh(gen.de_conv4_b(gen.g_de_conv3_b(d)))
        return (*out_a.chunk(2), *out_b.chunk(2), mu, sd)  # x_aa, x_ba, x_ab, x_bb

    def official_dis(xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h0a, h0b = dis.conv0_a(xa), dis.conv0_b(xb)
        core = lambda h: dis.conv3(dis.conv2(dis.conv1(h)))
        return dis.conv4(core(torch.cat([h0a, h0b]))).flatten(1), core(h0a), core(h0b)

    sse = lambda t: t.pow(2).mean() * t[0].numel()  # official MSELoss * C * H * W
    torch.manual_seed(3)
    loss, logs = m.phases["dis"].loss(b)
    torch.manual_seed(3)
    with torch.no_grad():
        x_aa, x_ba, x_ab, x_bb, _, _ = forward()
        true_res, _, _ = official_dis(a, bb)
        recon_res, f_aa, f_bb = official_dis(x_aa, x_bb)
        trans_res, f_ba, f_ab = official_dis(x_ba, x_ab)
        expect = {"adv_real": ce(true_res, 1), "adv_fake": 0.5 * (ce(trans_res, 0) + ce(recon_res, 0)),
                  "cls_a": F.cross_entropy(dis.classify(a, "a"), la),
                  "feat_a": sse(f_ab - f_aa), "feat_b": sse(f_ba - f_bb)}
    assert set(logs) == {*expect, "cls_acc_a"}
    for k, v in expect.items():
        torch.testing.assert_close(logs[k].detach(), v, msg=k)
        assert torch.isfinite(logs[k]) and (k != "feat_a" or float(v) > 0)
    total = (w.adv_weight * (expect["adv_real"] + expect["adv_fake"]) + w.cls_weight * expect["cls_a"]
             + w.feat_weight * (expect["feat_a"] + expect["feat_b"]))
    torch.testing.assert_close(loss.detach(), total)

    torch.manual_seed(4)
    loss, logs = m.phases["gen"].loss(b)
    torch.manual_seed(4)
    with torch.no_grad():
        x_aa, x_ba, x_ab, x_bb, mu, sd = forward()
        expect = {"adv_recon": ce(official_dis(x_aa, x_bb)[0], 1), "adv_trans": ce(official_dis(x_ba, x_ab)[0], 1),
                  "recon_a": sse(x_aa - a), "recon_b": sse(x_bb - bb),
                  "kl": 2 * (mu.pow(2) + sd.pow(2) - sd.pow(2).log()).sum() / mu.shape[0]}
    assert set(logs) == set(expect)
    for k, v in expect.items():
        torch.testing.assert_close(logs[k].detach(), v, msg=k)
    total = (w.adv_weight * (expect["adv_recon"] + expect["adv_trans"]) + w.kl_weight * expect["kl"]
             + w.recon_weight * (expect["recon_a"] + expect["recon_b"]))
    torch.testing.assert_close(loss.detach(), total)
    assert (w.adv_weight, w.recon_weight, w.kl_weight, w.cls_weight, w.feat_weight) == (1, 1e-3, 1e-4, 10, 1e-4)
    with pytest.raises(NiceganError, match="a_label"):
        m.phases["dis"].loss({"a": a, "b": bb})


def test_da_phases_update_only_their_nets_through_train_step() -> None:
    m, cfg = tiny(*DA)
    opts = build_optimizers(m, cfg.train)
    snaps: dict[str, dict] = {}

    def check(phase: str, logs: dict[str, torch.Tensor]) -> None:
        assert all(torch.isfinite(v) for v in logs.values()), logs
        snaps[phase] = {k: copy.deepcopy(dict(v.named_parameters())) for k, v in m.nets.items()}

    m.train()
    logs = train_step(m, opts, images(2), check=check)
    assert {"dis/feat_a", "dis/feat_b", "dis/cls_a", "gen/kl", "gen/adv_trans"} <= set(logs)

    def changed(before: dict, after: dict, net: str) -> bool:
        return any(not torch.equal(before[net][n], after[net][n]) for n in before[net])

    end = {k: dict(v.named_parameters()) for k, v in m.nets.items()}
    assert changed(snaps["dis"], snaps["gen"], "dis") and not changed(snaps["dis"], snaps["gen"], "gen")
    assert changed(snaps["gen"], end, "gen") and not changed(snaps["gen"], end, "dis")


def test_da_exact_resume_and_classifier_round_trip(tmp_path) -> None:
    """4 steps == 2 + resume + 2 on labelled digits, bit for bit; the checkpoint then classifies identically."""
    from nicegan.inference import load_model

    cfg = resolve_config("unit-digits-da", tiny_overrides("unit", *DA, *TINY_RUN, "train.max_steps=4",
                                                           "train.sample_every=0", "train.log_every=2"))
    assert cfg.data.root == "builtin:digits"
    a, b = straight_and_resumed(cfg, tmp_path, stop_at=2)
    for phase in a.optimizers:
        for i, st in a.optimizers[phase]["state"].items():
            assert torch.equal(st["exp_avg"], b.optimizers[phase]["state"][i]["exp_avg"]), (phase, i)
    trained, _, _ = load_model(tmp_path / "straight")
    again, _, _ = load_model(tmp_path / "split")
    assert isinstance(trained, ClassifierModel)
    x = images(4)["b"]
    with torch.no_grad():
        for dom in "ab":
            assert torch.equal(trained.classify(x, dom), again.classify(x, dom)), dom
        fresh, _ = tiny(*DA)
        assert not torch.equal(fresh.eval().classify(x, "b"), trained.classify(x, "b"))


# --- config and presets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "key"), [
    (["model.n_dis_layer=6"], "model.n_dis_layer"),  # 6 stride-2 convs need >= 64 px
    (["model.img_size=30"], "model.img_size"),
    (["model.generator=COCOResGen3"], "model.generator"),
    (["model.res_dropout=1.0"], "model.res_dropout"),
    (["model.kl_weight=-1"], "model.kl_weight"),
    (["model.adv_weight=0", "model.recon_weight=0", "model.cycle_weight=0"], "model.adv_weight"),
    (["model.cls_weight=10"], "model.arch=da32"),  # the classifier belongs to the DA networks
    (["model.arch=da64"], "model.arch"),
    ([*DA, "model.img_size=64"], "model.img_size"),
    ([*DA, "model.cls_weight=0"], "model.cls_weight"),
    ([*DA, "model.cycle_weight=100"], "model.cycle_weight"),
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
    m = da.model
    assert m.arch == "da32" and m.img_size == 32 and da.data.root == "builtin:digits" and not da.data.flip
    assert (m.adv_weight, m.recon_weight, m.kl_weight, m.cls_weight, m.feat_weight) == (1, 1e-3, 1e-4, 10, 1e-4)
    assert m.cycle_weight == m.kl_cycle_weight == 0
    assert (da.train.lr, da.train.betas, da.train.weight_decay, da.train.lr_decay) == (2e-4, (0.5, 0.999), 5e-4, "none")
    with torch.device("meta"):
        assert isinstance(UNIT(m), ClassifierModel)
