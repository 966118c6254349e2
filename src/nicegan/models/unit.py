"""UNIT: "Unsupervised Image-to-Image Translation Networks".

Liu, Breuel, Kautz. NeurIPS 2017. arXiv:1703.00848.
Official code: https://github.com/mingyuliutw/UNIT, branch ``version_02`` (src/trainers/cocogan_nets.py,
common_net.py, cocogan_trainer.py, exps/unit/*.yaml), which this file follows.

Which code: the repository's master branch is a 2018 re-release in the MUNIT style with *no* weight sharing between
the domains; its README sends readers who want the NIPS-paper network to ``version_02``. That branch has the
paper's shared layers and its "reduced VAE" latent, so it is the faithful UNIT and the one reproduced here.

Network (official ``COCOResGen`` + ``COCODis``, the pair of the cat2tiger / corgi2husky configs). One net ``gen``
holds both domains, so the sharing lives inside a single module:

* per-domain encoders ``encode_A`` / ``encode_B``: conv 7x7 + LeakyReLU(0.01), two stride-2 convs 3x3 (COCOResGen:
  InstanceNorm + ReLU; COCOResGen2: LeakyReLU, no norm), 3 residual blocks;
* ``enc_shared``: ONE residual block used by both domains, then the Gaussian latent with fixed unit variance: the
  encoder outputs the mean ``mu`` and training decodes ``z = mu + N(0, I)``; eval uses ``z = mu``;
* ``dec_shared``: ONE residual block used by both domains;
* per-domain decoders ``decode_A`` / ``decode_B``: 3 residual blocks, two stride-2 transposed convs 3x3, a 1x1
  transposed conv to RGB, tanh.

A->B is ``decode_B(dec_shared(enc_shared(encode_A(x))))``. The default generator is ``COCOResGen`` because the
official configs pair it with ``COCODis`` (the single-scale D implemented here) for animal translation
(cat2tiger, corgi2husky), the kind of task NICE-GAN is benchmarked on; ``COCOResGen2`` (street and face configs) is
available as ``model.generator``. Both have the same parameter count. The ``unit-digits`` presets use
``COCOResGen2``: on MNIST <-> optdigits at 32 px the InstanceNorm generator loses to its discriminators within ~50
steps and its translations collapse to one image (chance-level label accuracy after 1000 steps), while
``COCOResGen2`` learns the translation in the same budget (measurements in docs/results.md).

The discriminators are ``COCODis``, one per domain: 6 convs 3x3 s2 + LeakyReLU(0.01), then a 1x1 conv to a logit
map, vanilla GAN (sigmoid + BCE).

Losses (official ``COCOGANTrainer``; D step first, then G step): GAN 10 (the generator is scored on the
translations only), self-reconstruction L1 100, cycle L1 100, KL = mean(z^2) of the noisy code z = mu + eps (as the
official code; ``kl_on``) direct 0.1 and cycle 0.1; these are the paper's lambda_0 = 10, lambda_1 = lambda_3 = 0.1,
lambda_2 = lambda_4 = 100. Conv weights are initialised N(0, 0.02), biases keep the PyTorch default.

State-dict keys inside each net are the official ones: ``gen`` loads an official ``*_gen_*.pkl`` as is (its
``encode_A``, ``enc_shared``, ... keys); ``dis_a`` / ``dis_b`` take the official ``dis`` keys with ``model_A.`` /
``model_B.`` renamed to ``model.``.

Domain adaptation (``arch: da32``; the paper's SVHN -> MNIST networks, selected by ``model.arch``): net ``gen`` is the
official ``CoVAE32x32`` and net ``dis`` the official ``CoDis32x32``, both loading an official ``*_gen_*.pkl`` /
``*_dis_*.pkl`` as is (keys ``g_en_conv0_a``, ``g_en_conv1`` ... ``g_vae.en_mu`` / ``en_sigma``, ``g_de_conv0`` ...
``g_de_conv3_a`` / ``_b``, ``de_conv4_a`` / ``_b``; ``conv0_a`` / ``conv0_b``, ``conv1`` ... ``conv3``, ``conv4`` (real
/ fake), ``conv_cl`` (classifier)). G: each domain's image plus 2 fixed xy-coordinate channels, a per-domain conv 5x5
s2, shared convs 5x5 s2, 8x8 (to 1 x 1) and 1x1, the full Gaussian VAE head (1x1 convs for ``mu`` and softplus ``sd``,
``z = mu + sd * eps``), shared transposed convs 4x4 up to 16 x 16, per-domain transposed conv 4x4 s2 and 1x1 + tanh;
every hidden layer is conv + affine-free BatchNorm + learned bias + LeakyReLU(0.01). D: per-domain conv 5x5 + ReLU +
max-pool, three shared such blocks, dropout 0.1 / 0.3 / 0.5 / 0.5 before the heads, a 2-way real/fake conv 2x2 and the
10-way classifier conv 2x2 on the shared 2 x 2 features. Losses (D step then G step; GAN terms are 2-class softmax CE):
D = ``adv_weight`` (gan_w 1) x [CE(real pairs, 1) + (CE(reconstructed pairs, 0) + CE(translated pairs, 0)) / 2] +
``cls_weight`` (cls_w 10) x the classifier's CE on labelled A + ``feat_weight`` (feature_w 1e-4) x the per-image squared
distance between the two branches' highest shared features (without dropout) of x_ab and x_aa, and of x_ba and x_bb; G =
``adv_weight`` x [CE(reconstructed, 1) + CE(translated, 1)] + ``recon_weight`` (ll_normalized_direct_w 1e-3) x the
squared error summed per image + ``kl_weight`` (kl_normalized_direct_w 1e-4) x 2 sum(mu^2 + sd^2 - log sd^2) / rows; no
cycle term. Init: G conv weights N(0, 0.02), learned biases and the VAE conv biases N(0, 0.002); D Xavier-uniform gain
sqrt 2, bias 0.1. ``classify(x, "b")`` is B's first D block, the shared D blocks and the classifier head (official
``classify_b``).

Deliberate deviations from the official code:

1. Work that does not change the numbers is skipped: the D step runs the generator under ``no_grad`` and decodes
   only the two translations (the official code runs the whole generator with gradients and also decodes the
   reconstructions, which the D loss never sees); the G step decodes the reconstructions only if their weight is
   non-zero and runs the cycle pass only if a cycle term is weighted; the two cycle re-encodings share one batched
   pass (instance norm and the noise are per sample, so this is the official maths).
2. KL (``kl_on``; not a deviation by default): as the official code, the KL is mean(z^2) on the *noisy* code
   z = mu + eps (``kl_on: noisy``, checked against the official trainer by tests/test_golden_unit.py). ``kl_on:
   mean`` takes mean(mu^2) on the mean instead, the paper's term: the same expected gradient without the official's
   extra zero-mean noise 2 eps / N, and each KL term 1 lower in expectation, so loss totals sit 0.4 below the
   official logs at the default weights (0.1 x 2 direct + 0.1 x 2 cycle). The official direct term is
   ``kl_direct_link_w * (enc_loss + enc_loss)`` with ``enc_loss`` the mean over *both* domains' codes: that equals
   ``kl_weight * (kl_a + kl_b)`` with per-domain means (equal batch sizes), which is what is computed.
3. Domain adaptation (``arch: da32``, official cocogan_nets_da.py + cocogan_trainer_da.py, exps/unit/svhn2mnist.yaml,
   ``COCOGANDAContextTrainer``): the networks are the official ones, with the official state-dict keys, counts
   (gen_ch 96, dis_ch 64, 3 + 1 channels: 22,606,468 + 4,332,812) and init; two mechanical deviations. (a) Both
   domains have ``img_ch`` channels (the toolkit's images are RGB; the official B is 1-channel MNIST, and its
   training set doubled with inverted digits, which is the data's business, not the model's). (b) Work that does
   not change the expected gradients is shared: the D step runs the generator under ``no_grad`` (the official's
   generator gradients there are discarded by the next ``zero_grad``), each D branch scores real, reconstructed and
   translated images in one pass (no batch statistics in D), the classifier reads the real-A features of that pass
   instead of a second ``classify_a`` pass (so its dropout mask is the adversarial head's, the same distribution),
   and the shared layers without dropout run only on the fakes whose features are matched. In eval mode the latent
   is ``mu`` (the official always samples; it never translates in eval). The previous mode of this toolkit, a
   linear head on the translation network's latent code, was removed: it reached 26.7 % on domain B, it is not
   the paper's method, and the translation arch has no reason to carry a classifier.
4. Small images: the number of D convs (``n_dis_layer``, official 6) and all block counts are configurable, with a
   ConfigError when a D conv would get an input smaller than 2x2 (``img_size < 2 ** n_dis_layer``).
5. Seeded initial weights are not drawn in the official order (the official code builds D before G and redraws
   every conv weight twice); the distributions are the official ones.
6. Mechanics: the noise uses ``randn_like`` on the input's device (the official layer hard-codes ``.cuda``); BCE is
   computed from logits (numerically stable, same value); the official Python-2 / PyTorch-0.x trainer, its
   ``exec``-built nets and its image-list loaders are replaced by the toolkit's loop and data pipeline (the cat/dog
   configs' 1.2 rescale + 216 crop becomes the toolkit's resize to img_size + 30 and random crop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model
from nicegan.nn.losses import bce_to, ce_to

GENERATORS = ("COCOResGen", "COCOResGen2")
DA_SIZE = 32  # the DA networks' fixed input size (an 8 x 8 valid conv to 1 x 1 in G, a 2 x 2 head in D)
ARCHS = ("translation", "da32")


@dataclass
class UNITConfig(ModelConfig):
    """UNIT architecture (official version_02 cat2tiger config at 256 px) and loss weights.

    ``arch: da32`` selects the official domain-adaptation networks (CoVAE32x32 + CoDis32x32, 32 px only); they use
    ``ch`` (official gen_ch 96), ``dis_ch`` (64), ``n_classes`` and the weights, and ignore ``generator``, the block
    counts, ``res_dropout`` and ``n_dis_layer``. The weights keep their names but follow the DA code's losses there
    (see the module docstring); preset ``unit-digits-da`` sets the official DA values.
    """

    arch: Literal["translation", "da32"] = "translation"  # translation nets, or the official DA nets (svhn2mnist)
    generator: Literal["COCOResGen", "COCOResGen2"] = "COCOResGen"  # official generator class
    ch: int = 64  # generator base width; the latent has ch * 2 ** (n_enc_front_blk - 1) channels
    n_enc_front_blk: int = 3  # conv 7x7 + (n - 1) stride-2 convs; also the decoder's (n - 1) up-sampling stages
    n_enc_res_blk: int = 3  # per-domain encoder residual blocks
    n_enc_shared_blk: int = 1  # shared encoder residual blocks (before the Gaussian latent)
    n_gen_shared_blk: int = 1  # shared decoder residual blocks
    n_gen_res_blk: int = 3  # per-domain decoder residual blocks
    res_dropout: float = 0.0  # dropout at the end of every residual block (official res_dropout_ratio)
    dis_ch: int = 64  # discriminator base width
    n_dis_layer: int = 6  # stride-2 convs of each COCODis (official n_layer)
    adv_weight: float = 10.0  # gan_w (lambda_0); da32: gan_w (official 1)
    recon_weight: float = 100.0  # ll_direct_link_w (lambda_2), L1 mean; da32: ll_normalized_direct_w (1e-3), SSE/image
    cycle_weight: float = 100.0  # ll_cycle_link_w (lambda_4); da32 has no cycle term: must be 0
    kl_weight: float = 0.1  # kl_direct_link_w (lambda_1), see kl_on; da32: kl_normalized_direct_w (1e-4), summed KL
    kl_cycle_weight: float = 0.1  # kl_cycle_link_w (lambda_3); da32: must be 0
    #: translation arch: the KL's code: "noisy" = mean(z^2) of z = mu + eps (official COCOGANTrainer), "mean" =
    #: mean(mu^2) (the paper's term, 1 per code element lower, same expected gradient); da32 ignores it
    kl_on: Literal["noisy", "mean"] = "noisy"
    cls_weight: float = 0.0  # da32 only, > 0: cls_w (10), CE of the D's classifier on labelled domain A
    feat_weight: float = 0.0  # da32 only: feature_w (1e-4), feature matching between the two D branches
    n_classes: int = 10

    tiny = {"img_size": 32, "ch": 4, "n_enc_res_blk": 1, "n_gen_res_blk": 1, "dis_ch": 4, "n_dis_layer": 3}

    @property
    def latent_ch(self) -> int:
        """Channels of the shared latent code."""
        return self.ch * 2 ** (self.n_enc_front_blk - 1)

    @property
    def latent_size(self) -> int:
        """Height (= width) of the shared latent code."""
        return self.img_size // 2 ** (self.n_enc_front_blk - 1)

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the networks cannot be built or run at this size."""
        super().validate()
        if self.arch not in ARCHS:
            raise ConfigError(f"model.arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.arch == "da32":
            self._validate_da32()
            return
        if self.cls_weight > 0 or self.feat_weight > 0:
            raise ConfigError("model.cls_weight and model.feat_weight belong to UNIT's domain-adaptation networks: "
                              "set model.arch=da32 (preset unit-digits-da)")
        if self.kl_on not in ("noisy", "mean"):
            raise ConfigError(f"model.kl_on must be noisy or mean, got {self.kl_on!r}")
        if self.generator not in GENERATORS:
            raise ConfigError(f"model.generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
        for key in ("ch", "dis_ch", "n_enc_front_blk", "n_dis_layer"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("n_enc_res_blk", "n_enc_shared_blk", "n_gen_shared_blk", "n_gen_res_blk"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("adv_weight", "recon_weight", "cycle_weight", "kl_weight", "kl_cycle_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not (self.adv_weight > 0 or self.recon_weight > 0 or self.cycle_weight > 0):
            raise ConfigError("model.adv_weight, model.recon_weight and model.cycle_weight are all 0: nothing trains "
                              "the generator's images")
        if not 0.0 <= self.res_dropout < 1.0:
            raise ConfigError(f"model.res_dropout must lie in [0, 1), got {self.res_dropout}")
        factor = 2 ** (self.n_enc_front_blk - 1)
        if self.img_size % factor:
            raise ConfigError(f"model.img_size must be a multiple of {factor} (the encoder down-samples "
                              f"{self.n_enc_front_blk - 1} times with n_enc_front_blk {self.n_enc_front_blk}), "
                              f"got {self.img_size}")
        if self.img_size < 2**self.n_dis_layer:
            raise ConfigError(f"model.n_dis_layer {self.n_dis_layer} is too deep for img_size {self.img_size}: each "
                              f"stride-2 conv halves the map, so img_size must be >= 2 ** n_dis_layer = "
                              f"{2**self.n_dis_layer} (use n_dis_layer <= {self.img_size.bit_length() - 1})")

    def _validate_da32(self) -> None:
        for key in ("ch", "dis_ch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.img_size != DA_SIZE:
            raise ConfigError(f"model.arch da32 (CoVAE32x32 + CoDis32x32) takes {DA_SIZE} x {DA_SIZE} images: "
                              f"model.img_size must be {DA_SIZE}, got {self.img_size}")
        if self.cls_weight <= 0:
            raise ConfigError("model.arch da32 adapts domains through its classifier: model.cls_weight must be > 0 "
                              "(official 10)")
        if self.cycle_weight > 0 or self.kl_cycle_weight > 0:
            raise ConfigError("model.cycle_weight and model.kl_cycle_weight must be 0 with model.arch da32 (the "
                              "official domain-adaptation networks have no cycle term)")
        if not (self.adv_weight > 0 or self.recon_weight > 0):
            raise ConfigError("model.adv_weight and model.recon_weight are both 0: nothing trains the generator")
        if self.n_classes < 2:
            raise ConfigError(f"model.n_classes must be >= 2, got {self.n_classes}")


# --- layers (official common_net.py; each keeps its layers in ``.model`` for the official state-dict keys) --------


class ConvBlock(nn.Module):
    """Conv (bias) + activation, or conv + InstanceNorm + ReLU; optionally transposed (x2 up-sampling).

    Official LeakyReLUConv2d / ReLUINSConv2d / LeakyReLUConvTranspose2d / ReLUINSConvTranspose2d.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, norm: bool,
                 transpose: bool = False) -> None:
        super().__init__()
        if transpose:
            conv: nn.Module = nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, output_padding=stride - 1)
        else:
            conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding)
        # LeakyReLU with PyTorch's default slope 0.01, as the official layers (not the 0.2 of most GANs).
        act = [nn.InstanceNorm2d(out_ch), nn.ReLU(True)] if norm else [nn.LeakyReLU(0.01, True)]
        self.model = nn.Sequential(conv, *act)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class INSResBlock(nn.Module):
    """conv3x3, IN, ReLU, conv3x3, IN [, Dropout], plus the input; no activation after the sum."""

    def __init__(self, ch: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(ch, ch, 3, 1, 1), nn.InstanceNorm2d(ch), nn.ReLU(True),
                                   nn.Conv2d(ch, ch, 3, 1, 1), nn.InstanceNorm2d(ch)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + x


class GaussianNoise(nn.Module):
    """The fixed-unit-variance latent: ``mu + N(0, I)`` in training, ``mu`` in eval (official GaussianNoiseLayer)."""

    def forward(self, mu: Tensor) -> Tensor:
        return mu + torch.randn_like(mu) if self.training else mu


def init_conv_weights(module: nn.Module) -> None:
    """Official ``gaussian_weights_init``: N(0, 0.02) on every conv / transposed-conv weight, biases untouched."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)


# --- networks -----------------------------------------------------------------------------------------------------


class SharedLatentGenerator(nn.Module):
    """Both domains' encoders and decoders around the shared blocks (official COCOResGen / COCOResGen2)."""

    def __init__(self, cfg: UNITConfig) -> None:
        super().__init__()
        # COCOResGen: IN + ReLU after the stride-2 (transposed) convs; COCOResGen2: LeakyReLU, no norm.
        norm = cfg.generator == "COCOResGen"
        c = cfg.latent_ch

        def encoder() -> nn.Sequential:
            layers: list[nn.Module] = [ConvBlock(cfg.img_ch, cfg.ch, 7, 1, 3, norm=False)]
            t = cfg.ch
            for _ in range(cfg.n_enc_front_blk - 1):
                layers.append(ConvBlock(t, t * 2, 3, 2, 1, norm=norm))
                t *= 2
            layers += [INSResBlock(t, cfg.res_dropout) for _ in range(cfg.n_enc_res_blk)]
            return nn.Sequential(*layers)

        def decoder() -> nn.Sequential:
            layers: list[nn.Module] = [INSResBlock(c, cfg.res_dropout) for _ in range(cfg.n_gen_res_blk)]
            t = c
            for _ in range(cfg.n_enc_front_blk - 1):
                layers.append(ConvBlock(t, t // 2, 3, 2, 1, norm=norm, transpose=True))
                t //= 2
            layers += [nn.ConvTranspose2d(t, cfg.img_ch, 1, 1, 0), nn.Tanh()]
            return nn.Sequential(*layers)

        # Official attribute names (state-dict keys of an official gen checkpoint).
        self.encode_A = encoder()
        self.encode_B = encoder()
        self.enc_shared = nn.Sequential(*[INSResBlock(c, cfg.res_dropout) for _ in range(cfg.n_enc_shared_blk)])
        self.noise = GaussianNoise()  # no parameters: the official enc_shared's last element, kept apart for mu
        self.dec_shared = nn.Sequential(*[INSResBlock(c, cfg.res_dropout) for _ in range(cfg.n_gen_shared_blk)])
        self.decode_A = decoder()
        self.decode_B = decoder()
        init_conv_weights(self)

    def encoder(self, domain: str) -> nn.Sequential:
        """The per-domain encoder of ``domain`` ("a" or "b")."""
        return self.encode_A if _domain(domain) == "a" else self.encode_B

    def decoder(self, domain: str) -> nn.Sequential:
        """The per-domain decoder of ``domain`` ("a" or "b")."""
        return self.decode_A if _domain(domain) == "a" else self.decode_B

    def mean(self, x: Tensor, domain: str) -> Tensor:
        """Mean ``mu`` of the shared latent code of images ``x`` of ``domain``."""
        return self.enc_shared(self.encoder(domain)(x))

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` from shared codes ``z`` (shared decoder block, then that domain's decoder)."""
        return self.decoder(domain)(self.dec_shared(z))


class COCODis(nn.Module):
    """One domain's official COCODis: ``n_layer`` convs 3x3 s2 p1 + LeakyReLU(0.01), then a 1x1 conv to logits."""

    def __init__(self, img_ch: int, ch: int, n_layer: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(img_ch, ch, 3, 2, 1, norm=False)]
        t = ch
        for _ in range(n_layer - 1):
            layers.append(ConvBlock(t, t * 2, 3, 2, 1, norm=False))
            t *= 2
        layers.append(nn.Conv2d(t, 1, 1, 1, 0))
        self.model = nn.Sequential(*layers)  # official model_A / model_B
        init_conv_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logit map B x 1 x S/2^n x S/2^n."""
        return self.model(x)


# --- domain-adaptation networks (official cocogan_nets_da.py; official attribute names for the state-dict keys) ----


class Bias2d(nn.Module):
    """A learned per-channel bias (official Bias2d, initialised N(0, 0.002)): the BatchNorm before it has no affine."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.randn(ch) * 0.002)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias.view(1, -1, 1, 1)


class BNConvBlock(nn.Module):
    """Conv (or transposed conv) + affine-free BatchNorm + Bias2d + LeakyReLU(0.01): official LeakyReLUBNNSConv2d /
    LeakyReLUBNNSConvTranspose2d."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int,
                 transpose: bool = False) -> None:
        super().__init__()
        conv_cls = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.model = nn.Sequential(conv_cls(in_ch, out_ch, kernel, stride, padding),
                                   nn.BatchNorm2d(out_ch, affine=False), Bias2d(out_ch), nn.LeakyReLU(0.01, True))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LatentSample(nn.Module):
    """``z = mu + sd * N(0, I)`` (official ``GaussianVAE2D.sample``): the DA generator's only random draw, in one
    module so that a test can replay recorded draws."""

    def forward(self, mu: Tensor, sd: Tensor) -> Tensor:
        return mu + sd * torch.randn_like(mu)


class GaussianVAE2D(nn.Module):
    """The full Gaussian latent of the DA generator: 1x1 convs for ``mu`` and ``softplus`` sigma (official)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.en_mu = nn.Conv2d(ch, ch, 1)
        self.en_sigma = nn.Conv2d(ch, ch, 1)
        for conv in (self.en_mu, self.en_sigma):  # the weights are redrawn N(0, 0.02) by the generator's init
            nn.init.normal_(conv.bias, 0.0, 0.002)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, sd)``."""
        return self.en_mu(x), F.softplus(self.en_sigma(x))


def xy_channels(size: int, like: Tensor) -> Tensor:
    """The official fixed coordinate image (2 x size x size): channel 0 the row, channel 1 the column, each
    ``(i - size / 2) / (size / 2)`` in [-1, 1)."""
    r = (torch.arange(size, device=like.device, dtype=like.dtype) - size / 2) / (size / 2)
    return torch.stack([r.view(-1, 1).expand(size, size), r.view(1, -1).expand(size, size)])


class CoVAE32x32(nn.Module):
    """The DA generator: per-domain first conv, shared encoder, full Gaussian VAE latent (ch * 8 x 1 x 1), shared
    decoder, per-domain last two layers; inputs get the 2 xy-coordinate channels (official COCOGANDAContextTrainer).
    """

    def __init__(self, ch: int, ch_a: int, ch_b: int) -> None:
        super().__init__()
        self.g_en_conv0_a = BNConvBlock(ch_a + 2, ch, 5, 2, 2)
        self.g_en_conv0_b = BNConvBlock(ch_b + 2, ch, 5, 2, 2)
        self.g_en_conv1 = BNConvBlock(ch, ch * 2, 5, 2, 2)
        self.g_en_conv2 = BNConvBlock(ch * 2, ch * 4, 8, 1, 0)  # 8 x 8 -> 1 x 1
        self.g_en_conv3 = BNConvBlock(ch * 4, ch * 8, 1, 1, 0)
        self.g_vae = GaussianVAE2D(ch * 8)
        self.g_de_conv0 = BNConvBlock(ch * 8, ch * 8, 4, 2, 0, transpose=True)  # 1 -> 4
        self.g_de_conv1 = BNConvBlock(ch * 8, ch * 4, 4, 2, 1, transpose=True)  # 4 -> 8
        self.g_de_conv2 = BNConvBlock(ch * 4, ch * 2, 4, 2, 1, transpose=True)  # 8 -> 16
        self.g_de_conv3_a = BNConvBlock(ch * 2, ch, 4, 2, 1, transpose=True)  # 16 -> 32
        self.g_de_conv3_b = BNConvBlock(ch * 2, ch, 4, 2, 1, transpose=True)
        self.de_conv4_a = nn.ConvTranspose2d(ch, ch_a, 1)
        self.de_conv4_b = nn.ConvTranspose2d(ch, ch_b, 1)
        self.sample = LatentSample()  # no parameters
        init_conv_weights(self)

    def first(self, x: Tensor, domain: str) -> Tensor:
        """The domain's first encoder layer on ``x`` plus the coordinate channels."""
        xy = xy_channels(x.shape[-1], x).expand(x.shape[0], -1, -1, -1)
        conv = self.g_en_conv0_a if _domain(domain) == "a" else self.g_en_conv0_b
        return conv(torch.cat([x, xy], 1))

    def latent(self, h0: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, sd)`` of the shared latent from first-layer features (any mix of domains: BatchNorm sees them all)."""
        return self.g_vae(self.g_en_conv3(self.g_en_conv2(self.g_en_conv1(h0))))

    def trunk(self, z: Tensor) -> Tensor:
        """The shared decoder layers (16 x 16 features)."""
        return self.g_de_conv2(self.g_de_conv1(self.g_de_conv0(z)))

    def head(self, h: Tensor, domain: str) -> Tensor:
        """The domain's last two layers: images in [-1, 1]."""
        if _domain(domain) == "a":
            return torch.tanh(self.de_conv4_a(self.g_de_conv3_a(h)))
        return torch.tanh(self.de_conv4_b(self.g_de_conv3_b(h)))


class CoDis32x32(nn.Module):
    """The DA discriminator: per-domain first conv block, shared blocks, a 2-way real/fake head and the 10-way
    classifier head (official CoDis32x32; conv + ReLU + max-pool blocks, no normalisation).

    The heads read the shared features through dropout 0.1 / 0.3 / 0.5 / 0.5 (active in training only); feature
    matching reads the same shared layers without dropout, as the official ``_forward_core``.
    """

    def __init__(self, ch: int, ch_a: int, ch_b: int, n_classes: int) -> None:
        super().__init__()
        self.conv0_a = self._block(ch_a, ch)
        self.conv0_b = self._block(ch_b, ch)
        self.conv1 = self._block(ch, ch * 2)
        self.conv2 = self._block(ch * 2, ch * 4)
        self.conv3 = self._block(ch * 4, ch * 8)
        self.conv4 = nn.Conv2d(ch * 8, 2, 2)  # real / fake logits on the 2 x 2 map
        self.conv_cl = nn.Conv2d(ch * 8, n_classes, 2)  # the classifier
        self.dropout0, self.dropout1 = nn.Dropout(0.1), nn.Dropout(0.3)
        self.dropout2, self.dropout3 = nn.Dropout(0.5), nn.Dropout(0.5)
        for m in self.modules():  # official xavier_weights_init: gain sqrt(2), bias 0.1
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=math.sqrt(2))
                nn.init.constant_(m.bias, 0.1)

    @staticmethod
    def _block(in_ch: int, out_ch: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_ch, out_ch, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2))

    def first(self, x: Tensor, domain: str) -> Tensor:
        """The domain's first block (its only unshared layer)."""
        return self.conv0_a(x) if _domain(domain) == "a" else self.conv0_b(x)

    def shared(self, h0: Tensor) -> Tensor:
        """The shared blocks with dropout (official ``_forward_core_dropout``): what both heads read."""
        h1 = self.dropout1(self.conv1(self.dropout0(h0)))
        return self.dropout3(self.conv3(self.dropout2(self.conv2(h1))))

    def features(self, h0: Tensor) -> Tensor:
        """The shared blocks without dropout (official ``_forward_core``): the highest-layer features."""
        return self.conv3(self.conv2(self.conv1(h0)))

    def logits(self, h: Tensor) -> Tensor:
        """Real / fake logits (B x 2) of shared features."""
        return self.conv4(h).flatten(1)

    def classify(self, x: Tensor, domain: str) -> Tensor:
        """Class logits (B x n_classes): the domain's first block, the shared blocks, the classifier (official
        ``classify_a`` / ``classify_b``)."""
        return self.conv_cl(self.shared(self.first(x, domain))).flatten(1)


def _domain(domain: str) -> str:
    if domain not in ("a", "b"):
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    return domain


def _sse(x: Tensor) -> Tensor:
    # Official ``_compute_ll_loss``: MSELoss * C * H * W = the squared error summed per sample, batch mean.
    return x.square().flatten(1).sum(1).mean()


@register_model("unit")
class UNIT(TranslationModel):
    """UNIT (NIPS-paper version): shared-latent VAE-GANs with weight sharing, D step then G step.

    ``arch: da32`` builds the paper's domain-adaptation networks instead (nets ``gen`` = CoVAE32x32, ``dis`` =
    CoDis32x32) and gives the model the ``classify`` capability.
    """

    card = ModelCard(
        title="UNIT",
        paper="Liu, Breuel, Kautz: Unsupervised Image-to-Image Translation Networks, NeurIPS 2017",
        paper_url="https://arxiv.org/abs/1703.00848",
        code="mingyuliutw/UNIT",
        commit="version_02 (96def6b)",
        parameters=18_017_286 + 2 * 25_149_057,
        released="cat2tiger, corgi2husky, synthia2cityscape generators (version_02)",
    )

    config_class = UNITConfig

    def __init__(self, cfg: UNITConfig) -> None:
        super().__init__(cfg)
        if cfg.arch == "da32":
            self.nets["gen"] = CoVAE32x32(cfg.ch, cfg.img_ch, cfg.img_ch)
            self.nets["dis"] = CoDis32x32(cfg.dis_ch, cfg.img_ch, cfg.img_ch, cfg.n_classes)
            self.phases = {"dis": Phase(("dis",), self.da_dis_loss), "gen": Phase(("gen",), self.da_gen_loss)}
            # The classifier lives in the discriminator: inference (load_model, evaluate, export) needs both.
            self.inference_nets = ("gen", "dis")
            self.classify = self._classify  # the ClassifierModel capability exists with the DA networks only
            return
        self.nets["gen"] = SharedLatentGenerator(cfg)
        self.nets["dis_a"] = COCODis(cfg.img_ch, cfg.dis_ch, cfg.n_dis_layer)
        self.nets["dis_b"] = COCODis(cfg.img_ch, cfg.dis_ch, cfg.n_dis_layer)
        self.phases = {"dis": Phase(("dis_a", "dis_b"), self.dis_loss), "gen": Phase(("gen",), self.gen_loss)}
        self.inference_nets = ("gen",)

    # --- training -----------------------------------------------------------------------------------------------
    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator step: BCE on real images and the generator's translations."""
        real_a, real_b = batch["a"], batch["b"]
        na, nb = real_a.shape[0], real_b.shape[0]
        gen: SharedLatentGenerator = self.nets["gen"]
        with torch.no_grad():  # only the translations are scored; D's loss never reaches the generator
            mu = gen.enc_shared(torch.cat([gen.encode_A(real_a), gen.encode_B(real_b)]))
            h = gen.dec_shared(gen.noise(mu))
            fake_ab, fake_ba = gen.decode_B(h[:na]), gen.decode_A(h[na:])
        # One pass over real and fake stacked, as the official code (no batch statistics in D).
        out_a = self.nets["dis_a"](torch.cat([real_a, fake_ba]))
        out_b = self.nets["dis_b"](torch.cat([real_b, fake_ab]))
        adv_a = bce_to(out_a[:na], 1.0) + bce_to(out_a[na:], 0.0)
        adv_b = bce_to(out_b[:nb], 1.0) + bce_to(out_b[nb:], 0.0)
        return self.cfg.adv_weight * (adv_a + adv_b), {"adv_a": adv_a, "adv_b": adv_b}

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator step: reconstruction, adversarial, KL and cycle terms."""
        gen: SharedLatentGenerator = self.nets["gen"]
        real_a, real_b = batch["a"], batch["b"]
        w = self.cfg
        na = real_a.shape[0]
        terms: dict[str, tuple[float, Tensor]] = {}  # name -> (weight, value)
        # Both domains through their encoders and the SAME shared block, then the noisy code through dec_shared.
        mu = gen.enc_shared(torch.cat([gen.encode_A(real_a), gen.encode_B(real_b)]))
        z = gen.noise(mu)
        h = gen.dec_shared(z)
        if w.recon_weight > 0:
            x_aa, x_ba = gen.decode_A(h).split([na, h.shape[0] - na])
            x_ab, x_bb = gen.decode_B(h).split([na, h.shape[0] - na])
            terms["recon_a"] = (w.recon_weight, F.l1_loss(x_aa, real_a))
            terms["recon_b"] = (w.recon_weight, F.l1_loss(x_bb, real_b))
        else:
            x_ab, x_ba = gen.decode_B(h[:na]), gen.decode_A(h[na:])
        if w.adv_weight > 0:  # the generator is scored on the translations only (official)
            terms["adv_a"] = (w.adv_weight, bce_to(self.nets["dis_a"](x_ba), 1.0))
            terms["adv_b"] = (w.adv_weight, bce_to(self.nets["dis_b"](x_ab), 1.0))
        if w.kl_weight > 0:  # KL of N(mu, I) from N(0, I) up to constants: mean(z^2) (official) or mean(mu^2)
            code = z if w.kl_on == "noisy" else mu
            terms["kl_a"] = (w.kl_weight, code[:na].square().mean())
            terms["kl_b"] = (w.kl_weight, code[na:].square().mean())
        if w.cycle_weight > 0 or w.kl_cycle_weight > 0:
            # Re-encode the translations (a->b with encode_B, b->a with encode_A) and decode back; the graph goes
            # through the first pass as in the official code (no detach).
            mu2 = gen.enc_shared(torch.cat([gen.encode_B(x_ab), gen.encode_A(x_ba)]))
            z2 = gen.noise(mu2)
            h2 = gen.dec_shared(z2)
            if w.cycle_weight > 0:
                terms["cycle_a"] = (w.cycle_weight, F.l1_loss(gen.decode_A(h2[:na]), real_a))
                terms["cycle_b"] = (w.cycle_weight, F.l1_loss(gen.decode_B(h2[na:]), real_b))
            if w.kl_cycle_weight > 0:
                code2 = z2 if w.kl_on == "noisy" else mu2
                terms["kl_cycle_a"] = (w.kl_cycle_weight, code2[:na].square().mean())
                terms["kl_cycle_b"] = (w.kl_cycle_weight, code2[na:].square().mean())
        loss = sum(weight * value for weight, value in terms.values())
        return loss, {k: v for k, (_, v) in terms.items()}

    # --- domain adaptation (arch da32; official COCOGANDAContextTrainer) --------------------------------------------
    def _da_forward(self, real_a: Tensor, real_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """One generator pass on both domains: ``(x_aa, x_ba, x_ab, x_bb, mu, sd)`` with ``z = mu + sd * eps``."""
        gen: CoVAE32x32 = self.nets["gen"]
        na = real_a.shape[0]
        mu, sd = gen.latent(torch.cat([gen.first(real_a, "a"), gen.first(real_b, "b")]))
        h = gen.trunk(gen.sample(mu, sd))
        x_aa, x_ba = gen.head(h, "a").split([na, h.shape[0] - na])
        x_ab, x_bb = gen.head(h, "b").split([na, h.shape[0] - na])
        return x_aa, x_ba, x_ab, x_bb, mu, sd

    def da_dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """DA discriminator step: 2-class CE on real pairs (label 1) and on the reconstructed and translated pairs
        (label 0, averaged), the classifier's CE on labelled A, and feature matching between the D branches."""
        real_a, real_b, w = batch["a"], batch["b"], self.cfg
        if "a_label" not in batch:
            raise NiceganError("UNIT domain adaptation (model.arch da32) needs labelled domain-A batches "
                               "(batch['a_label'])")
        dis: CoDis32x32 = self.nets["dis"]
        with torch.no_grad():  # the official D step's generator gradients are discarded: skip them
            x_aa, x_ba, x_ab, x_bb, _, _ = self._da_forward(real_a, real_b)
        na, nb = real_a.shape[0], real_b.shape[0]
        # Each domain's first block once on real, reconstructed and translated images; the shared layers run once.
        h0_a = dis.first(torch.cat([real_a, x_aa, x_ba]), "a")
        h0_b = dis.first(torch.cat([real_b, x_bb, x_ab]), "b")
        h_a, h_b = dis.shared(h0_a).split([na, na, nb]), dis.shared(h0_b).split([nb, nb, na])
        # Logits of the (real, reconstructed, translated) pairs.
        logits = [dis.logits(torch.cat([ha, hb])) for ha, hb in zip(h_a, h_b, strict=True)]
        adv_real = ce_to(logits[0], 1)
        adv_fake = 0.5 * (ce_to(logits[2], 0) + ce_to(logits[1], 0))
        # The classifier reads the real-A features of the adversarial pass (the official runs classify_a again
        # with fresh dropout masks: the same expected gradient).
        cls_logits = dis.conv_cl(h_a[0]).flatten(1)
        cls = F.cross_entropy(cls_logits, batch["a_label"])
        loss = w.adv_weight * (adv_real + adv_fake) + w.cls_weight * cls
        terms = {"adv_real": adv_real, "adv_fake": adv_fake, "cls_a": cls,
                 "cls_acc_a": (cls_logits.argmax(1) == batch["a_label"]).float().mean()}
        if w.feat_weight > 0:
            # Highest-layer features without dropout: B's branch on x_ab against A's on x_aa (both decoded from
            # the same A codes), and A's branch on x_ba against B's on x_bb.
            f_a = dis.features(h0_a[na:]).split([na, nb])  # x_aa, x_ba
            f_b = dis.features(h0_b[nb:]).split([nb, na])  # x_bb, x_ab
            feat_a, feat_b = _sse(f_b[1] - f_a[0]), _sse(f_a[1] - f_b[0])
            loss = loss + w.feat_weight * (feat_a + feat_b)
            terms |= {"feat_a": feat_a, "feat_b": feat_b}
        return loss, terms

    def da_gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """DA generator step: the reconstructions and translations should be judged real (2-class CE, summed), the
        squared reconstruction error per image, and the Gaussian KL summed over the code."""
        real_a, real_b, w = batch["a"], batch["b"], self.cfg
        dis: CoDis32x32 = self.nets["dis"]
        x_aa, x_ba, x_ab, x_bb, mu, sd = self._da_forward(real_a, real_b)
        terms: dict[str, tuple[float, Tensor]] = {}
        if w.adv_weight > 0:
            na, nb = real_a.shape[0], real_b.shape[0]
            # The official scores (x_aa, x_bb) and (x_ba, x_ab) in two D calls; the D has no batch statistics, so
            # one pass per branch gives the same numbers (up to the dropout draws).
            h_a = dis.shared(dis.first(torch.cat([x_aa, x_ba]), "a")).split([na, nb])
            h_b = dis.shared(dis.first(torch.cat([x_bb, x_ab]), "b")).split([nb, na])
            terms["adv_recon"] = (w.adv_weight, ce_to(dis.logits(torch.cat([h_a[0], h_b[0]])), 1))
            terms["adv_trans"] = (w.adv_weight, ce_to(dis.logits(torch.cat([h_a[1], h_b[1]])), 1))
        if w.recon_weight > 0:
            terms["recon_a"] = (w.recon_weight, _sse(x_aa - real_a))
            terms["recon_b"] = (w.recon_weight, _sse(x_bb - real_b))
        if w.kl_weight > 0:
            # Official: 2 * sum(mu^2 + sd^2 - log sd^2) / (rows of both domains).
            sd2 = sd.square()
            terms["kl"] = (w.kl_weight, 2 * (mu.square() + sd2 - sd2.log()).sum() / mu.shape[0])
        loss = sum(weight * value for weight, value in terms.values())
        return loss, {k: v for k, (_, v) in terms.items()}

    # --- inference ----------------------------------------------------------------------------------------------
    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Shared latent code of images ``x`` of ``domain``: the mean in eval mode, a sample in training
        (``mu + N(0, I)``; da32: ``mu + sd * N(0, I)``, a C x 1 x 1 code)."""
        gen = self.nets["gen"]
        if self.cfg.arch == "da32":
            mu, sd = gen.latent(gen.first(x, domain))
            return gen.sample(mu, sd) if self.training else mu
        return gen.noise(gen.mean(x, domain))

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` decoded from shared latent codes ``z``."""
        gen = self.nets["gen"]
        if self.cfg.arch == "da32":
            return gen.head(gen.trunk(z), domain)
        return gen.decode(z, domain)

    def translate(self, x: Tensor, direction: str) -> Tensor:
        src, tgt = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        return self.decode(self.encode(x, src), tgt)

    def _classify(self, x: Tensor, domain: str) -> Tensor:
        """Class logits (B x n_classes) of images ``x`` of ``domain``: that domain's first discriminator block, the
        shared blocks and the classifier head (``domain`` "b" = the official ``classify_b``; da32 only)."""
        if x.shape[-2:] != (DA_SIZE, DA_SIZE):
            raise NiceganError(f"the UNIT classifier reads whole {DA_SIZE} x {DA_SIZE} images, got "
                               f"{x.shape[-2]} x {x.shape[-1]}")
        return self.nets["dis"].classify(x, domain)

    def check_input_size(self, size: int) -> None:
        if self.cfg.arch == "da32":
            if size != DA_SIZE:
                raise ConfigError(f"UNIT with model.arch da32 translates {DA_SIZE} x {DA_SIZE} images only, "
                                  f"got {size}")
            return
        factor = 2 ** (self.cfg.n_enc_front_blk - 1)
        if size < factor or size % factor:
            raise ConfigError(f"UNIT with n_enc_front_blk {self.cfg.n_enc_front_blk} needs an input size that is a "
                              f"positive multiple of {factor}, got {size}")

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        src, tgt = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        z = self.encode(x, src)
        fake = self.decode(z, tgt)
        cycle = self.decode(self.encode(fake, tgt), src)
        return {"real": x, "recon": self.decode(z, src), "fake": fake, "cycle": cycle}
