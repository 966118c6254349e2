"""DRIT / DRIT++: disentangled representations (a shared content space plus a per-domain attribute code).

Lee, Tseng, Huang, Singh, Yang. "Diverse Image-to-Image Translation via Disentangled Representations". ECCV 2018.
arXiv:1808.00948. Lee, Tseng, Mao, Huang, Lu, Singh, Yang. "DRIT++: Diverse Image-to-Image Translation via
Disentangled Representations". IJCV 2020. arXiv:1905.01270.
Official code: https://github.com/HsinYingLee/DRIT (commit f19f50a, src/networks.py, src/model.py, src/options.py,
src/train.py, src/test.py, src/test_transfer.py), which this file follows. The repository is the DRIT++ code:
mode-seeking regularisation is on unless ``--no_ms``. Checked against it: the parameter counts of every network at
the default (65,039,315; generator side 21,270,982) and ``--concat 0`` (75,462,691) configurations, and the
official state-dict keys inside each net (so official ``*.pth`` weights load net by net).

Networks (official defaults ``--concat 1 --dis_scale 3``, nz 8, ``ch`` 64, content codes 4 ch x S/4 x S/4):

* ``enc_c`` (official ``E_content``): per domain ``convA`` / ``convB`` (conv 7x7 + LeakyReLU 0.01, two stride-2
  convs + IN + ReLU, 3 residual blocks), then ``conv_share``, ONE residual block both domains use followed by a
  Gaussian noise layer (``+ N(0, I)`` in training only, DRIT#44);
* ``enc_a``: ``E_attr_concat`` (default; per domain a conv 4x4 s2, three BasicBlocks 64->128->192->256, LeakyReLU
  0.2, global average pool, and the ``fc`` (mu) / ``fcVar`` (log-variance) heads; z = mu + sigma eps) or, with
  ``concat`` false (official ``--concat 0``), ``E_attr`` (deterministic conv stack to nz);
* ``gen``: ``G_concat`` (default; the shared ``dec_share`` residual block, then per domain three residual blocks on
  [content, tiled z] and two LayerNorm transposed convs and a 1x1 transposed conv, each on [features, tiled z]) or
  ``G`` (``concat`` false: an MLP z -> 4 x 256 feeding four MisINSResBlocks, two LayerNorm transposed convs, 1x1);
* ``dis_a`` / ``dis_b`` judge translations made with *encoded* attributes, ``dis_a2`` / ``dis_b2`` those made with
  *random* attributes: each a 3-scale MultiScaleDis (4 convs 4x4 s2, reflect padding, LeakyReLU 0.01, 1x1 conv;
  AvgPool 3/2 between scales);
* ``dis_content`` (``Dis_content``): three 7x7 s2 convs, a 4x4 conv, a 1x1 conv to one logit per content code.

Naming map (official -> here): ``enc_c`` / ``enc_a`` / ``gen`` / ``disContent`` -> nets ``enc_c`` / ``enc_a`` /
``gen`` / ``dis_content``; ``disA``, ``disB``, ``disA2``, ``disB2`` -> ``dis_a``, ``dis_b``, ``dis_a2``, ``dis_b2``.
Inside each net the official attribute names are kept (``convA``, ``conv_share``, ``fc_A``, ``fcVar_B``,
``dec_share``, ``decB3``, ``mlpA``, ``Diss``, ``model``). ``translate(x, "a2b", style)`` is the official
``test_forward`` (random z ~ N(0, I) when ``style`` is None, drawn from torch's global generator, which the caller
seeds) or ``test_forward_transfer`` with ``style = encode_style(reference_b, "b")``.

Losses (official ``model.py``; every adversarial term is sigmoid + BCE, summed over the scales):

* discriminators: ``dis_a`` real (encoded half) vs the translation with the encoded attribute; ``dis_a2`` real
  (random half) vs the translation with a random z (with mode seeking, also vs a second random z); ``dis_content``:
  content codes of A labelled 0, of B labelled 1, its gradient norm clipped to 5 and its LR 1e-4 / 2.5;
* ``eg`` (updates ``enc_c``, ``enc_a``, ``gen``): GAN on the encoded-attribute translations (weight 1), content
  adversarial (BCE of ``dis_content`` against 0.5 for both domains, 1), attribute KL (-0.5 sum(1 + logvar - mu^2 -
  e^logvar), 0.01; ``concat`` false: mean(z^2), 0.01), content L2 mean(z_c^2) (0.01), cross-cycle L1 (10) and
  self-reconstruction L1 (10);
* ``g_alone`` (updates ``enc_c`` and ``gen`` only, deliberately not ``enc_a``, DRIT#8): GAN on the random-z
  translations through ``dis_a2`` / ``dis_b2`` (1), latent regression L1 between the attribute encoder's mu of the
  random translation and z (10), and with mode seeking (DRIT++) 1 / (mean|G(c, z1) - G(c, z2)| / mean|z1 - z2| +
  1e-5) per direction (1).

Which is the default, DRIT or DRIT++: ``mode_seeking`` is True, because the official repository (the code the
later papers, NICE-GAN included, could run) trains with it unless ``--no_ms`` is given; ``model.mode_seeking=false``
is the ECCV-2018 DRIT (no second random z anywhere: D, GAN and mode-seeking terms all drop).

Schedule (official ``train.py``, ``d_iter`` 3, batch 2 split 1 + 1 into an "encoded" and a "random" half, DRIT#18):
on two of every three minibatches only ``dis_content`` is updated; on the third every discriminator is updated,
then ``eg``, then ``g_alone``. Here one training step is one such group: the batch holds ``d_iter`` minibatches of
``2 k`` images per domain (``train.batch_size = 2 k d_iter``; official k = 1, so 6) and the phases are, in order,
``content_1`` .. ``content_{d_iter-1}`` (``dis_content`` on minibatches 1 .. d_iter-1), then on the last
minibatch ``dis`` (the four image discriminators), ``content``, ``eg`` and ``g_alone``. A step therefore equals one
official ``total_it`` (which counts only the full iterations). The phases express the official optimisers
exactly: the three content phases share one Adam (``Phase.optimizer``, ``lr_scale`` 0.4, ``clip_grad_norm`` 5),
and ``eg`` / ``g_alone`` share one Adam over ``enc_c`` + ``enc_a`` + ``gen`` (``g_alone`` leaves ``enc_a`` without
a gradient, which Adam skips), as the official per-network optimisers. Adam 1e-4, betas (0.5, 0.999), weight decay
1e-4, conv weights N(0, 0.02).

Deliberate deviations from the official code:

1. Each phase computes its own forward pass (with its own draws of the content noise, eps and z): the official
   iteration computes one forward pass and takes the D, EG and G-alone gradients from it. In particular the
   official G-alone backward runs through the graph built *before* the EG optimiser step changed ``enc_c`` and
   ``gen`` (their gradient is taken at the old weights); PyTorch >= 1.5 refuses that stale graph ("modified by an
   inplace operation", DRIT#48, #62), and here ``g_alone`` recomputes its pass with the updated weights.
2. Batches: the official code hard-codes half_size 1 (batch 2). Here each minibatch has ``k`` encoded and ``k``
   random images (``train.batch_size`` a multiple of ``2 d_iter``; a one-line error otherwise). The attribute KL is
   the official per-sample sum over the code's dimensions, averaged over the k samples (the official sums over its
   batch of one); all other terms are means, as in the official code. With k = 1 the maths is the official one.
3. The official loop also makes the last two minibatches of every epoch full updates and counts epochs over the
   larger domain; the toolkit's data stream has no epochs, so every step is one group of ``d_iter`` minibatches.
   The LR schedule is the toolkit's linear per-step decay (official: per epoch, constant to 600 then linear to
   about 0 at 1200); the presets express epochs in steps.
4. ``Dis_content``'s instance norms are never applied in the official code (``if 'norm' == 'Instance'`` compares two
   literals, DRIT#31): every published DRIT/DRIT++ result comes from the network without them, so that is the
   default; ``content_dis_norm`` true adds the intended IN (no parameters: counts unchanged). The image
   discriminators' ``--dis_norm``, ``--dis_spectral_norm`` and ``--dis_scale 1`` (single-scale ``Dis``) options
   are not ported.
5. Small images: the official ``Dis_content`` needs content codes of at least 53 x 53 (``img_size`` >= 212) and
   the 4-layer MultiScaleDis at least 16 px at its coarsest scale (``img_size`` >= 64). ``content_dis_layers``
   (official 3 stride-2 7x7 convs), ``dis_layers`` (4) and ``dis_scale`` (3) are configurable with a ConfigError
   naming the smallest size; the widths ``ch`` (content encoder and generator; the content code has 4 ch channels,
   ``Dis_content`` and the ``G`` MLP the same width), ``attr_ch`` and ``dis_ch`` (official 64 each) too. With the
   defaults the networks are exactly the official ones.
6. Test time: ``encode_style`` returns mu (the official ``test_forward_transfer`` samples N(mu, sigma)), so an
   example-guided translation is deterministic; ``translate`` uses the toolkit's test transform (resize to
   ``img_size``; official: resize 256 then centre-crop 216).
7. Mechanics: sigmoid + BCE is computed from logits (same value, stable); noise uses ``randn_like`` on the input's
   device (official ``.cuda``); weights are drawn once in build order (the official code redraws every conv
   weight in ``initialize()``; same distribution); terms whose weight is 0 are not computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model
from nicegan.nn.losses import bce_to

#: the smallest image side an attribute encoder takes (its 2x2 reflection paddings at 1/8 resolution)
MIN_STYLE_SIZE = 16


@dataclass
class DRITConfig(ModelConfig):
    """DRIT++ architecture, loss weights and update schedule (official defaults, 216 px crops)."""

    img_size: int = 216  # official training crop (resize 256, random crop 216)
    concat: bool = True  # official --concat 1: E_attr_concat + G_concat; false: E_attr + G (MisINSResBlocks)
    nz: int = 8  # attribute (style) code dimension
    ch: int = 64  # content encoder / generator base width (content codes: 4 ch channels)
    attr_ch: int = 64  # attribute encoder base width
    dis_ch: int = 64  # image discriminator base width
    dis_scale: int = 3  # scales of each MultiScaleDis
    dis_layers: int = 4  # stride-2 convs per scale (official n_layer)
    content_dis_layers: int = 3  # stride-2 7x7 convs of Dis_content before its 4x4 conv
    content_dis_norm: bool = False  # the IN Dis_content was meant to have (official: never applied, DRIT#31)
    mode_seeking: bool = True  # DRIT++ mode-seeking regularisation (official default; false = --no_ms, ECCV DRIT)
    d_iter: int = 3  # minibatches per step: d_iter - 1 content-D-only updates, then one full update
    lambda_adv: float = 1.0  # GAN on encoded-attribute translations (and D's terms)
    lambda_adv_random: float = 1.0  # GAN on random-z translations (g_alone)
    lambda_adv_content: float = 1.0  # content adversarial (encoders vs 0.5)
    lambda_cross_cycle: float = 10.0
    lambda_recon: float = 10.0  # self-reconstruction
    lambda_kl_attr: float = 0.01
    lambda_kl_content: float = 0.01  # mean(z_c^2)
    lambda_latent: float = 10.0  # latent regression
    lambda_ms: float = 1.0  # mode seeking (when mode_seeking)
    content_lr_scale: float = 0.4  # Dis_content's LR relative to train.lr (official 1 / 2.5)
    content_clip_norm: float = 5.0  # Dis_content's gradient-norm clipping (0 = none)

    tiny = {"img_size": 32, "ch": 4, "attr_ch": 4, "dis_ch": 4, "dis_scale": 2, "dis_layers": 2,
            "content_dis_layers": 0, "d_iter": 1}

    @property
    def content_ch(self) -> int:
        """Channels of the content code."""
        return 4 * self.ch

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first value the networks cannot be built or run with."""
        super().validate()
        for key in ("nz", "ch", "attr_ch", "dis_ch", "dis_scale", "dis_layers", "d_iter"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.content_dis_layers < 0:
            raise ConfigError(f"model.content_dis_layers must be >= 0, got {self.content_dis_layers}")
        if not self.content_lr_scale > 0:
            raise ConfigError(f"model.content_lr_scale must be > 0, got {self.content_lr_scale}")
        if self.content_clip_norm < 0:
            raise ConfigError(f"model.content_clip_norm must be >= 0 (0 = no clipping), got {self.content_clip_norm}")
        if self.img_size % 4 or self.img_size < MIN_STYLE_SIZE:
            raise ConfigError(f"model.img_size must be a multiple of 4 and at least {MIN_STYLE_SIZE} for DRIT's "
                              f"encoders and generator, got {self.img_size}")
        if image_dis_sizes(self.img_size, self.dis_scale, self.dis_layers) is None:
            least = MIN_STYLE_SIZE
            while image_dis_sizes(least, self.dis_scale, self.dis_layers) is None:
                least += 4
            raise ConfigError(f"model.img_size {self.img_size} is too small for the image discriminators with "
                              f"dis_scale {self.dis_scale} and dis_layers {self.dis_layers} (each stride-2 conv "
                              f"needs a side >= 2 at every scale): use img_size >= {least}, or fewer scales/layers")
        c = self.img_size // 4
        if content_dis_side(c, self.content_dis_layers) is None:
            least = 4
            while content_dis_side(least, self.content_dis_layers) is None:
                least += 1
            fits = max((n for n in range(self.content_dis_layers) if content_dis_side(c, n) is not None), default=0)
            raise ConfigError(f"model.img_size {self.img_size} is too small for the content discriminator with "
                              f"content_dis_layers {self.content_dis_layers} (content codes {c}x{c}; it needs "
                              f"{least}x{least}, img_size >= {4 * least}): use img_size >= {4 * least} or "
                              f"content_dis_layers {fits}")


def image_dis_sizes(size: int, n_scale: int, n_layer: int) -> list[int] | None:
    """Logit-map side at each scale of a MultiScaleDis on ``size`` px, or None if a conv would see a side < 2."""
    out = []
    for _ in range(n_scale):
        s = size
        for _ in range(n_layer):
            if s < 2:  # reflection padding 1 needs a side of 2
                return None
            s = s // 2  # 4x4 conv, stride 2, padding 1
        out.append(s)
        size = (size + 1) // 2  # AvgPool2d(3, 2, 1)
    return out


def content_dis_side(c: int, n_layer: int) -> int | None:
    """Logit-map side of Dis_content on c x c content codes, or None if it cannot run."""
    for _ in range(n_layer):
        if c < 5:  # 7x7 kernel over a side padded by 1 each way
            return None
        c = (c - 5) // 2 + 1
    return c - 3 if c >= 4 else None  # 4x4 conv, no padding


# --- layers (official networks.py; each keeps its layers where the official one does, for the state-dict keys) ----


class LeakyReLUConv2d(nn.Module):
    """ReflectionPad, conv, [IN], LeakyReLU(0.01)."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, padding: int = 0, norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(padding), nn.Conv2d(n_in, n_out, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(n_out))
        layers.append(nn.LeakyReLU(0.01, inplace=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ReLUINSConv2d(nn.Module):
    """ReflectionPad, conv, IN, ReLU."""

    def __init__(self, n_in: int, n_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.ReflectionPad2d(padding), nn.Conv2d(n_in, n_out, kernel, stride),
                                   nn.InstanceNorm2d(n_out), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _conv3x3(n_in: int, n_out: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(n_in, n_out, 3)]


class INSResBlock(nn.Module):
    """(pad, conv3x3, IN, ReLU, pad, conv3x3, IN) + x."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*_conv3x3(ch, ch), nn.InstanceNorm2d(ch), nn.ReLU(inplace=True),
                                   *_conv3x3(ch, ch), nn.InstanceNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + x


class MisINSResBlock(nn.Module):
    """Residual block with the attribute injected twice: conv3x3 + IN, [., z] through two 1x1 convs, again."""

    def __init__(self, dim: int, dim_extra: int) -> None:
        super().__init__()

        def conv() -> nn.Sequential:
            return nn.Sequential(nn.Sequential(*_conv3x3(dim, dim)), nn.InstanceNorm2d(dim))

        def mix() -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(dim + dim_extra, dim + dim_extra, 1), nn.ReLU(),
                                 nn.Conv2d(dim + dim_extra, dim, 1), nn.ReLU())

        self.conv1, self.conv2, self.blk1, self.blk2 = conv(), conv(), mix(), mix()

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        z = _tile(z, x)
        out = self.blk1(torch.cat([self.conv1(x), z], 1))
        return self.blk2(torch.cat([self.conv2(out), z], 1)) + x


