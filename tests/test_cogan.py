"""CoGAN: official parameter counts, coupled sharing, losses per phase, latent-inversion translation, DA mode.

The model contract (translate, phases, state dicts, exact resume) is tested for every model in tests/test_models.py.
"""

from __future__ import annotations

import copy

import pytest
import torch

from nicegan.configs.schema import resolve_config
from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models import create_model
from nicegan.models.base import ClassifierModel
from nicegan.models.cogan import CoGAN, CoGANConfig
from nicegan.training.optim import build_optimizers
from tests.conftest import tiny_model


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta(**kw: object) -> CoGAN:
    with torch.device("meta"):
        return CoGAN(CoGANConfig(**kw))


def _tiny(**kw: object) -> CoGAN:
    """The tiny CoGAN (``CoGANConfig.tiny``) with the model fields ``kw`` changed, seeded."""
    return tiny_model("cogan", *(f"model.{k}={v}" for k, v in kw.items()))[0]


def _batch(n: int = 4, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"a": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "b": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "a_label": torch.randint(0, 10, (n,), generator=g)}


def test_official_28px_parameter_counts() -> None:
    m = _meta(img_size=28, img_ch=1)
    gen, dis = m.nets["gen"], m.nets["dis"]
    assert _count(gen) == 7_842_694 and _count(gen.trunk) == 7_833_476
    assert _count(gen.head_a) == _count(gen.head_b) == 4_609
    assert _count(dis) == 427_593 and _count(dis.first_a) == _count(dis.first_b) == 520
    assert _count(m.nets["dis"]) + _count(gen) == 8_270_287
    assert _count(_meta(img_size=28, img_ch=1, cls_weight=10.0).nets["dis"]) == 432_603


def test_default_32px_rgb_parameter_counts() -> None:
    m = _meta()
    gen, dis = m.nets["gen"], m.nets["dis"]
    # The trunk is the official one; RGB heads and the 5x5 "FC" conv (5x5 map at 32 px) grow.
    assert _count(gen) == 7_861_130 and _count(gen.trunk) == 7_833_476 and _count(gen.head_a) == 13_827
    assert _count(dis) == 654_593 and _count(dis.first_a) == 1_520
    assert _count(_meta(cls_weight=10.0).nets["dis"]) == 659_603


def test_official_state_dict_names() -> None:
    m = _meta(img_size=28, img_ch=1, cls_weight=1.0)
    gen_keys, dis_keys = set(m.nets["gen"].state_dict()), set(m.nets["dis"].state_dict())
    assert {"trunk.dconv0.weight", "trunk.bn3.running_var", "trunk.prelu3.weight", "head_a.dconv4.weight",
            "head_b.dconv4.bias"} <= gen_keys
    assert {"first_a.conv0.weight", "first_b.conv0.bias", "trunk.conv1.weight", "trunk.conv2.weight",
            "trunk.prelu2.weight", "logit.weight", "classifier.weight"} <= dis_keys


@pytest.mark.parametrize(("size", "ch"), [(28, 1), (32, 3), (35, 3)])
def test_digits_shapes(size: int, ch: int) -> None:
    m = _meta(img_size=size, img_ch=ch)
    z = torch.empty(2, 100, device="meta")
    a, b = m.nets["gen"](z)
    assert a.shape == b.shape == (2, ch, size, size)
    la, lb, fa, fb = m.nets["dis"](a, b)
    assert la.shape == lb.shape == (2, 2) and fa.shape == fb.shape == (2, 500)


def test_faces_variant_shapes() -> None:
    # Caffe CelebA widths at 128 px (meta device) and a small real instance at 64 px.
    m = _meta(arch="faces", img_size=128, dis_ch=32, dis_fc=2048)
    gen = m.nets["gen"]
    assert [gen.trunk[i].out_channels for i in range(0, len(gen.trunk), 4)] == [1024, 512, 256, 128, 64]
    a, b = gen(torch.empty(3, 100, device="meta"))
    assert a.shape == b.shape == (3, 3, 128, 128)
    assert m.nets["dis"](a, b)[0].shape == (3, 2)
    assert _count(gen.head_a) == 33_668 and _count(m.nets["dis"].first_a) == 53_698
    small = _tiny(arch="faces", img_size=64)
    x = _batch(3, 64)
    fa, fb = small.nets["gen"](torch.randn(3, 100))
    assert fa.shape == fb.shape == (3, 3, 64, 64)
    assert small.nets["dis"](x["a"], x["b"])[0].shape == (3, 2)


