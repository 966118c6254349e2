"""NICE-GAN: "Reusing Discriminators for Encoding: Towards Unsupervised Image-to-Image Translation".

Chen, Huang, Huang, Sun, Fang. CVPR 2020. arXiv:2003.00273.
Official code: https://github.com/alpc91/NICE-GAN-pytorch (commit 1b114f1), which this file reproduces number for
number (checked against golden tensors of the official networks: tests/test_golden.py).

Per domain X there is one discriminator ``dis_x`` whose first layers (two spectral-norm convs plus a CAM block with
a zero-initialised residual gate) are the *encoder* of X, and one generator that decodes latent codes into X images.
A->B is ``gen_a2b(dis_a.encode(a))``; the reconstruction of A is ``gen_b2a`` of the same code. The encoders are
trained only in the discriminator step (maximising the adversarial loss); in the generator step gradients pass
through them but their parameters stay fixed ("decoupled training").

Names: ``gen_a2b`` = official ``gen2B`` (it produces B images), ``gen_b2a`` = ``gen2A``, ``dis_a`` = ``disA``,
``dis_b`` = ``disB``. Inside each net the official state-dict keys and parameter order are kept, so official
weights and Adam states load one to one (``nicegan import-official``).

Ablation switches (config fields; the defaults are the paper's model and pass the golden tests unchanged; each
changes only what it names, and tests/test_ablation.py checks which parameters every phase updates under each):

- ``encoder``: ``reused`` (default) encodes with the first layers of the domain's discriminator. ``independent`` is
  the paper's "no NICE" baseline: each domain gets its own ``Encoder`` (``enc_a``, ``enc_b``: the same trunk and
  CAM block, no heads) trained in the generator step with the generators' loss, and the discriminators keep their
  whole architecture but only judge. The CAM logit of an independent encoder feeds no loss (its ``fc`` weight still
  weights the features). ``encoder_updates`` must stay at its default with it.
- ``residual_attention``: ``true`` (default) is the CAM block's ``x0 + gamma * (w * x0)`` with ``gamma`` (``lamda``)
  zero at init; ``false`` is U-GAT-IT's plain ``w * x0`` (no gate: the ``lamda`` parameter does not exist).
- ``heads``: the discriminator outputs in the adversarial losses of both steps, any non-empty subset of ``cam``,
  ``local``, ``global`` (default all three). Unused heads still run (their outputs are discarded) but get no
  gradient, so they never change.
- ``encoder_updates`` (the paper's decoupled-training analysis): ``decoupled`` (default) updates the encoders only
  in the discriminator step; ``generator`` only in the generator step, with the generator's loss (the D step then
  updates the heads only); ``both`` in both steps (each step's Adam keeps its own moments for the encoder). The
  phases name these parts with ``Phase.parts`` (``Discriminator.ENCODER_KEYS`` / ``HEAD_KEYS``).

Deliberate deviations from the official code (behaviour of the maths is unchanged unless stated):

1. Work the official iteration throws away is not done; the numbers are identical (golden test). The D step runs
   the generators under ``no_grad`` (the official code builds their graph and then detaches the output); the G step
   freezes the discriminators (the official code computes their parameter gradients and discards them) and
   encodes the real images without running the discriminator heads, advancing those heads' spectral-norm power
   iteration instead so every ``u``/``v`` buffer evolves exactly as in the official run.
2. Small images: the official global head needs ``img_size >= 96`` (``n_dis`` 7) or ``>= 48`` (``n_dis`` 6).
   ``global_downsamples`` (official and default: 2) sets the number of stride-2 convs of the global head; the
   ``digits`` preset uses 1 for 32 px images. With the default the networks are exactly the official ones.
3. The official build-time profiling (thop) draws one extra random tensor and runs one extra training-mode
   forward of ``disA`` (one more power iteration); it is not replicated (goldens start from the state after it).
4. Training-loop bugs of the official code are fixed by the generic loop and checkpointing, not copied: LR decay is a
   pure function of the step (the official resume decays twice and can drive the LR negative; an odd
   ``iteration`` also ends with a negative LR), the Python-2 ``iterator.next()`` crash, unseeded runs, checkpoints
   loaded without ``map_location``, sample grids that consume training batches and run with gradients, and lossy
   JPEG outputs (ours are PNG).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model
from nicegan.nn import ILN, ResnetAdaILNBlock, SNConv2d, SNLinear
from nicegan.nn.losses import mse_to

#: the discriminator's multi-scale classifiers: the CAM logit of the encoder, the local and the global head
HEADS = ("cam", "local", "global")


@dataclass
class NiceGANConfig(ModelConfig):
    """NICE-GAN architecture and loss weights (official defaults; ``img_size`` 256, ``img_ch`` 3)."""

    ch: int = 64  # base width of generator and discriminator
    n_res: int = 6  # AdaILN residual blocks in the generator
    n_dis: int = 7  # discriminator depth parameter (official n_layers)
    light: bool = True  # light MLP (global average pool) instead of the full flattening MLP
    global_downsamples: int = 2  # stride-2 convs of the global head (official: 2)
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    recon_weight: float = 10.0
    # Ablation switches (module docstring, "Ablation switches"); the defaults are the paper's model.
    encoder: Literal["reused", "independent"] = "reused"
    residual_attention: bool = True
    heads: tuple[str, ...] = HEADS
    encoder_updates: Literal["decoupled", "generator", "both"] = "decoupled"

    tiny = {"img_size": 32, "ch": 4, "n_res": 1, "n_dis": 6, "global_downsamples": 1}

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the networks cannot be built or run at this size."""
        super().validate()
        if self.n_dis < 6:
            raise ConfigError(f"model.n_dis must be >= 6 (the official discriminator fails below 6), got {self.n_dis}")
        if self.ch < 1:
            raise ConfigError(f"model.ch must be >= 1, got {self.ch}")
        if self.n_res < 0 or self.global_downsamples < 0:
            raise ConfigError("model.n_res and model.global_downsamples must be >= 0")
        if self.img_size % 4:
            raise ConfigError(f"model.img_size must be a multiple of 4, got {self.img_size}")
        if not self.heads or any(h not in HEADS for h in self.heads) or len(set(self.heads)) != len(self.heads):
            raise ConfigError(f"model.heads must be a non-empty list of distinct heads from {list(HEADS)}, "
                              f"got {list(self.heads)}")
        if self.encoder == "independent" and self.encoder_updates != "decoupled":
            raise ConfigError("model.encoder_updates applies to the reused encoder only: an independent encoder is "
                              "always trained with the generators (leave encoder_updates at decoupled)")
        head_sizes(self)


