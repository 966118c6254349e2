"""Layers against independent references: torch's classic spectral_norm hook and the textbook ILN formula."""

from __future__ import annotations

import contextlib
import copy
import gc
import weakref

import pytest
import torch
from torch import nn

from nicegan.nn import ILN, AdaILN, SNConv2d, SNLinear, clip_rho


def _reference_sn_conv(ours: SNConv2d) -> nn.Conv2d:
    """An nn.Conv2d under torch.nn.utils.spectral_norm holding the same weights, u and v."""
    o, i, k, _ = ours.weight_orig.shape
    ref = nn.Conv2d(i, o, k, stride=ours.stride, bias=ours.bias is not None)
    ref = nn.utils.spectral_norm(ref)
    ref.load_state_dict(copy.deepcopy(ours.state_dict()))
    return ref


@pytest.mark.parametrize("bias", [True, False])
def test_snconv_matches_torch_spectral_norm_train_and_eval(bias: bool) -> None:
    torch.manual_seed(0)
    ours = SNConv2d(5, 7, 4, stride=2, bias=bias)
    ref = _reference_sn_conv(ours)
    x = torch.randn(3, 5, 12, 12)
    for _ in range(3):  # training mode: one power iteration per forward, u and v updated in place
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(ours.weight_u, ref.weight_u, rtol=0, atol=1e-7)
        torch.testing.assert_close(ours.weight_v, ref.weight_v, rtol=0, atol=1e-7)
    ours.eval(), ref.eval()
    u_before = ours.weight_u.clone()
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
    assert torch.equal(ours.weight_u, u_before), "eval mode must not iterate"


def test_snconv_gradients_match_torch() -> None:
    torch.manual_seed(1)
    ours = SNConv2d(3, 4, 4, stride=1)
    ref = _reference_sn_conv(ours)
    x = torch.randn(2, 3, 9, 9)
    ours(x).square().sum().backward()
    ref(x).square().sum().backward()
    torch.testing.assert_close(ours.weight_orig.grad, ref.weight_orig.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer", ["conv", "linear", "linear_square"])
def test_sn_saves_a_recipe_not_the_weight_and_gradients_stay_bitwise(layer: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The op saves (weight_orig, sigma) instead of W / sigma; the recomputed backward is bit for bit the plain one."""
    torch.manual_seed(4)
    make = {"conv": lambda: (SNConv2d(3, 5, 3), torch.randn(2, 3, 7, 7)),
            "linear": lambda: (SNLinear(6, 4), torch.randn(3, 6)),
            "linear_square": lambda: (SNLinear(5, 5), torch.randn(3, 5))}[layer]
    a, x = make()
    b = copy.deepcopy(a)

    def run(m: nn.Module) -> tuple[torch.Tensor, ...]:
        xi = x.clone().requires_grad_(True)
        (m(xi) * torch.linspace(-1, 2, m(xi).numel()).view_as(m(xi))).sum().backward()
        return xi.grad, m.weight_orig.grad, m.bias.grad, m.weight_u.clone()

    recipes = []
    real_pack = torch.autograd.graph.saved_tensors_hooks.__init__

    def spy(self, pack, unpack):  # count the saved tensors packed as a recipe (None in place of the tensor)
        real_pack(self, lambda t: recipes.append(pack(t)) or recipes[-1], unpack)

    with monkeypatch.context() as mp:
        mp.setattr(torch.autograd.graph.saved_tensors_hooks, "__init__", spy)
        ours = run(a)
    assert any(r[0] is None for r in recipes), "the normalised weight must be saved as a recipe"
    monkeypatch.setattr(type(b), "_recomputing", lambda self, w, s: contextlib.nullcontext())
    plain = run(b)
    for got, want in zip(ours, plain, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("cls", [SNConv2d, SNLinear])
def test_sn_graph_does_not_keep_the_normalised_weight(cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the graph waits for backward, no copy of W / sigma may stay alive (one per call adds up to GiBs)."""
    m = cls(8, 6, 3) if cls is SNConv2d else cls(8, 6)
    x = torch.randn(2, 8, 5, 5) if cls is SNConv2d else torch.randn(2, 8)
    refs = []
    real = cls._normalized

    def spy(self):
        w, sigma = real(self)
        refs.append(weakref.ref(w))
        return w, sigma

    monkeypatch.setattr(cls, "_normalized", spy)
    y = m(x.requires_grad_(True)).sum()
    gc.collect()
    assert refs and refs[0]() is None, "the graph holds the normalised weight"
    y.backward()
    assert x.grad is not None and m.weight_orig.grad is not None


def test_sn_recipe_refuses_a_weight_changed_before_backward() -> None:
    m = SNConv2d(2, 3, 3)
    y = m(torch.randn(1, 2, 5, 5, requires_grad=True)).sum()
    with torch.no_grad():
        m.weight_orig.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_power_iterate_equals_a_training_forward() -> None:
    torch.manual_seed(2)
    a = SNConv2d(3, 4, 4)
    b = copy.deepcopy(a)
    a(torch.randn(1, 3, 8, 8))
    b.power_iterate()
    assert torch.equal(a.weight_u, b.weight_u) and torch.equal(a.weight_v, b.weight_v)


def test_snlinear_key_order_and_values() -> None:
    torch.manual_seed(3)
    ours = SNLinear(6, 1, bias=False)
    assert list(ours.state_dict()) == ["weight_orig", "weight_u", "weight_v"]
    ref = nn.utils.spectral_norm(nn.Linear(6, 1, bias=False))
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 6)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)


