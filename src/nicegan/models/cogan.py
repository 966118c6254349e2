"""CoGAN: "Coupled Generative Adversarial Networks".

Liu & Tuzel. NeurIPS 2016. arXiv:1606.07536.
Official code: https://github.com/mingyuliutw/CoGAN (Caffe, ``cogan/``; PyTorch port, ``cogan_pytorch/``).

Two GANs, one per domain, are fed the *same* noise ``z``. The generators share every layer but the last (high-level
structure is common, low-level rendering is per domain); the discriminators share every layer but the first. No
paired data is used: the weight sharing alone couples the two marginals into a joint distribution.

Followed variant: the PyTorch port's digits networks (``net_cogan_mnistedge.py`` / ``net_cogan_mnist2usps.py``:
``CoGen28x28``, ``CoDis28x28``), losses and optimisation (``trainer_cogan_*.py``), because it is the executable
reference closest to this toolkit; its domain-adaptation extras (source classifier on the shared discriminator
features, feature MSE between the fake pair's features) are a config switch. With ``img_size=28 img_ch=1`` the
parameter counts are the port's exactly (gen 7,842,694; dis 427,593, 432,603 with the classifier). As in the port
(and unlike Caffe): ``z ~ N(0, I)`` instead of uniform, one shared PReLU slope per layer (``nn.PReLU()``; Caffe's is
per channel), Xavier init instead of MSRA, batch 64, no dropout.

Names: net ``gen`` = ``CoGen`` (``trunk`` shared, ``head_a``/``head_b`` per domain); net ``dis`` = ``CoDis``
(``first_a``/``first_b`` per domain, ``trunk`` shared, ``logit``, optional ``classifier``). Inside them the layers
keep the official names; the official keys map as ``dconvN``/``bnN``/``preluN`` -> ``trunk.*``, ``dconv4_a`` ->
``head_a.dconv4``, ``conv0_a`` -> ``first_a.conv0``, ``conv1``/``conv2``/``prelu2`` -> ``trunk.*``, ``conv3`` ->
``logit``, ``conv_cl`` -> ``classifier``.

Translation (not in either official repository; the paper's section 5 procedure): given ``x`` of domain s, find
``z* = argmin_z ||g_s(z) - x||`` with the generator frozen (L-BFGS or Adam, restarts, L1 or L2), return ``g_t(z*)``.

Deliberate deviations from the official code:

1. Images live in [-1, 1] (the toolkit's convention), so the generator heads end in tanh; the official ends in a
   sigmoid on [0, 1] images.
2. The learned per-channel bias of the generator sits *after* the affine-free BatchNorm (``biasN``, Caffe's "Bias"
   layer, zero-initialised as Caffe's filler); the PyTorch port puts it in the transposed conv before the BN, which
   cancels it, so the port effectively has no bias. Parameter counts are unchanged.
3. Sizes other than 28 px: the digits generator picks the ``output_padding`` of its stride-2 stages so that the head
   (official 6x6, s1, p1) lands on ``img_size`` (28..35; at 32 px the first stage gets output_padding 1: 4->8->15->
   29->32); the discriminator's "FC" conv takes whatever map is left (5x5 at 32 px instead of 4x4). Channels are
   configurable (``img_ch``; with 1 channel, RGB inputs are averaged and outputs replicated to 3 channels), and so are
   the widths (``gen_ch``, ``dis_ch``, ``dis_fc``; official 1024 / 20 / 500). The config defaults are 32 px RGB,
   the size of the toolkit's ``builtin:digits``; everything else defaults to the port's values.
4. ``arch: faces``: a larger power-of-two variant after the Caffe CelebA prototxt (FC-as-4x4-deconv to ``gen_ch``,
   4x4 s2 deconvs halving the width, 3x3 output deconv; 5x5 then 3x3 s2 convs doubling from ``dis_ch`` to 2x2, an FC
   ``dis_fc`` and the logits, all with BN + bias + PReLU). Sharing follows the spec's estimate of the paper's
   appendix: the last up-sampling stage and the output layer of G, and the first two convs of D, are per domain.
   No dropout (the PyTorch port has none). Preset ``cogan-faces`` (64 px photos, e.g. the cat2dog row of
   docs/results.md).
5. The discriminator has two logits and a 2-class softmax CE as the official (equal to BCE on their difference); the
   CE is averaged per domain and the two domains' terms are averaged, which equals the official mean over the
   concatenated pair. The DA classifier loss reuses the real-A features of the adversarial pass (the port runs
   ``classify_a`` again: identical numbers without BN).
6. Weight decay, init (Xavier-uniform gain sqrt 2, conv bias 0.1) and fresh ``z ~ N(0, I)`` per phase are the
   port's; the training-loop mechanics (device handling, iterator restarts, logging) are the toolkit's.
7. Translation by latent inversion is new code; it runs the generator in eval mode (BatchNorm running statistics),
   so per-image results do not depend on the batch and translation never changes the running statistics. The
   initial ``z`` of the restarts comes from a generator seeded with ``invert_seed`` (deterministic, and it leaves
   the global RNG of a training run untouched).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model
from nicegan.nn.losses import ce_to


@dataclass
class CoGANConfig(ModelConfig):
    """CoGAN architecture, losses and latent-inversion settings (PyTorch-port digits defaults at 32 px RGB).

    The official 28 px MNIST configuration is ``img_size=28, img_ch=1``.
    """

    arch: Literal["digits", "faces"] = "digits"
    img_size: int = 32  # digits: 28..35 (official 28); faces: a power of two >= 32 (Caffe CelebA: 128)
    img_ch: int = 3  # 1 or 3
    rgb_img_ch: ClassVar[tuple[int, ...]] = (1, 3)  # 1: RGB inputs averaged, outputs replicated to RGB
    z_dim: int = 100
    gen_ch: int = 1024  # width of the first generator layer; every up-sampling stage halves it
    dis_ch: int = 20  # width of the first discriminator conv (digits: the second is 2.5x; faces: doubling)
    dis_fc: int = 500  # the discriminator's fully connected feature layer (faces, Caffe: 2048)
    num_classes: int = 10  # classes of the domain-adaptation classifier head
    cls_weight: float = 0.0  # DA mode: source classifier CE in the D step (port: 10); 0 = off, no classifier head
    feat_weight: float = 0.0  # DA mode: squared distance of the fake pair's D features (port: 0.01); 0 = off
    invert_optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    invert_steps: int = 50  # iterations of the inversion (L-BFGS: max_iter of one step)
    invert_restarts: int = 2  # random initial z per image; the best reconstruction wins
    invert_loss: Literal["l1", "l2"] = "l2"  # L2 by default: L-BFGS assumes a smooth objective
    invert_lr: float = 0.05  # Adam inversion only (L-BFGS uses lr 1 with a strong-Wolfe line search)
    invert_seed: int = 0  # seeds the initial z of the inversion
    visual_invert_steps: int = 10  # cheaper inversion for sample grids (one restart)

    tiny = {"gen_ch": 32, "dis_ch": 4, "dis_fc": 16, "invert_steps": 3, "invert_restarts": 2, "visual_invert_steps": 2}

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the networks cannot be built at this size or a value is out of range."""
        super().validate()
        for key in ("z_dim", "gen_ch", "dis_ch", "dis_fc", "num_classes", "invert_steps", "invert_restarts",
                    "visual_invert_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("cls_weight", "feat_weight", "invert_seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not self.invert_lr > 0:
            raise ConfigError(f"model.invert_lr must be > 0, got {self.invert_lr}")
        if self.img_ch not in (1, 3):
            raise ConfigError(f"model.img_ch must be 1 or 3, got {self.img_ch}")
        if self.arch not in ("digits", "faces"):
            raise ConfigError(f"model.arch must be digits or faces, got {self.arch!r}")
        if self.arch == "digits":
            digits_output_paddings(self.img_size)
            if self.gen_ch < 8:
                raise ConfigError(f"model.gen_ch must be >= 8 (three halvings), got {self.gen_ch}")
            if self.dis_ch * 5 // 2 < 1:
                raise ConfigError(f"model.dis_ch must be >= 1, got {self.dis_ch}")
        else:
            n_up = faces_stages(self.img_size)
            if self.gen_ch >> n_up < 1:
                raise ConfigError(f"model.gen_ch {self.gen_ch} is too small for {n_up} halvings at img_size "
                                  f"{self.img_size}")


def digits_output_paddings(img_size: int) -> list[int]:
    """``output_padding`` of the three stride-2 stages so that 4 -> ... -> img_size - 3 before the 6x6 head."""
    t, ops = img_size - 3, []
    for _ in range(3):  # backwards: a 3x3 s2 p1 stage maps n to 2n - 1 + output_padding
        op = (t + 1) % 2
        ops.append(op)
        t = (t + 1 - op) // 2
    if t != 4:
        raise ConfigError(f"model.img_size must lie in 28..35 for arch digits (official 28), got {img_size}")
    return ops[::-1]


def faces_stages(img_size: int) -> int:
    """Number of stride-2 up-sampling stages (4 -> img_size) of the faces variant."""
    if img_size < 32 or img_size & (img_size - 1):
        raise ConfigError(f"model.img_size must be a power of two >= 32 for arch faces, got {img_size}")
    return int(math.log2(img_size)) - 2


class Bias(nn.Module):
    """A learned per-channel bias (Caffe's "Bias" layer after an affine-free BatchNorm)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(ch))  # Caffe's default constant filler: 0

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias.view(1, -1, 1, 1)


def _norm_act(i: int, ch: int) -> list[tuple[str, nn.Module]]:
    return [(f"bn{i}", nn.BatchNorm2d(ch, affine=False)), (f"bias{i}", Bias(ch)), (f"prelu{i}", nn.PReLU())]


def _deconv(i: int, c_in: int, c_out: int, k: int, s: int, p: int, op: int = 0) -> list[tuple[str, nn.Module]]:
    # No conv bias: the affine-free BN would cancel it; the learned bias follows the BN (deviation 2).
    conv = nn.ConvTranspose2d(c_in, c_out, k, s, p, output_padding=op, bias=False)
    return [(f"dconv{i}", conv), *_norm_act(i, c_out)]


def _conv(i: int, c_in: int, c_out: int, k: int, s: int, p: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{i}", nn.Conv2d(c_in, c_out, k, s, p, bias=False)), *_norm_act(i, c_out)]


def _seq(layers: list[tuple[str, nn.Module]]) -> nn.Sequential:
    return nn.Sequential(OrderedDict(layers))


def init_official(net: nn.Module) -> None:
    """The PyTorch port's init: Xavier-uniform (gain sqrt 2) conv weights, conv biases 0.1."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight, gain=math.sqrt(2.0))
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.1)