def head_sizes(cfg: NiceGANConfig) -> tuple[int, int]:
    """Side lengths of the local and global logit maps; ConfigError if a layer would get too small an input."""
    def pad_conv(s: int, stride: int, what: str) -> int:
        # Every head conv is ReflectionPad2d(1) + 4x4 conv; reflection padding needs an input of at least 2.
        if s < 2:
            raise ConfigError(
                f"model.img_size {cfg.img_size} is too small for n_dis {cfg.n_dis} and global_downsamples "
                f"{cfg.global_downsamples} ({what} gets a {s}x{s} map); use a larger img_size or fewer "
                "global_downsamples")
        return (s + 2 - 4) // stride + 1

    s = cfg.img_size // 4  # the encoder's two stride-2 convs
    for _ in range(cfg.n_dis - 6):
        s = pad_conv(s, 2, "the shared head")
    local = pad_conv(pad_conv(s, 1, "the local head"), 1, "the local output conv")
    for _ in range(cfg.global_downsamples):
        s = pad_conv(s, 2, "the global head")
    glob = pad_conv(pad_conv(s, 1, "the global head"), 1, "the global output conv")
    return local, glob


def _sn_block(in_ch: int, out_ch: int, stride: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), SNConv2d(in_ch, out_ch, 4, stride), nn.LeakyReLU(0.2, True)]


def _build_encoder(net: nn.Module, img_ch: int, ndf: int, residual_attention: bool) -> list[nn.Module]:
    """Create the encoder's CAM block on ``net`` and return its trunk layers (the caller registers them as
    ``net.model`` when the official registration order says so)."""
    model = _sn_block(img_ch, ndf, 2) + _sn_block(ndf, ndf * 2, 2)
    net.fc = SNLinear(ndf * 4, 1, bias=False)
    net.conv1x1 = nn.Conv2d(ndf * 4, ndf * 2, kernel_size=1, stride=1, bias=True)
    net.leaky_relu = nn.LeakyReLU(0.2, True)
    if residual_attention:  # CAM gate, zero at init: the CAM branch starts switched off
        net.lamda = nn.Parameter(torch.zeros(1))
    return model