class LayerNorm(nn.Module):
    """Layer norm over C x H x W with a per-channel affine (official DRIT LayerNorm: weight 1, bias 0)."""

    def __init__(self, n_out: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_out, 1, 1))
        self.bias = nn.Parameter(torch.zeros(n_out, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape[1:]
        return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape), self.eps)


class ReLUINSConvTranspose2d(nn.Module):
    """Transposed conv (x2), LayerNorm (despite the official name), ReLU."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.ConvTranspose2d(n_in, n_out, 3, 2, 1, output_padding=1), LayerNorm(n_out),
                                   nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class GaussianNoiseLayer(nn.Module):
    """``x + N(0, I)`` in training, ``x`` in eval."""

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.randn_like(x) if self.training else x


class BasicBlock(nn.Module):
    """E_attr_concat's residual down-block: LReLU, conv3x3, LReLU, conv3x3 + avg-pool; shortcut avg-pool + 1x1."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.LeakyReLU(0.2), *_conv3x3(n_in, n_in), nn.LeakyReLU(0.2),
                                  nn.Sequential(*_conv3x3(n_in, n_out), nn.AvgPool2d(2)))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(n_in, n_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + self.shortcut(x)


def _tile(z: Tensor, like: Tensor) -> Tensor:
    """B x nz codes as B x nz x H x W maps of ``like``'s size."""
    return z.view(z.shape[0], z.shape[1], 1, 1).expand(-1, -1, like.shape[2], like.shape[3])


def init_conv_weights(module: nn.Module) -> None:
    """Official ``gaussian_weights_init``: N(0, 0.02) on every Conv2d / ConvTranspose2d weight, biases untouched."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)


def _domain(domain: str) -> str:
    if domain not in ("a", "b"):
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    return domain


# --- networks -----------------------------------------------------------------------------------------------------


class EContent(nn.Module):
    """Official E_content: per-domain ``convA`` / ``convB`` and the shared ``conv_share`` (+ training noise)."""

    def __init__(self, img_ch: int, ch: int) -> None:
        super().__init__()

        def encoder() -> nn.Sequential:
            layers: list[nn.Module] = [LeakyReLUConv2d(img_ch, ch, 7, 1, 3)]
            t = ch
            for _ in range(2):
                layers.append(ReLUINSConv2d(t, t * 2, 3, 2, 1))
                t *= 2
            layers += [INSResBlock(t) for _ in range(3)]
            return nn.Sequential(*layers)

        # Official registration order (the optimizer's parameter order): conv_share, convA, convB.
        self.conv_share = nn.Sequential(INSResBlock(4 * ch), GaussianNoiseLayer())
        self.convA = encoder()
        self.convB = encoder()

    def forward(self, x: Tensor, domain: str) -> Tensor:
        """Content codes of images ``x`` of ``domain``."""
        return self.conv_share((self.convA if _domain(domain) == "a" else self.convB)(x))


class EAttrConcat(nn.Module):
    """Official E_attr_concat: per domain a conv stack and the mu (``fc_*``) and log-variance (``fcVar_*``) heads."""

    def __init__(self, img_ch: int, ch: int, nz: int) -> None:
        super().__init__()

        def stack() -> nn.Sequential:
            layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(img_ch, ch, 4, 2)]
            for n in range(1, 4):  # official n_blocks 4, max_ndf 4: widths ch, 2ch, 3ch, 4ch
                layers.append(BasicBlock(ch * n, ch * (n + 1)))
            return nn.Sequential(*layers, nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1))

        # Official registration order: fc_A, fcVar_A, conv_A, then B.
        self.fc_A = nn.Sequential(nn.Linear(4 * ch, nz))
        self.fcVar_A = nn.Sequential(nn.Linear(4 * ch, nz))
        self.conv_A = stack()
        self.fc_B = nn.Sequential(nn.Linear(4 * ch, nz))
        self.fcVar_B = nn.Sequential(nn.Linear(4 * ch, nz))
        self.conv_B = stack()

    def forward(self, x: Tensor, domain: str) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)`` of the attribute codes of images ``x`` of ``domain``."""
        if _domain(domain) == "a":
            h = self.conv_A(x).flatten(1)
            return self.fc_A(h), self.fcVar_A(h)
        h = self.conv_B(x).flatten(1)
        return self.fc_B(h), self.fcVar_B(h)


class EAttr(nn.Module):
    """Official E_attr (``--concat 0``): a deterministic conv stack to the nz-dimensional code per domain."""

    def __init__(self, img_ch: int, ch: int, nz: int) -> None:
        super().__init__()

        def stack() -> nn.Sequential:
            widths = [ch, 2 * ch, 4 * ch, 4 * ch, 4 * ch]
            layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(img_ch, ch, 7), nn.ReLU(inplace=True)]
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.ReflectionPad2d(1), nn.Conv2d(n_in, n_out, 4, 2), nn.ReLU(inplace=True)]
            return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Conv2d(4 * ch, nz, 1))

        self.model_a = stack()
        self.model_b = stack()

    def forward(self, x: Tensor, domain: str) -> Tensor:
        """Attribute codes (B x nz) of images ``x`` of ``domain``."""
        return (self.model_a if _domain(domain) == "a" else self.model_b)(x).flatten(1)


