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
``COCOResGen2`` learns the translation in the same budget (measurements in the README).

The discriminators are ``COCODis``, one per domain: 6 convs 3x3 s2 + LeakyReLU(0.01), then a 1x1 conv to a logit
map, vanilla GAN (sigmoid + BCE).

Losses (official ``COCOGANTrainer``; D step first, then G step): GAN 10 (the generator is scored on the
translations only), self-reconstruction L1 100, cycle L1 100, KL = mean(mu^2) direct 0.1 and cycle 0.1; these are
the paper's lambda_0 = 10, lambda_1 = lambda_3 = 0.1, lambda_2 = lambda_4 = 100. Conv weights are initialised
N(0, 0.02), biases keep the PyTorch default.

State-dict keys inside each net are the official ones: ``gen`` loads an official ``*_gen_*.pkl`` as is (its
``encode_A``, ``enc_shared``, ... keys); ``dis_a`` / ``dis_b`` take the official ``dis`` keys with ``model_A.`` /
``model_B.`` renamed to ``model.``.

Deliberate deviations from the official code:

1. Work that does not change the numbers is skipped: the D step runs the generator under ``no_grad`` and decodes
   only the two translations (the official code runs the whole generator with gradients and also decodes the
   reconstructions, which the D loss never sees); the G step decodes the reconstructions only if their weight is
   non-zero and runs the cycle pass only if a cycle term is weighted; the two cycle re-encodings share one batched
   pass (instance norm and the noise are per sample, so this is the official maths).
2. KL: the official code computes mean(z^2) on the *noisy* code z = mu + eps, whose gradient carries an extra
   zero-mean noise 2 eps / N; here the KL is mean(mu^2) on the mean, the paper's term (same expectation up to a
   constant). The official direct term is ``kl_direct_link_w * (enc_loss + enc_loss)`` with ``enc_loss`` the mean
   over *both* domains' codes: that equals ``kl_weight * (kl_a + kl_b)`` with per-domain means (equal batch sizes),
   which is what is computed, so the official total is kept.
3. Domain adaptation: the official DA network (``CoVAE32x32`` + ``CoDis32x32``, a full VAE on 1x1 codes with the
   10-way classifier on the shared discriminator layers, 2-class CE, feature matching, no cycle loss) is a
   different architecture and is not reimplemented. Instead, ``cls_weight > 0`` adds a net ``cls`` (one linear
   layer over the whole flattened shared code) trained in the G step on labelled domain-A batches (``a_label``; the
   B labels are never used), so that a classifier learned on A applies to B through the shared latent space. In
   training it sees the code the decoders see (mu + noise), ``classify`` uses mu. In this mode the instance's
   ``phases["gen"]`` and ``inference_nets`` include ``cls``, and the model has the ``classify`` capability. This
   keeps one architecture for translation and adaptation; DA numbers are therefore not the paper's setting.
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

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.errors import ConfigError, NiceganError
from nicegan.models.base import ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model

GENERATORS = ("COCOResGen", "COCOResGen2")