def test_sharing_is_real() -> None:
    m = _tiny()
    gen, dis = m.nets["gen"], m.nets["dis"]
    shared = {id(p) for p in gen.trunk.parameters()}
    assert shared.isdisjoint(id(p) for p in gen.head_a.parameters())
    assert gen.head_a.dconv4.weight is not gen.head_b.dconv4.weight
    assert dis.first_a.conv0.weight is not dis.first_b.conv0.weight
    # One z gives a pair whose halves differ only through the heads.
    z = torch.randn(2, 100)
    with torch.no_grad():
        a, b = gen(z)
        assert torch.allclose(a, gen.decode(z, "a")) and torch.allclose(b, gen.decode(z, "b"))


def test_config_validation() -> None:
    for bad in ({"img_size": 27}, {"img_size": 36}, {"img_ch": 2}, {"arch": "faces", "img_size": 48},
                {"invert_steps": 0}, {"cls_weight": -1.0}, {"gen_ch": 4}):
        with pytest.raises(ConfigError):
            CoGANConfig(**bad).validate()
    with pytest.raises(ConfigError, match="model.invert_optimizer"):
        resolve_config({"model": {"name": "cogan", "invert_optimizer": "sgd"}})
    with pytest.raises(ConfigError):
        _tiny().check_input_size(64)


def test_losses_follow_the_port() -> None:
    m = _tiny()
    b = _batch()
    torch.manual_seed(3)
    loss, logs = m.phases["dis"].loss(b)
    assert set(logs) == {"adv_a", "adv_b"}
    assert torch.allclose(loss, 0.5 * (logs["adv_a"] + logs["adv_b"]))
    # 2-class softmax CE == BCE with logits on the logit difference; check the D real term by hand.
    dis = m.nets["dis"]
    with torch.no_grad():
        la, _, _, _ = dis(b["a"], b["b"])
    ce = torch.nn.functional.cross_entropy(la, torch.ones(4, dtype=torch.long))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(la[:, 1] - la[:, 0], torch.ones(4))
    assert torch.allclose(ce, bce, atol=1e-6)
    loss, logs = m.phases["gen"].loss(b)
    assert set(logs) == {"adv_a", "adv_b"} and loss.requires_grad