def _cam_encode(net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Trunk + CAM block of an encoder built by :func:`_build_encoder`: ``(z, cam_logit, heatmap)``."""
    x0 = net.model(x)
    gap = F.adaptive_avg_pool2d(x0, 1)
    gmp = F.adaptive_max_pool2d(x0, 1)
    cam_logit = net.fc(torch.cat([gap, gmp], 1).view(x0.shape[0], -1))
    # The re-weighting uses the raw (not spectrally normalised) fc weight, as the official code does.
    x = torch.cat([x0, x0], 1) * net.fc.weight_orig[:, :, None, None]
    if hasattr(net, "lamda"):
        x = net.lamda * net.conv1x1(x) + x0  # residual attention: x0 + gamma * (w * x0)
    else:
        x = net.conv1x1(x)  # U-GAT-IT's plain attention: w * x0 only
    z = net.leaky_relu(x)
    heatmap = torch.sum(z, dim=1, keepdim=True)
    return z, cam_logit, heatmap


class Encoder(nn.Module):
    """An encoder of its own (``encoder: independent``): the discriminator's trunk and CAM block, without heads."""

    def __init__(self, img_ch: int, ndf: int, residual_attention: bool = True) -> None:
        super().__init__()
        self.model = nn.Sequential(*_build_encoder(self, img_ch, ndf, residual_attention))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z, cam_logit, heatmap)`` as :meth:`Discriminator.encode`; the CAM logit feeds no loss here."""
        return _cam_encode(self, x)


class Discriminator(nn.Module):
    """Official NICE-GAN discriminator: encoder (trunk + CAM) and local/global heads (official key names)."""

    #: state-dict key prefixes of the encoder (what translation runs; the heads only judge realism)
    ENCODER_KEYS = ("model.", "fc.", "conv1x1.", "lamda")
    #: state-dict key prefixes of the heads' parameters (everything that is not the encoder)
    HEAD_KEYS = ("Dis0_0.", "Dis0_1.", "Dis1_0.", "Dis1_1.", "conv0.", "conv1.")
    #: called directly by the generator step: ``--compile`` compiles it besides ``forward``
    compiled_methods = ("encode",)

    def __init__(self, img_ch: int, ndf: int, n_layers: int, global_downsamples: int = 2,
                 residual_attention: bool = True) -> None:
        super().__init__()
        # Modules are created in the official order (seeded builds match) and registered in the official order
        # (state-dict keys and parameter order match).
        model = _build_encoder(self, img_ch, ndf, residual_attention)

        dis0_0: list[nn.Module] = []
        for i in range(2, n_layers - 4):
            dis0_0 += _sn_block(ndf * 2 ** (i - 1), ndf * 2**i, 2)
        mult = 2 ** (n_layers - 5)
        dis0_1 = _sn_block(ndf * mult, ndf * mult * 2, 1)
        self.conv0 = SNConv2d(ndf * mult * 2, 1, 4, 1, bias=False)

        dis1_0: list[nn.Module] = []
        first = n_layers - 4
        for i in range(first, first + global_downsamples):
            dis1_0 += _sn_block(ndf * 2 ** (i - 1), ndf * 2**i, 2)
        mult = 2 ** (first + global_downsamples - 1)
        dis1_1 = _sn_block(ndf * mult, ndf * mult * 2, 1)
        self.conv1 = SNConv2d(ndf * mult * 2, 1, 4, 1, bias=False)
        self.pad = nn.ReflectionPad2d(1)

        self.model = nn.Sequential(*model)
        self.Dis0_0 = nn.Sequential(*dis0_0)
        self.Dis0_1 = nn.Sequential(*dis0_1)
        self.Dis1_0 = nn.Sequential(*dis1_0)
        self.Dis1_1 = nn.Sequential(*dis1_1)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder part: returns ``(z, cam_logit, heatmap)``; ``z`` is B x 2ndf x S/4 x S/4."""
        return _cam_encode(self, x)

    def classify(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Heads on a latent code: ``(local_logits, global_logits)``."""
        h = self.Dis0_0(z)
        out_local = self.conv0(self.pad(self.Dis0_1(h)))
        out_global = self.conv1(self.pad(self.Dis1_1(self.Dis1_0(h))))
        return out_local, out_global

    def head_spectral_layers(self) -> list[SNConv2d]:
        """Spectral-norm layers of the heads (what :meth:`classify` would power-iterate)."""
        heads = (self.Dis0_0, self.Dis0_1, self.Dis1_0, self.Dis1_1, self.conv0, self.conv1)
        return [m for h in heads for m in h.modules() if isinstance(m, SNConv2d)]

    def advance_heads(self) -> None:
        """Do the power iteration a training-mode :meth:`classify` would do, without running the heads."""
        if self.training:
            for m in self.head_spectral_layers():
                m.power_iterate()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Official output tuple ``(local, global, cam_logit, heatmap, z)``."""
        z, cam_logit, heatmap = self.encode(x)
        out_local, out_global = self.classify(z)
        return out_local, out_global, cam_logit, heatmap, z


class Generator(nn.Module):
    """Official NICE-GAN generator (decoder of latent codes): UpBlock0, AdaILN blocks, pixel-shuffle up-sampling."""

    def __init__(self, out_ch: int, ngf: int, n_blocks: int, img_size: int, light: bool) -> None:
        super().__init__()
        self.light = light
        self.n_blocks = n_blocks
        mult = 4  # two up-sampling stages (official n_downsampling is hard-coded to 2)
        up0 = [nn.ReflectionPad2d(1), nn.Conv2d(ngf * 2, ngf * mult, 3, 1, 0, bias=True), ILN(ngf * mult),
               nn.ReLU(True)]
        self.relu = nn.ReLU(True)
        fc_in = ngf * mult if light else (img_size // mult) ** 2 * ngf * mult
        fc = [nn.Linear(fc_in, ngf * mult, bias=False), nn.ReLU(True),
              nn.Linear(ngf * mult, ngf * mult, bias=False), nn.ReLU(True)]
        self.gamma = nn.Linear(ngf * mult, ngf * mult, bias=False)
        self.beta = nn.Linear(ngf * mult, ngf * mult, bias=False)
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", ResnetAdaILNBlock(ngf * mult))
        up2: list[nn.Module] = []
        for m in (4, 2):
            c = ngf * m
            up2 += [nn.ReflectionPad2d(1), nn.Conv2d(c, c // 2, 3, 1, 0, bias=False), ILN(c // 2), nn.ReLU(True),
                    nn.Conv2d(c // 2, c * 2, 1, 1, 0, bias=True), nn.PixelShuffle(2), ILN(c // 2), nn.ReLU(True)]
        up2 += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7, 1, 0, bias=False), nn.Tanh()]
        self.FC = nn.Sequential(*fc)
        self.UpBlock0 = nn.Sequential(*up0)
        self.UpBlock2 = nn.Sequential(*up2)

    def forward(self, z: Tensor) -> Tensor:
        x = self.UpBlock0(z)
        pooled = F.adaptive_avg_pool2d(x, 1) if self.light else x
        h = self.FC(pooled.reshape(x.shape[0], -1))
        gamma, beta = self.gamma(h), self.beta(h)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x)


@register_model("nicegan")
class NiceGAN(TranslationModel):
    """NICE-GAN with decoupled training: D step (encoders trained), then G step (encoders frozen)."""

    card = ModelCard(
        title="NICE-GAN",
        paper=("Chen, Xu, Yang, Jin: Reusing Discriminators for Encoding: Towards Unsupervised "
               "Image-to-Image Translation, CVPR 2020"),
        paper_url="https://arxiv.org/abs/2003.00273",
        code="alpc91/NICE-GAN-pytorch",
        commit="1b114f1",
        parameters=109_958_146,
        released="cat2dog (light, with optimizer state)",
    )

    config_class = NiceGANConfig

    def __init__(self, cfg: NiceGANConfig) -> None:
        super().__init__(cfg)
        # Official construction order gen2B, gen2A, disA, disB: a seeded build draws the same initial weights.
        for name in ("gen_a2b", "gen_b2a"):
            self.nets[name] = Generator(cfg.img_ch, cfg.ch, cfg.n_res, cfg.img_size, cfg.light)
        for name in ("dis_a", "dis_b"):
            self.nets[name] = Discriminator(cfg.img_ch, cfg.ch, cfg.n_dis, cfg.global_downsamples,
                                            cfg.residual_attention)
        dis, gens = ("dis_a", "dis_b"), ("gen_a2b", "gen_b2a")
        if cfg.encoder == "independent":
            for name in ("enc_a", "enc_b"):
                self.nets[name] = Encoder(cfg.img_ch, cfg.ch, cfg.residual_attention)
            self.phases = {"dis": Phase(dis, self.dis_loss), "gen": Phase((*gens, "enc_a", "enc_b"), self.gen_loss)}
            self.inference_nets = (*gens, "enc_a", "enc_b")
            return
        encoders = {"dis_a": Discriminator.ENCODER_KEYS, "dis_b": Discriminator.ENCODER_KEYS}
        heads = {"dis_a": Discriminator.HEAD_KEYS, "dis_b": Discriminator.HEAD_KEYS}
        # Which phase's optimizer owns the encoder inside each discriminator (the decoupled-training analysis).
        self.phases = {
            "decoupled": {"dis": Phase(dis, self.dis_loss), "gen": Phase(gens, self.gen_loss)},
            "generator": {"dis": Phase(dis, self.dis_loss, parts=heads),
                          "gen": Phase((*gens, *dis), self.gen_loss, parts=encoders)},
            "both": {"dis": Phase(dis, self.dis_loss), "gen": Phase((*gens, *dis), self.gen_loss, parts=encoders)},
        }[cfg.encoder_updates]
        self.inference_parts = encoders

    def _encoder(self, domain: str) -> Discriminator | Encoder:
        """The module whose ``encode`` gives domain ``domain``'s latent codes."""
        return self.nets[f"enc_{domain}" if self.cfg.encoder == "independent" else f"dis_{domain}"]

    def _adv_dis(self, real: tuple[Tensor, ...], fake: tuple[Tensor, ...], domain: str) -> dict[str, Tensor]:
        """LSGAN terms (targets 1 real, 0 fake) of the used heads, from ``(local, global, cam)`` logits."""
        terms = {head: mse_to(real[i], 1.0) + mse_to(fake[i], 0.0) for i, head in enumerate(("local", "global", "cam"))}
        # Official summation order global + cam + local (floating-point sums are not associative).
        return {f"{head}_{domain}": terms[head] for head in ("global", "cam", "local") if head in self.cfg.heads}

    def _adv_gen(self, fake: tuple[Tensor, ...]) -> Tensor:
        """The generator's LSGAN term (target 1) summed over the used heads, official order global + cam + local."""
        logits = {"local": fake[0], "global": fake[1], "cam": fake[2]}
        return sum(mse_to(logits[h], 1.0) for h in ("global", "cam", "local") if h in self.cfg.heads)

    def _encode_real(self, real_a: Tensor, real_b: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...],
                                                                     Tensor, Tensor]:
        """Discriminator outputs on the real images and the codes the generators translate them from."""
        out_a, out_b = self.nets["dis_a"](real_a), self.nets["dis_b"](real_b)
        if self.cfg.encoder == "reused":
            return out_a, out_b, out_a[4], out_b[4]
        with torch.no_grad():  # only the discriminators learn in this step
            return out_a, out_b, self.nets["enc_a"].encode(real_a)[0], self.nets["enc_b"].encode(real_b)[0]

    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator (and encoder) step: LSGAN on the global, local and CAM logits of both domains."""
        dis_a, dis_b = self.nets["dis_a"], self.nets["dis_b"]
        real_a_out, real_b_out, z_a, z_b = self._encode_real(batch["a"], batch["b"])
        with torch.no_grad():  # the official code computes these with grad and detaches them
            fake_a2b, fake_b2a = self.nets["gen_a2b"](z_a), self.nets["gen_b2a"](z_b)
        terms = {**self._adv_dis(real_a_out, dis_a(fake_b2a), "a"), **self._adv_dis(real_b_out, dis_b(fake_a2b), "b")}
        w = self.cfg.adv_weight
        loss_a = sum(v for k, v in terms.items() if k.endswith("_a"))
        loss_b = sum(v for k, v in terms.items() if k.endswith("_b"))
        return w * loss_a + w * loss_b, terms

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator step (encoders frozen): adversarial, cycle and reconstruction terms of both domains."""
        real_a, real_b = batch["a"], batch["b"]
        dis_a, dis_b = self.nets["dis_a"], self.nets["dis_b"]
        enc_a, enc_b = self._encoder("a"), self._encoder("b")
        gen_a2b, gen_b2a = self.nets["gen_a2b"], self.nets["gen_b2a"]
        # Re-encode with the discriminators just updated in this iteration's D step.
        z_a, _, _ = enc_a.encode(real_a)
        z_b, _, _ = enc_b.encode(real_b)
        if self.cfg.encoder == "reused":
            dis_a.advance_heads()
            dis_b.advance_heads()
        fake_a2b, fake_b2a = gen_a2b(z_a), gen_b2a(z_b)
        fake_a_out, fake_b_out = dis_a(fake_b2a), dis_b(fake_a2b)
        if self.cfg.encoder == "reused":
            fake_z_a, fake_z_b = fake_a_out[4], fake_b_out[4]
        else:
            fake_z_a, fake_z_b = enc_a.encode(fake_b2a)[0], enc_b.encode(fake_a2b)[0]
        fake_b2a2b, fake_a2b2a = gen_a2b(fake_z_a), gen_b2a(fake_z_b)
        fake_a2a, fake_b2b = gen_b2a(z_a), gen_a2b(z_b)
        adv_a, adv_b = self._adv_gen(fake_a_out), self._adv_gen(fake_b_out)
        cycle_a, cycle_b = F.l1_loss(fake_a2b2a, real_a), F.l1_loss(fake_b2a2b, real_b)
        recon_a, recon_b = F.l1_loss(fake_a2a, real_a), F.l1_loss(fake_b2b, real_b)
        w = self.cfg
        loss_a = w.adv_weight * adv_a + w.cycle_weight * cycle_a + w.recon_weight * recon_a
        loss_b = w.adv_weight * adv_b + w.cycle_weight * cycle_b + w.recon_weight * recon_b
        return loss_a + loss_b, {"adv_a": adv_a, "cycle_a": cycle_a, "recon_a": recon_a,
                                 "adv_b": adv_b, "cycle_b": cycle_b, "recon_b": recon_b}

    def _nets_for(self, direction: str) -> tuple[Discriminator, Generator, Generator]:
        """(source encoder, generator into the target domain, generator back into the source domain)."""
        if check_direction(direction) == "a2b":
            return self._encoder("a"), self.nets["gen_a2b"], self.nets["gen_b2a"]
        return self._encoder("b"), self.nets["gen_b2a"], self.nets["gen_a2b"]

    def direction_nets(self, direction: str) -> tuple[str, ...]:
        """The source domain's encoder net (a discriminator: ``inference_parts``) and the generator into the
        target."""
        src = "a" if check_direction(direction) == "a2b" else "b"
        enc = f"enc_{src}" if self.cfg.encoder == "independent" else f"dis_{src}"
        return (enc, "gen_a2b") if direction == "a2b" else (enc, "gen_b2a")

    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Latent code of images ``x`` of ``domain`` (``"a"`` or ``"b"``) from that domain's encoder."""
        return self._encoder(domain).encode(x)[0]

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` decoded from latent codes ``z``."""
        return self.nets["gen_a2b" if domain == "b" else "gen_b2a"](z)

    def check_input_size(self, size: int) -> None:
        if not self.cfg.light and size != self.cfg.img_size:
            raise ConfigError(f"the full NICE-GAN generator only runs at its training size {self.cfg.img_size} "
                              f"(its first MLP layer flattens the feature map), not {size}")
        if size % 4 or size < 8:
            raise ConfigError(f"NICE-GAN needs an input size that is a multiple of 4 and at least 8, got {size}")

    def translate(self, x: Tensor, direction: str) -> Tensor:
        enc, gen, _ = self._nets_for(direction)
        return gen(enc.encode(x)[0])

    def heatmap(self, x: Tensor, direction: str) -> Tensor:
        return self._nets_for(direction)[0].encode(x)[2]

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        enc, gen, back = self._nets_for(direction)
        z, _, heat = enc.encode(x)
        fake = gen(z)
        other = self._encoder("b" if direction == "a2b" else "a")
        cycle = back(other.encode(fake)[0])
        return {"real": x, "heatmap": heat, "recon": back(z), "fake": fake, "cycle": cycle}