@dataclass
class UNITConfig(ModelConfig):
    """UNIT architecture (official version_02 cat2tiger config at 256 px) and loss weights."""

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
    adv_weight: float = 10.0  # gan_w (lambda_0)
    recon_weight: float = 100.0  # ll_direct_link_w (lambda_2)
    cycle_weight: float = 100.0  # ll_cycle_link_w (lambda_4)
    kl_weight: float = 0.1  # kl_direct_link_w (lambda_1)
    kl_cycle_weight: float = 0.1  # kl_cycle_link_w (lambda_3)
    cls_weight: float = 0.0  # > 0: domain-adaptation classifier on the shared code (labelled domain A)
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
        if self.generator not in GENERATORS:
            raise ConfigError(f"model.generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")
        for key in ("ch", "dis_ch", "n_enc_front_blk", "n_dis_layer"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("n_enc_res_blk", "n_enc_shared_blk", "n_gen_shared_blk", "n_gen_res_blk"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("adv_weight", "recon_weight", "cycle_weight", "kl_weight", "kl_cycle_weight", "cls_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not (self.adv_weight > 0 or self.recon_weight > 0 or self.cycle_weight > 0):
            raise ConfigError("model.adv_weight, model.recon_weight and model.cycle_weight are all 0: nothing trains "
                              "the generator's images")
        if not 0.0 <= self.res_dropout < 1.0:
            raise ConfigError(f"model.res_dropout must lie in [0, 1), got {self.res_dropout}")
        if self.n_classes < 2:
            raise ConfigError(f"model.n_classes must be >= 2, got {self.n_classes}")
        factor = 2 ** (self.n_enc_front_blk - 1)
        if self.img_size % factor:
            raise ConfigError(f"model.img_size must be a multiple of {factor} (the encoder down-samples "
                              f"{self.n_enc_front_blk - 1} times with n_enc_front_blk {self.n_enc_front_blk}), "
                              f"got {self.img_size}")
        if self.img_size < 2**self.n_dis_layer:
            raise ConfigError(f"model.n_dis_layer {self.n_dis_layer} is too deep for img_size {self.img_size}: each "
                              f"stride-2 conv halves the map, so img_size must be >= 2 ** n_dis_layer = "
                              f"{2**self.n_dis_layer} (use n_dis_layer <= {self.img_size.bit_length() - 1})")


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


class LatentClassifier(nn.Module):
    """Domain-adaptation head: one linear layer over the whole shared code (C x S x S flattened) to class logits.

    Like the official DA head (a conv whose kernel covers the whole 2 x 2 feature map) it sees every position. A
    global average pool would not do: the KL term drives each channel's spatial mean of the code to ~0, so the pooled
    code carries almost no information (measured: a pooled head stayed at chance, loss ln 10, for 1000 steps).
    """

    def __init__(self, latent_ch: int, latent_size: int, n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(latent_ch * latent_size * latent_size, n_classes)

    def forward(self, z: Tensor) -> Tensor:
        return self.fc(z.flatten(1))


def _domain(domain: str) -> str:
    if domain not in ("a", "b"):
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    return domain


def _bce(logits: Tensor, target: float) -> Tensor:
    # Official: sigmoid + binary_cross_entropy averaged over every logit of the flattened map.
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


@register_model("unit")
class UNIT(TranslationModel):
    """UNIT (NIPS-paper version): shared-latent VAE-GANs with weight sharing, D step then G step."""

    config_class = UNITConfig

    def __init__(self, cfg: UNITConfig) -> None:
        super().__init__(cfg)
        self.nets["gen"] = SharedLatentGenerator(cfg)
        self.nets["dis_a"] = COCODis(cfg.img_ch, cfg.dis_ch, cfg.n_dis_layer)
        self.nets["dis_b"] = COCODis(cfg.img_ch, cfg.dis_ch, cfg.n_dis_layer)
        trained_with_gen: tuple[str, ...] = ("gen",)
        if cfg.cls_weight > 0:
            # Domain-adaptation mode: the classifier is trained with the generator and needed to classify.
            self.nets["cls"] = LatentClassifier(cfg.latent_ch, cfg.latent_size, cfg.n_classes)
            trained_with_gen = ("gen", "cls")
            self.classify = self._classify  # the ClassifierModel capability exists in this mode only
        self.phases = {"dis": Phase(("dis_a", "dis_b"), self.dis_loss), "gen": Phase(trained_with_gen, self.gen_loss)}
        self.inference_nets = trained_with_gen

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
        adv_a = _bce(out_a[:na], 1.0) + _bce(out_a[na:], 0.0)
        adv_b = _bce(out_b[:nb], 1.0) + _bce(out_b[nb:], 0.0)
        return self.cfg.adv_weight * (adv_a + adv_b), {"adv_a": adv_a, "adv_b": adv_b}

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator step: reconstruction, adversarial, KL and cycle terms (and the DA classifier's CE)."""
        gen: SharedLatentGenerator = self.nets["gen"]
        real_a, real_b, label_a = batch["a"], batch["b"], batch.get("a_label")
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
            terms["adv_a"] = (w.adv_weight, _bce(self.nets["dis_a"](x_ba), 1.0))
            terms["adv_b"] = (w.adv_weight, _bce(self.nets["dis_b"](x_ab), 1.0))
        if w.kl_weight > 0:  # KL of N(mu, I) from N(0, I), up to constants: mean(mu^2)
            terms["kl_a"] = (w.kl_weight, mu[:na].square().mean())
            terms["kl_b"] = (w.kl_weight, mu[na:].square().mean())
        if w.cycle_weight > 0 or w.kl_cycle_weight > 0:
            # Re-encode the translations (a->b with encode_B, b->a with encode_A) and decode back; the graph goes
            # through the first pass as in the official code (no detach).
            mu2 = gen.enc_shared(torch.cat([gen.encode_B(x_ab), gen.encode_A(x_ba)]))
            h2 = gen.dec_shared(gen.noise(mu2))
            if w.cycle_weight > 0:
                terms["cycle_a"] = (w.cycle_weight, F.l1_loss(gen.decode_A(h2[:na]), real_a))
                terms["cycle_b"] = (w.cycle_weight, F.l1_loss(gen.decode_B(h2[na:]), real_b))
            if w.kl_cycle_weight > 0:
                terms["kl_cycle_a"] = (w.kl_cycle_weight, mu2[:na].square().mean())
                terms["kl_cycle_b"] = (w.kl_cycle_weight, mu2[na:].square().mean())
        if w.cls_weight > 0:
            if label_a is None:
                raise NiceganError("UNIT with cls_weight > 0 needs labelled domain-A batches (batch['a_label'])")
            # The classifier sees the code the decoders see (noisy in training); classify() uses the mean.
            terms["cls_a"] = (w.cls_weight, F.cross_entropy(self.nets["cls"](z[:na]), label_a))
        loss = sum(weight * value for weight, value in terms.values())
        return loss, {k: v for k, (_, v) in terms.items()}

    # --- inference ----------------------------------------------------------------------------------------------
    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Shared latent code of images ``x`` of ``domain``: ``mu`` in eval mode, ``mu + N(0, I)`` in training."""
        gen: SharedLatentGenerator = self.nets["gen"]
        return gen.noise(gen.mean(x, domain))

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` decoded from shared latent codes ``z``."""
        return self.nets["gen"].decode(z, domain)

    def translate(self, x: Tensor, direction: str) -> Tensor:
        src, tgt = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        return self.decode(self.encode(x, src), tgt)

    def _classify(self, x: Tensor, domain: str) -> Tensor:
        """Class logits (B x n_classes) of images ``x`` of either domain, from their shared code (DA mode only)."""
        if x.shape[-2:] != (self.cfg.img_size, self.cfg.img_size):
            raise NiceganError(f"the UNIT classifier reads whole {self.cfg.img_size} x {self.cfg.img_size} images, got "
                               f"{x.shape[-2]} x {x.shape[-1]}")
        return self.nets["cls"](self.encode(x, domain))

    def check_input_size(self, size: int) -> None:
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