def test_inversion_recovers_a_generated_image() -> None:
    m = _tiny(invert_steps=20, invert_restarts=1).eval()
    z0 = torch.randn(3, 100, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        x, y = m.decode(z0, "a"), m.decode(z0, "b")
        random_err = (m.decode(torch.randn(3, 100), "a") - x).abs().mean().item()
        bn_before = copy.deepcopy(m.nets["gen"].state_dict())
        m.train()  # translation must not touch BatchNorm running statistics even in training mode
        fake = m.translate(x, "a2b")
    inv_err = m.translate_diagnostics["inversion_l1"]
    assert inv_err < 0.1 * random_err
    assert (fake - y).abs().mean().item() < 0.1 * random_err  # the coupled half of the same z comes out
    assert fake.shape == x.shape and fake.min() >= -1 and fake.max() <= 1
    assert all(p.grad is None for p in m.parameters())
    assert all(torch.equal(v, bn_before[k]) for k, v in m.nets["gen"].state_dict().items())
    assert m.training


def test_inversion_adam_l1_and_encode_decode() -> None:
    m = _tiny(invert_optimizer="adam", invert_loss="l1", invert_steps=3).eval()
    x = _batch(2)["b"]
    with torch.no_grad():
        z = m.encode(x, "b")
        assert z.shape == (2, 100) and not z.requires_grad
        assert m.decode(z, "a").shape == x.shape
        assert m.translate_diagnostics["inversion_l1"] > 0
    with torch.inference_mode(), pytest.raises(NiceganError, match="no_grad"):
        m.translate(x, "b2a")


def test_one_channel_model_takes_and_gives_rgb() -> None:
    m = _tiny(img_size=28, img_ch=1).eval()
    x = _batch(2, 28)["a"]
    with torch.no_grad():
        y = m.translate(x, "a2b")
    assert y.shape == (2, 3, 28, 28)
    loss, _ = m.phases["dis"].loss(_batch(2, 28))
    assert torch.isfinite(loss)


def test_visuals_rows() -> None:
    m = _tiny().eval()
    x = _batch(3)["a"]
    with torch.no_grad():
        vis = m.visuals(x, "b2a")
        again = m.visuals(x, "b2a")
    assert list(vis) == ["real", "recon", "fake", "pair_a", "pair_b"] and vis["real"] is x
    assert all(v.shape == x.shape for v in vis.values())
    assert torch.equal(vis["pair_a"], again["pair_a"])  # the pair row comes from a fixed z


def test_domain_adaptation_mode() -> None:
    m = _tiny(cls_weight=10.0, feat_weight=0.01)
    plain = _tiny()
    assert isinstance(m, ClassifierModel) and not isinstance(plain, ClassifierModel)
    opts = build_optimizers(m, resolve_config({"model": {"name": "cogan"}}).train)
    head_before = m.nets["dis"].classifier.weight.detach().clone()
    b = _batch()
    for name, net in m.nets.items():
        net.requires_grad_(name in m.phases["dis"].nets)
    loss, logs = m.phases["dis"].loss(b)
    assert {"cls_a", "feat", "cls_acc_a"} <= set(logs)
    expected = 0.5 * (logs["adv_a"] + logs["adv_b"]) + 10.0 * logs["cls_a"] + 0.01 * logs["feat"]
    assert torch.allclose(loss.detach(), expected.detach())
    loss.backward()
    opts["dis"].step()
    assert not torch.equal(m.nets["dis"].classifier.weight, head_before)
    x = b["b"]
    assert m.classify(x, "a").shape == m.classify(x, "b").shape == (4, 10)
    with pytest.raises(NiceganError, match="labelled"):
        m.phases["dis"].loss({"a": b["a"], "b": b["b"]})
    assert not hasattr(plain, "classify"), "the classify capability exists in domain-adaptation mode only"


def test_presets_resolve() -> None:
    cfg = resolve_config("cogan")
    assert cfg.model_name == "cogan" and cfg.model.img_size == 32 and cfg.model.img_ch == 3
    assert cfg.data.root == "builtin:digits" and not cfg.data.flip and cfg.data.resize_margin == 4
    t = cfg.train
    assert (t.lr, tuple(t.betas), t.weight_decay, t.batch_size, t.lr_decay) == (2e-4, (0.5, 0.999), 5e-4, 64, "none")
    da = resolve_config("cogan-da")
    assert da.model.cls_weight == 10.0 and da.model.feat_weight == 0.01 and da.train.max_steps == 10_000
    small = resolve_config("cogan-digits")
    assert small.model.gen_ch < 1024
    with torch.device("meta"):
        assert isinstance(create_model("cogan", da.model), ClassifierModel)


def test_evaluation_reports_the_inversion_error() -> None:
    import numpy as np

    from nicegan.data.sources import ArraySource
    from nicegan.evaluation.translation import translated_images

    m = _tiny().eval()
    src = ArraySource(np.random.default_rng(0).integers(0, 256, (5, 32, 32), dtype=np.uint8))
    seen: list[tuple[int, float]] = []
    translate = m.translate

    def recording(x: torch.Tensor, direction: str) -> torch.Tensor:
        y = translate(x, direction)
        seen.append((len(x), m.translate_diagnostics["inversion_l1"]))
        return y

    m.translate = recording
    diag: dict[str, float] = {}
    images = list(translated_images(m, src, "a2b", batch_size=2, diagnostics=diag))
    assert len(images) == 5 and images[0].size == (32, 32) and [n for n, _ in seen] == [2, 2, 1]
    assert set(diag) == {"inversion_l1"}
    assert diag["inversion_l1"] == pytest.approx(sum(n * v for n, v in seen) / 5)  # image-weighted, not per batch