def test_seeded_construction_draws_like_torch() -> None:
    torch.manual_seed(4)
    ours = SNConv2d(3, 8, 4, 2)
    torch.manual_seed(4)
    ref = nn.utils.spectral_norm(nn.Conv2d(3, 8, 4, 2, bias=True))
    for k in ("weight_orig", "bias", "weight_u", "weight_v"):
        assert torch.equal(ours.state_dict()[k], ref.state_dict()[k]), k


def _reference_iln(x: torch.Tensor, w_in: torch.Tensor, w_ln: torch.Tensor) -> torch.Tensor:
    """Textbook ILN with unbiased variances, written independently of the library."""
    eps = 1e-5
    c = x.shape[1]
    m_in, v_in = x.mean((2, 3), keepdim=True), x.var((2, 3), keepdim=True)
    m_ln, v_ln = x.mean((1, 2, 3), keepdim=True), x.var((1, 2, 3), keepdim=True)
    return (w_in.view(1, c, 1, 1) * (x - m_in) / (v_in + eps).sqrt()
            + w_ln.view(1, c, 1, 1) * (x - m_ln) / (v_ln + eps).sqrt())


def test_iln_softmax_matches_reference_and_initial_weights() -> None:
    torch.manual_seed(5)
    iln = ILN(6)
    with torch.no_grad():
        iln.rho.normal_()
        iln.gamma.normal_()
        iln.beta.normal_()
    x = torch.randn(3, 6, 5, 7) * 3 + 1
    w = torch.softmax(iln.rho, dim=2)[0]
    expected = _reference_iln(x, w[:, 0], w[:, 1]) * iln.gamma + iln.beta
    torch.testing.assert_close(iln(x), expected, rtol=1e-5, atol=1e-5)
    fresh = torch.softmax(ILN(2).rho, dim=2)[0, 0]
    torch.testing.assert_close(fresh, torch.tensor([0.0998, 0.9002]), atol=1e-4, rtol=0)


def test_adailn_softmax_and_clip_modes() -> None:
    torch.manual_seed(6)
    x = torch.randn(2, 4, 6, 6)
    gamma, beta = torch.randn(2, 4), torch.randn(2, 4)
    ada = AdaILN(4)
    w = torch.softmax(ada.rho, dim=2)[0]
    torch.testing.assert_close(w[0], torch.tensor([0.9002, 0.0998]), atol=1e-4, rtol=0)
    expected = _reference_iln(x, w[:, 0], w[:, 1]) * gamma[:, :, None, None] + beta[:, :, None, None]
    torch.testing.assert_close(ada(x, gamma, beta), expected, rtol=1e-5, atol=1e-5)
    clip = AdaILN(4, mode="clip")
    rho = clip.rho.view(4)
    expected = _reference_iln(x, rho, 1 - rho) * gamma[:, :, None, None] + beta[:, :, None, None]
    torch.testing.assert_close(clip(x, gamma, beta), expected, rtol=1e-5, atol=1e-5)


def test_iln_gradients_match_reference() -> None:
    torch.manual_seed(7)
    iln = ILN(3)
    x1 = torch.randn(2, 3, 4, 5, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    iln(x1).pow(3).sum().backward()
    w = torch.softmax(iln.rho, dim=2)[0]
    (_reference_iln(x2, w[:, 0], w[:, 1]) * iln.gamma + iln.beta).pow(3).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-4)


def test_clip_rho_only_touches_clip_mode() -> None:
    net = nn.Sequential(ILN(2, mode="clip"), AdaILN(2, mode="clip"), ILN(2))
    with torch.no_grad():
        net[0].rho.fill_(-0.5)
        net[1].rho.fill_(1.5)
        net[2].rho.fill_(7.0)
    clip_rho(net)
    assert net[0].rho.min() == 0 and net[1].rho.max() == 1 and net[2].rho.max() == 7.0