class CoGenerator(nn.Module):
    """Coupled generators: a shared ``trunk`` from ``z`` and a per-domain ``head_a``/``head_b`` to the image."""

    def __init__(self, cfg: CoGANConfig) -> None:
        super().__init__()
        c = cfg.gen_ch
        trunk = _deconv(0, cfg.z_dim, c, 4, 1, 0)  # the 1x1 noise to 4x4 (Caffe: an FC reshaped to 1024x4x4)
        if cfg.arch == "digits":
            for i, op in enumerate(digits_output_paddings(cfg.img_size), start=1):
                trunk += _deconv(i, c >> (i - 1), c >> i, 3, 2, 1, op)
            heads = [[("dconv4", nn.ConvTranspose2d(c >> 3, cfg.img_ch, 6, 1, 1)), ("tanh", nn.Tanh())]
                     for _ in "ab"]
        else:
            n = faces_stages(cfg.img_size)
            for i in range(1, n):
                trunk += _deconv(i, c >> (i - 1), c >> i, 4, 2, 1)
            heads = [[*_deconv(n, c >> (n - 1), c >> n, 4, 2, 1),
                      (f"dconv{n + 1}", nn.ConvTranspose2d(c >> n, cfg.img_ch, 3, 1, 1)), ("tanh", nn.Tanh())]
                     for _ in "ab"]
        self.trunk = _seq(trunk)
        self.head_a = _seq(heads[0])
        self.head_b = _seq(heads[1])
        init_official(self)

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` ("a" or "b") from noise ``z`` (B x z_dim)."""
        head = self.head_a if domain == "a" else self.head_b
        return head(self.trunk(z.view(z.shape[0], z.shape[1], 1, 1)))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The coupled pair ``(g_a(z), g_b(z))``, sharing one trunk pass."""
        h = self.trunk(z.view(z.shape[0], z.shape[1], 1, 1))
        return self.head_a(h), self.head_b(h)


class CoDiscriminator(nn.Module):
    """Coupled discriminators: per-domain ``first_a``/``first_b``, shared ``trunk`` to features, 2-way ``logit``."""

    def __init__(self, cfg: CoGANConfig) -> None:
        super().__init__()
        if cfg.arch == "digits":
            c2 = cfg.dis_ch * 5 // 2  # official 20 -> 50
            firsts = [[("conv0", nn.Conv2d(cfg.img_ch, cfg.dis_ch, 5, 1, 0)), ("pool0", nn.MaxPool2d(2))]
                      for _ in "ab"]
            left = ((cfg.img_size - 4) // 2 - 4) // 2  # map size before the "FC" conv (4 at 28 px, 5 at 32 px)
            trunk = [("conv1", nn.Conv2d(cfg.dis_ch, c2, 5, 1, 0)), ("pool1", nn.MaxPool2d(2)),
                     ("conv2", nn.Conv2d(c2, cfg.dis_fc, left, 1, 0)), ("prelu2", nn.PReLU())]
        else:
            n = int(math.log2(cfg.img_size)) - 1  # stride-2 convs down to 2x2
            chans = [cfg.img_ch] + [cfg.dis_ch << i for i in range(n)]

            def down(i: int) -> list[tuple[str, nn.Module]]:  # Caffe CelebA: 5x5 s2 for the first three, then 3x3
                return _conv(i, chans[i], chans[i + 1], 5 if i < 3 else 3, 2, 2 if i < 3 else 1)

            firsts = [down(0) + down(1) for _ in "ab"]  # the first two convs are per domain
            trunk = [layer for i in range(2, n) for layer in down(i)] + _conv(n, chans[-1], cfg.dis_fc, 2, 1, 0)
        self.first_a = _seq(firsts[0])
        self.first_b = _seq(firsts[1])
        self.trunk = _seq(trunk)
        self.logit = nn.Conv2d(cfg.dis_fc, 2, 1)  # official conv3: 2-class softmax
        self.classifier = nn.Conv2d(cfg.dis_fc, cfg.num_classes, 1) if cfg.cls_weight > 0 else None  # conv_cl
        init_official(self)

    def features(self, x: Tensor, domain: str) -> Tensor:
        """Shared-layer features (B x dis_fc) of images of one domain, through that domain's first layer."""
        first = self.first_a if domain == "a" else self.first_b
        return self.trunk(first(x)).flatten(1)

    def forward(self, x_a: Tensor, x_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(logits_a, logits_b, feat_a, feat_b)`` of a pair; the shared layers run once on both halves."""
        h = self.trunk(torch.cat([self.first_a(x_a), self.first_b(x_b)], 0))
        logits = self.logit(h).flatten(1)
        n = x_a.shape[0]
        feat = h.flatten(1)
        return logits[:n], logits[n:], feat[:n], feat[n:]

    def classify(self, x: Tensor, domain: str) -> Tensor:
        """Class logits (B x num_classes) of the DA head (official ``classify_a``/``classify_b``)."""
        if self.classifier is None:
            raise NiceganError("this CoGAN has no classifier head (set model.cls_weight > 0)")
        return self.classifier(self.features(x, domain)[:, :, None, None]).flatten(1)


@contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)


@register_model("cogan")
class CoGAN(TranslationModel):
    """Coupled GANs trained D step then G step on fresh noise; translation by latent inversion."""

    card = ModelCard(
        title="CoGAN",
        paper="Liu, Tuzel: Coupled Generative Adversarial Networks, NeurIPS 2016",
        paper_url="https://arxiv.org/abs/1606.07536",
        code="mingyuliutw/CoGAN",
        commit="cogan_pytorch (f940c28)",
        parameters=7_861_130 + 654_593,
        released="none (the port's trainers save nothing)",
    )

    config_class = CoGANConfig
    translation_needs_grad = True

    def __init__(self, cfg: CoGANConfig) -> None:
        super().__init__(cfg)
        self.nets["gen"] = CoGenerator(cfg)
        self.nets["dis"] = CoDiscriminator(cfg)
        self.phases = {"dis": Phase(("dis",), self.dis_loss), "gen": Phase(("gen",), self.gen_loss)}
        self.inference_nets = ("gen",)
        if cfg.cls_weight > 0:
            # The DA classifier is a head on the shared discriminator layers: inference (load_model, evaluate)
            # must load the discriminator too, or classify() would run on untrained weights.
            self.inference_nets = ("gen", "dis")
            self.classify = self._classify  # the ClassifierModel capability exists in this mode only

    # --- channel adaptation: the toolkit's images are RGB ------------------------------------------------------
    def _net_in(self, x: Tensor) -> Tensor:
        return x.mean(1, keepdim=True) if self.cfg.img_ch == 1 and x.shape[1] != 1 else x

    def _net_out(self, y: Tensor) -> Tensor:
        return y.repeat(1, 3, 1, 1) if y.shape[1] == 1 else y

    def _noise(self, n: int, like: Tensor) -> Tensor:
        return torch.randn(n, self.cfg.z_dim, device=like.device, dtype=like.dtype)  # global RNG (checkpointed)

    # --- training -------------------------------------------------------------------------------------------
    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator step on fresh noise (and, in DA mode, the source classifier and feature matching)."""
        real_a, real_b = self._net_in(batch["a"]), self._net_in(batch["b"])
        gen, dis, w = self.nets["gen"], self.nets["dis"], self.cfg
        z = self._noise(real_a.shape[0], real_a)  # fresh noise per phase, as the port
        with torch.no_grad():
            fake_a, fake_b = gen(z)
        real_la, real_lb, real_fa, _ = dis(real_a, real_b)
        fake_la, fake_lb, fake_fa, fake_fb = dis(fake_a, fake_b)
        adv_a = ce_to(real_la, 1) + ce_to(fake_la, 0)
        adv_b = ce_to(real_lb, 1) + ce_to(fake_lb, 0)
        loss = 0.5 * (adv_a + adv_b)  # = the port's CE means over the concatenated pair
        logs = {"adv_a": adv_a, "adv_b": adv_b}
        if w.cls_weight > 0:
            if "a_label" not in batch:
                raise NiceganError("CoGAN domain adaptation (model.cls_weight > 0) needs labelled A batches")
            cls_logits = dis.classifier(real_fa[:, :, None, None]).flatten(1)
            cls = F.cross_entropy(cls_logits, batch["a_label"])
            loss = loss + w.cls_weight * cls
            logs["cls_a"] = cls
            logs["cls_acc_a"] = (cls_logits.argmax(1) == batch["a_label"]).float().mean()
        if w.feat_weight > 0:
            # The port: MSELoss(f_a - f_b, 0) * feature size = per-sample squared distance, batch mean.
            feat = (fake_fa - fake_fb).square().sum(1).mean()
            loss = loss + w.feat_weight * feat
            logs["feat"] = feat
        return loss, logs

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator step on fresh noise: both coupled fakes should be judged real."""
        real_a = self._net_in(batch["a"])
        z = self._noise(real_a.shape[0], real_a)
        fake_la, fake_lb, _, _ = self.nets["dis"](*self.nets["gen"](z))
        adv_a, adv_b = ce_to(fake_la, 1), ce_to(fake_lb, 1)
        return 0.5 * (adv_a + adv_b), {"adv_a": adv_a, "adv_b": adv_b}

    # --- latent inversion -----------------------------------------------------------------------------------
    def invert(self, x: Tensor, domain: str, steps: int | None = None, restarts: int | None = None) -> Tensor:
        """``z* = argmin_z ||g_domain(z) - x||`` per image (B x z_dim), with the generator frozen in eval mode.

        Sets ``translate_diagnostics["inversion_l1"]``: the mean per-image L1 error of ``g_domain(z*)``.
        """
        if torch.is_inference_mode_enabled():
            raise NiceganError("CoGAN translation optimises a latent code: run it under torch.no_grad(), "
                               "not torch.inference_mode()")
        cfg, gen = self.cfg, self.nets["gen"]
        steps = steps or cfg.invert_steps
        restarts = restarts or cfg.invert_restarts
        target = self._net_in(x).detach().clone()  # a clone is a normal tensor even if x is an inference tensor
        n = target.shape[0]
        g = torch.Generator().manual_seed(cfg.invert_seed)
        z0 = torch.randn(restarts * n, cfg.z_dim, generator=g)  # drawn on CPU: the same start on any device
        z = z0.to(device=target.device, dtype=target.dtype).requires_grad_(True)
        target = target.repeat(restarts, 1, 1, 1)

        def per_image(z: Tensor, kind: str) -> Tensor:
            d = gen.decode(z, domain) - target
            return (d.abs() if kind == "l1" else d.square()).flatten(1).mean(1)

        def closure() -> Tensor:
            loss = per_image(z, cfg.invert_loss).sum()  # a sum: each image's problem is independent
            # Gradient for z only: the generator's parameters never accumulate .grad, whatever their requires_grad.
            (z.grad,) = torch.autograd.grad(loss, z)
            return loss.detach()

        with _eval_mode(gen), torch.enable_grad():
            if cfg.invert_optimizer == "lbfgs":
                opt: torch.optim.Optimizer = torch.optim.LBFGS([z], lr=1.0, max_iter=steps,
                                                               line_search_fn="strong_wolfe")
                opt.step(closure)
            else:
                opt = torch.optim.Adam([z], lr=cfg.invert_lr)
                for _ in range(steps):
                    closure()
                    opt.step()
            with torch.no_grad():
                err = per_image(z, "l1").view(restarts, n)
        best_err, best = err.min(0)
        self.translate_diagnostics = {"inversion_l1": float(best_err.mean())}
        return z.detach().view(restarts, n, -1)[best, torch.arange(n, device=best.device)]

    def _translate(self, x: Tensor, direction: str, steps: int | None = None,
                   restarts: int | None = None) -> tuple[Tensor, Tensor]:
        """``(translation, reconstruction of x)`` by inversion in the source domain."""
        src, dst = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        z = self.invert(x, src, steps, restarts)
        gen = self.nets["gen"]
        with _eval_mode(gen), torch.no_grad():
            return self._net_out(gen.decode(z, dst)), self._net_out(gen.decode(z, src))

    def translate(self, x: Tensor, direction: str) -> Tensor:
        return self._translate(x, direction)[0]

    def encode(self, x: Tensor, domain: str) -> Tensor:
        """The inverted latent code ``z*`` of images ``x`` of ``domain`` (see :meth:`invert`)."""
        return self.invert(x, domain)

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` generated from ``z`` (B x z_dim)."""
        return self._net_out(self.nets["gen"].decode(z, domain))

    def _classify(self, x: Tensor, domain: str) -> Tensor:
        """Digit-class logits of images ``x`` of ``domain`` from the DA head (``domain`` "b": official classify_b)."""
        return self.nets["dis"].classify(self._net_in(x), domain)

    def check_input_size(self, size: int) -> None:
        if size != self.cfg.img_size:
            raise ConfigError(f"CoGAN inverts its generator, which only produces {self.cfg.img_size} px images; "
                              f"translate at that size, not {size}")

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Real, inversion reconstruction, translation, and a coupled pair from fixed noise (one per column)."""
        fake, recon = self._translate(x, direction, self.cfg.visual_invert_steps, 1)
        g = torch.Generator().manual_seed(self.cfg.invert_seed + 1)
        z = torch.randn(x.shape[0], self.cfg.z_dim, generator=g).to(device=x.device, dtype=x.dtype)
        gen = self.nets["gen"]
        with _eval_mode(gen), torch.no_grad():
            pair_a, pair_b = gen(z)
        return {"real": x, "recon": recon, "fake": fake, "pair_a": self._net_out(pair_a),
                "pair_b": self._net_out(pair_b)}