class GConcat(nn.Module):
    """Official G_concat: shared ``dec_share`` block, then per domain the z-concatenating decoder."""

    def __init__(self, img_ch: int, ch: int, nz: int) -> None:
        super().__init__()
        c = 4 * ch
        self.dec_share = nn.Sequential(INSResBlock(c))
        for d in "AB":
            t = c + nz
            setattr(self, f"dec{d}1", nn.Sequential(*[INSResBlock(t) for _ in range(3)]))
            t += nz
            setattr(self, f"dec{d}2", nn.Sequential(ReLUINSConvTranspose2d(t, t // 2)))
            t = t // 2 + nz
            setattr(self, f"dec{d}3", nn.Sequential(ReLUINSConvTranspose2d(t, t // 2)))
            t = t // 2 + nz
            setattr(self, f"dec{d}4", nn.Sequential(nn.ConvTranspose2d(t, img_ch, 1), nn.Tanh()))

    def forward(self, x: Tensor, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` from content codes ``x`` and attribute codes ``z``."""
        d = "A" if _domain(domain) == "a" else "B"
        out = self.dec_share(x)
        for i in range(1, 5):
            out = getattr(self, f"dec{d}{i}")(torch.cat([out, _tile(z, out)], 1))
        return out


class GMis(nn.Module):
    """Official G (``--concat 0``): an MLP maps z to four 4ch-wide codes, one per MisINSResBlock."""

    def __init__(self, img_ch: int, ch: int, nz: int) -> None:
        super().__init__()
        c = 4 * ch
        self.tch_add = c
        for d in "AB":
            for i in range(1, 5):
                setattr(self, f"dec{d}{i}", MisINSResBlock(c, c))
            setattr(self, f"dec{d}5", nn.Sequential(ReLUINSConvTranspose2d(c, c // 2),
                                                    ReLUINSConvTranspose2d(c // 2, c // 4),
                                                    nn.ConvTranspose2d(c // 4, img_ch, 1), nn.Tanh()))
        for d in "AB":
            setattr(self, f"mlp{d}", nn.Sequential(nn.Linear(nz, c), nn.ReLU(inplace=True), nn.Linear(c, c),
                                                   nn.ReLU(inplace=True), nn.Linear(c, 4 * c)))

    def forward(self, x: Tensor, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` from content codes ``x`` and attribute codes ``z``."""
        d = "A" if _domain(domain) == "a" else "B"
        codes = getattr(self, f"mlp{d}")(z).split(self.tch_add, dim=1)
        out = x
        for i, zi in enumerate(codes, start=1):
            out = getattr(self, f"dec{d}{i}")(out, zi)
        return getattr(self, f"dec{d}5")(out)


class MultiScaleDis(nn.Module):
    """Official MultiScaleDis: ``n_scale`` patch discriminators on the image and its AvgPool-halved copies."""

    def __init__(self, img_ch: int, ch: int, n_scale: int, n_layer: int) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.Diss = nn.ModuleList()
        for _ in range(n_scale):
            layers: list[nn.Module] = [LeakyReLUConv2d(img_ch, ch, 4, 2, 1)]
            t = ch
            for _ in range(1, n_layer):
                layers.append(LeakyReLUConv2d(t, t * 2, 4, 2, 1))
                t *= 2
            layers.append(nn.Conv2d(t, 1, 1))
            self.Diss.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Logit maps, finest scale first."""
        outs = []
        for dis in self.Diss:
            outs.append(dis(x))
            x = self.downsample(x)
        return outs


class DisContent(nn.Module):
    """Official Dis_content: 7x7 s2 convs, a 4x4 conv and a 1x1 conv to logits on content codes."""

    def __init__(self, ch: int, n_layer: int, norm: bool) -> None:
        super().__init__()
        layers = [LeakyReLUConv2d(ch, ch, 7, 2, 1, norm=norm) for _ in range(n_layer)]
        self.model = nn.Sequential(*layers, LeakyReLUConv2d(ch, ch, 4, 1, 0), nn.Conv2d(ch, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def _bce(logits: Tensor | list[Tensor], target: float) -> Tensor:
    """Sigmoid + BCE against ``target`` averaged over each logit map, summed over the maps (scales)."""
    maps = logits if isinstance(logits, list) else [logits]
    return sum(bce_to(m, target) for m in maps)


class Minibatch:
    """One official minibatch: the "encoded" half feeds the attribute path, the "random" half disA2 / disB2."""

    def __init__(self, batch: dict[str, Tensor], index: int, d_iter: int) -> None:
        a, b = batch["a"], batch["b"]
        n = a.shape[0]
        if n != b.shape[0] or n % (2 * d_iter):
            raise NiceganError(f"drit needs train.batch_size to be a multiple of 2 x model.d_iter = {2 * d_iter} "
                               f"(d_iter minibatches, each split into an encoded and a random half), got "
                               f"{n} and {b.shape[0]} images")
        k = n // (2 * d_iter)
        lo = 2 * k * index
        self.a_enc, self.a_rand = a[lo:lo + k], a[lo + k:lo + 2 * k]
        self.b_enc, self.b_rand = b[lo:lo + k], b[lo + k:lo + 2 * k]
        self.k = k


@register_model("drit")
class DRIT(TranslationModel):
    """DRIT++ (DRIT with ``mode_seeking`` false): content and attribute encoders, generators, four image Ds and
    the content D; per step ``d_iter - 1`` content-D updates, then D, content D, EG and G-alone."""

    card = ModelCard(
        title="DRIT / DRIT++",
        paper=("Lee, Tseng, Huang, Singh, Yang: Diverse Image-to-Image Translation via Disentangled "
               "Representations, ECCV 2018 (DRIT++: IJCV 2020)"),
        paper_url="https://arxiv.org/abs/1808.00948",
        code="HsinYingLee/DRIT",
        commit="f19f50a",
        parameters=21_270_982 + 4 * 8_271_171 + 10_683_649,
        released="one example model (Yosemite summer/winter)",
    )

    config_class = DRITConfig

    def __init__(self, cfg: DRITConfig) -> None:
        super().__init__(cfg)
        # Official construction order: the image Ds, the content D, then the encoders and the generator.
        for name in ("dis_a", "dis_b", "dis_a2", "dis_b2"):
            self.nets[name] = MultiScaleDis(cfg.img_ch, cfg.dis_ch, cfg.dis_scale, cfg.dis_layers)
        self.nets["dis_content"] = DisContent(cfg.content_ch, cfg.content_dis_layers, cfg.content_dis_norm)
        self.nets["enc_c"] = EContent(cfg.img_ch, cfg.ch)
        attr_cls = EAttrConcat if cfg.concat else EAttr
        self.nets["enc_a"] = attr_cls(cfg.img_ch, cfg.attr_ch, cfg.nz)
        self.nets["gen"] = (GConcat if cfg.concat else GMis)(cfg.img_ch, cfg.ch, cfg.nz)
        init_conv_weights(self.nets)
        self.style_dim = cfg.nz

        content = {"optimizer": "dis_content", "lr_scale": cfg.content_lr_scale,
                   "clip_grad_norm": cfg.content_clip_norm or None}
        last = cfg.d_iter - 1
        phases: dict[str, Phase] = {}
        for i in range(last):
            phases[f"content_{i + 1}"] = Phase(("dis_content",), self._content_loss_on(i), **content)
        phases["dis"] = Phase(("dis_a", "dis_a2", "dis_b", "dis_b2"), self.dis_loss)
        phases["content"] = Phase(("dis_content",), self._content_loss_on(last), **content)
        phases["eg"] = Phase(("enc_c", "enc_a", "gen"), self.eg_loss, optimizer="gen")
        phases["g_alone"] = Phase(("enc_c", "gen"), self.g_alone_loss, optimizer="gen")
        self.phases = phases
        self.inference_nets = ("enc_c", "enc_a", "gen")

    # --- pieces -------------------------------------------------------------------------------------------------
    def _attr(self, x: Tensor, domain: str) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(z, mu, logvar)``: a sampled attribute code (concat) or the deterministic one (mu, logvar None)."""
        if not self.cfg.concat:
            return self.nets["enc_a"](x, domain), None, None
        mu, logvar = self.nets["enc_a"](x, domain)
        return mu + torch.randn_like(mu) * logvar.mul(0.5).exp(), mu, logvar

    def _attr_mean(self, x: Tensor, domain: str) -> Tensor:
        out = self.nets["enc_a"](x, domain)
        return out[0] if self.cfg.concat else out

    def _random_z(self, k: int, like: Tensor) -> Tensor:
        return torch.randn(k, self.cfg.nz, device=like.device, dtype=like.dtype)

    def _content_loss_on(self, index: int):
        def loss(batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
            return self.content_loss(batch, index)
        return loss

    # --- training -----------------------------------------------------------------------------------------------
    def content_loss(self, batch: dict[str, Tensor], index: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Content discriminator on minibatch ``index``: content codes of A -> 0, of B -> 1 (encoded halves)."""
        m = Minibatch(batch, index, self.cfg.d_iter)
        with torch.no_grad():
            za, zb = self.nets["enc_c"](m.a_enc, "a"), self.nets["enc_c"](m.b_enc, "b")
        out = self.nets["dis_content"](torch.cat([za, zb]))
        adv = _bce(out[:m.k], 0.0) + _bce(out[m.k:], 1.0)
        return adv, {"adv": adv}

    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Image discriminators: encoded-attribute translations (dis_a, dis_b), random-z ones (dis_a2, dis_b2)."""
        m = Minibatch(batch, self.cfg.d_iter - 1, self.cfg.d_iter)
        k, ms = m.k, self.cfg.mode_seeking
        with torch.no_grad():
            zc_a, zc_b = self.nets["enc_c"](m.a_enc, "a"), self.nets["enc_c"](m.b_enc, "b")
            za_a, za_b = self._attr(m.a_enc, "a")[0], self._attr(m.b_enc, "b")[0]
            zs = [self._random_z(k, zc_a) for _ in range(2 if ms else 1)]
            fake_a = self.nets["gen"](torch.cat([zc_b] * (1 + len(zs))), torch.cat([za_a, *zs]), "a")
            fake_b = self.nets["gen"](torch.cat([zc_a] * (1 + len(zs))), torch.cat([za_b, *zs]), "b")
        terms: dict[str, Tensor] = {}
        for dom, real_enc, real_rand, fake in (("a", m.a_enc, m.a_rand, fake_a), ("b", m.b_enc, m.b_rand, fake_b)):
            enc, rand = fake[:k], fake[k:].split(k)
            terms[f"adv_{dom}"] = self._d_terms(f"dis_{dom}", real_enc, [enc])
            terms[f"adv_{dom}2"] = self._d_terms(f"dis_{dom}2", real_rand, list(rand))
        w = self.cfg
        loss = w.lambda_adv * (terms["adv_a"] + terms["adv_b"]) + w.lambda_adv_random * (terms["adv_a2"]
                                                                                          + terms["adv_b2"])
        return loss, terms

    def _d_terms(self, net: str, real: Tensor, fakes: list[Tensor]) -> Tensor:
        """Official backward_D for each fake: BCE(real, 1) + BCE(fake, 0) summed over the scales (one pass)."""
        n = real.shape[0]
        outs = self.nets[net](torch.cat([real, *fakes]))
        total = real.new_zeros(())
        for j in range(len(fakes)):
            total = total + sum(_bce(o[:n], 1.0) + _bce(o[n * (j + 1):n * (j + 2)], 0.0) for o in outs)
        return total

    def eg_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Encoders + generator: GAN, content adversarial, KL, content L2, cross-cycle and self-reconstruction."""
        w, m = self.cfg, Minibatch(batch, self.cfg.d_iter - 1, self.cfg.d_iter)
        k, enc_c, gen = m.k, self.nets["enc_c"], self.nets["gen"]
        zc_a, zc_b = enc_c(m.a_enc, "a"), enc_c(m.b_enc, "b")
        za_a, mu_a, logvar_a = self._attr(m.a_enc, "a")
        za_b, mu_b, logvar_b = self._attr(m.b_enc, "b")
        # First cross translation and the self-reconstructions, one pass per decoder.
        fake_a, fake_aa = gen(torch.cat([zc_b, zc_a]), torch.cat([za_a, za_a]), "a").split(k)
        fake_b, fake_bb = gen(torch.cat([zc_a, zc_b]), torch.cat([za_b, za_b]), "b").split(k)
        terms: dict[str, tuple[float, Tensor]] = {}
        if w.lambda_adv:
            terms["adv_a"] = (w.lambda_adv, _bce(self.nets["dis_a"](fake_a), 1.0))
            terms["adv_b"] = (w.lambda_adv, _bce(self.nets["dis_b"](fake_b), 1.0))
        if w.lambda_adv_content:
            terms["adv_content_a"] = (w.lambda_adv_content, _bce(self.nets["dis_content"](zc_a), 0.5))
            terms["adv_content_b"] = (w.lambda_adv_content, _bce(self.nets["dis_content"](zc_b), 0.5))
        if w.lambda_kl_attr:
            terms["kl_attr_a"] = (w.lambda_kl_attr, _kl(za_a, mu_a, logvar_a))
            terms["kl_attr_b"] = (w.lambda_kl_attr, _kl(za_b, mu_b, logvar_b))
        if w.lambda_kl_content:
            terms["kl_content_a"] = (w.lambda_kl_content, zc_a.square().mean())
            terms["kl_content_b"] = (w.lambda_kl_content, zc_b.square().mean())
        if w.lambda_cross_cycle:
            # Second cross translation: fake_a holds B's content and A's attribute, fake_b the reverse.
            zc_recon_b, zc_recon_a = enc_c(fake_a, "a"), enc_c(fake_b, "b")
            za_recon_a, za_recon_b = self._attr(fake_a, "a")[0], self._attr(fake_b, "b")[0]
            terms["cross_cycle_a"] = (w.lambda_cross_cycle, F.l1_loss(gen(zc_recon_a, za_recon_a, "a"), m.a_enc))
            terms["cross_cycle_b"] = (w.lambda_cross_cycle, F.l1_loss(gen(zc_recon_b, za_recon_b, "b"), m.b_enc))
        if w.lambda_recon:
            terms["recon_a"] = (w.lambda_recon, F.l1_loss(fake_aa, m.a_enc))
            terms["recon_b"] = (w.lambda_recon, F.l1_loss(fake_bb, m.b_enc))
        return _weighted(terms)

    def g_alone_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Content encoder + generator (not the attribute encoder): random-z GAN, latent regression, mode seeking."""
        w, m = self.cfg, Minibatch(batch, self.cfg.d_iter - 1, self.cfg.d_iter)
        k, enc_c, gen = m.k, self.nets["enc_c"], self.nets["gen"]
        zc_a, zc_b = enc_c(m.a_enc, "a"), enc_c(m.b_enc, "b")
        zs = [self._random_z(k, zc_a) for _ in range(2 if w.mode_seeking else 1)]
        n = len(zs)
        # One z per sample, shared by both directions (official z_random / z_random2).
        rand_a = gen(torch.cat([zc_b] * n), torch.cat(zs), "a").split(k)
        rand_b = gen(torch.cat([zc_a] * n), torch.cat(zs), "b").split(k)
        terms: dict[str, tuple[float, Tensor]] = {}
        if w.lambda_adv_random:
            for dom, fakes in (("a", rand_a), ("b", rand_b)):
                outs = self.nets[f"dis_{dom}2"](torch.cat(fakes))
                for j in range(n):
                    name = f"adv_random_{dom}" if j == 0 else f"adv_random{j + 1}_{dom}"
                    terms[name] = (w.lambda_adv_random, _bce([o[j * k:(j + 1) * k] for o in outs], 1.0))
        if w.lambda_latent:
            # The attribute encoder is frozen here (deliberately, DRIT#8) but the gradient reaches the translations.
            terms["latent_a"] = (w.lambda_latent, (self._attr_mean(rand_a[0], "a") - zs[0]).abs().mean())
            terms["latent_b"] = (w.lambda_latent, (self._attr_mean(rand_b[0], "b") - zs[0]).abs().mean())
        if w.mode_seeking and w.lambda_ms:
            dz = (zs[1] - zs[0]).abs().mean()
            terms["mode_seeking_ab"] = (w.lambda_ms, 1 / ((rand_b[1] - rand_b[0]).abs().mean() / dz + 1e-5))
            terms["mode_seeking_ba"] = (w.lambda_ms, 1 / ((rand_a[1] - rand_a[0]).abs().mean() / dz + 1e-5))
        if not terms:
            raise NiceganError("drit: every g_alone term has weight 0 (lambda_adv_random, lambda_latent, lambda_ms)")
        return _weighted(terms)

    # --- inference ----------------------------------------------------------------------------------------------
    def translate(self, x: Tensor, direction: str, style: Tensor | None = None) -> Tensor:
        """Translate ``x`` with attribute codes ``style`` (B x nz or 1 x nz) of the target domain; None: z ~ N(0, I)
        from torch's global generator (seed it for reproducible styles)."""
        src, dst = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        content = self.nets["enc_c"](x, src)
        n = x.shape[0]
        if style is None:
            z = self._random_z(n, content)
        else:
            z = style.to(device=content.device, dtype=content.dtype)
            if z.dim() == 1:
                z = z.unsqueeze(0)
            if z.dim() != 2 or z.shape[1] != self.cfg.nz or z.shape[0] not in (1, n):
                raise NiceganError(f"drit style codes must be {n} x {self.cfg.nz} or 1 x {self.cfg.nz} for {n} "
                                   f"image(s), got {tuple(style.shape)}")
            z = z.expand(n, -1)
        return self.nets["gen"](content, z, dst)

    def encode_style(self, x: Tensor, domain: str) -> Tensor:
        """Attribute codes (B x nz) of images ``x`` of ``domain``: mu (``concat``) or E_attr's code."""
        if min(x.shape[-2:]) < MIN_STYLE_SIZE:
            raise NiceganError(f"drit's attribute encoder needs images of at least {MIN_STYLE_SIZE} x "
                               f"{MIN_STYLE_SIZE} px, got {x.shape[-1]} x {x.shape[-2]}")
        return self._attr_mean(x, _domain(domain))

    def check_input_size(self, size: int) -> None:
        # Two stride-2 convs down and two x2 transposed convs up give the input size back only for multiples of 4;
        # the residual blocks' reflection padding at 1/4 resolution needs a side of 2.
        if size % 4 or size < 8:
            raise ConfigError(f"the input size must be a multiple of 4 and at least 8 for DRIT, got {size}")

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Rows: real, then translations with three attribute codes drawn from a fixed seed (the same codes in
        every grid, so grids of successive steps compare; torch's global generator is left untouched)."""
        g = torch.Generator().manual_seed(0)
        codes = torch.randn(3, 1, self.cfg.nz, generator=g)
        rows = {"real": x}
        for i, name in enumerate(("fake", "style_2", "style_3")):
            rows[name] = self.translate(x, direction, codes[i])
        return rows


def _kl(z: Tensor, mu: Tensor | None, logvar: Tensor | None) -> Tensor:
    """Official attribute KL: -0.5 sum(1 + logvar - mu^2 - e^logvar) per sample (concat), else mean(z^2)."""
    if mu is None or logvar is None:
        return z.square().mean()
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1).mean()


def _weighted(terms: dict[str, tuple[float, Tensor]]) -> tuple[Tensor, dict[str, Tensor]]:
    loss = sum(weight * value for weight, value in terms.values())
    return loss, {k: v for k, (_, v) in terms.items()}
