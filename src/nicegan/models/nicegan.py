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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.errors import ConfigError
from nicegan.layers import ILN, ResnetAdaILNBlock, SNConv2d, SNLinear
from nicegan.models.base import ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model


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


class Discriminator(nn.Module):
    """Official NICE-GAN discriminator: encoder (trunk + CAM) and local/global heads (official key names)."""

    #: state-dict key prefixes of the encoder (what translation runs; the heads only judge realism)
    ENCODER_KEYS = ("model.", "fc.", "conv1x1.", "lamda")

    def __init__(self, img_ch: int, ndf: int, n_layers: int, global_downsamples: int = 2) -> None:
        super().__init__()
        # Modules are created in the official order (seeded builds match) and registered in the official order
        # (state-dict keys and parameter order match).
        model = _sn_block(img_ch, ndf, 2) + _sn_block(ndf, ndf * 2, 2)
        self.fc = SNLinear(ndf * 4, 1, bias=False)
        self.conv1x1 = nn.Conv2d(ndf * 4, ndf * 2, kernel_size=1, stride=1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.lamda = nn.Parameter(torch.zeros(1))  # CAM gate, zero at init: the CAM branch starts switched off

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
        x0 = self.model(x)
        gap = F.adaptive_avg_pool2d(x0, 1)
        gmp = F.adaptive_max_pool2d(x0, 1)
        cam_logit = self.fc(torch.cat([gap, gmp], 1).view(x0.shape[0], -1))
        # The re-weighting uses the raw (not spectrally normalised) fc weight, as the official code does.
        x = torch.cat([x0, x0], 1) * self.fc.weight_orig[:, :, None, None]
        x = self.lamda * self.conv1x1(x) + x0
        z = self.leaky_relu(x)
        heatmap = torch.sum(z, dim=1, keepdim=True)
        return z, cam_logit, heatmap

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


def _mse(x: Tensor, target: float) -> Tensor:
    return F.mse_loss(x, torch.full_like(x, target))


@register_model("nicegan")
class NiceGAN(TranslationModel):
    """NICE-GAN with decoupled training: D step (encoders trained), then G step (encoders frozen)."""

    config_class = NiceGANConfig

    def __init__(self, cfg: NiceGANConfig) -> None:
        super().__init__(cfg)
        # Official construction order gen2B, gen2A, disA, disB: a seeded build draws the same initial weights.
        for name in ("gen_a2b", "gen_b2a"):
            self.nets[name] = Generator(cfg.img_ch, cfg.ch, cfg.n_res, cfg.img_size, cfg.light)
        for name in ("dis_a", "dis_b"):
            self.nets[name] = Discriminator(cfg.img_ch, cfg.ch, cfg.n_dis, cfg.global_downsamples)
        self.phases = {"dis": Phase(("dis_a", "dis_b"), self.dis_loss),
                       "gen": Phase(("gen_a2b", "gen_b2a"), self.gen_loss)}
        self.inference_parts = {"dis_a": Discriminator.ENCODER_KEYS, "dis_b": Discriminator.ENCODER_KEYS}

    def _adv_dis(self, real: tuple[Tensor, ...], fake: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor]:
        # (local, global, cam) logits; LSGAN with targets 1 (real) and 0 (fake).
        loc = _mse(real[0], 1.0) + _mse(fake[0], 0.0)
        glob = _mse(real[1], 1.0) + _mse(fake[1], 0.0)
        cam = _mse(real[2], 1.0) + _mse(fake[2], 0.0)
        return glob, cam, loc

    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator (and encoder) step: LSGAN on the global, local and CAM logits of both domains."""
        real_a, real_b = batch["a"], batch["b"]
        dis_a, dis_b = self.nets["dis_a"], self.nets["dis_b"]
        real_la, real_ga, real_cam_a, _, z_a = dis_a(real_a)
        real_lb, real_gb, real_cam_b, _, z_b = dis_b(real_b)
        with torch.no_grad():  # the official code computes these with grad and detaches them
            fake_a2b, fake_b2a = self.nets["gen_a2b"](z_a), self.nets["gen_b2a"](z_b)
        fake_la, fake_ga, fake_cam_a, _, _ = dis_a(fake_b2a)
        fake_lb, fake_gb, fake_cam_b, _, _ = dis_b(fake_a2b)
        ga, cam_a, la = self._adv_dis((real_la, real_ga, real_cam_a), (fake_la, fake_ga, fake_cam_a))
        gb, cam_b, lb = self._adv_dis((real_lb, real_gb, real_cam_b), (fake_lb, fake_gb, fake_cam_b))
        w = self.cfg.adv_weight
        loss = w * (ga + cam_a + la) + w * (gb + cam_b + lb)
        return loss, {"global_a": ga, "cam_a": cam_a, "local_a": la, "global_b": gb, "cam_b": cam_b, "local_b": lb}

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator step (encoders frozen): adversarial, cycle and reconstruction terms of both domains."""
        real_a, real_b = batch["a"], batch["b"]
        dis_a, dis_b = self.nets["dis_a"], self.nets["dis_b"]
        gen_a2b, gen_b2a = self.nets["gen_a2b"], self.nets["gen_b2a"]
        # Re-encode with the discriminators just updated in this iteration's D step.
        z_a, _, _ = dis_a.encode(real_a)
        dis_a.advance_heads()
        z_b, _, _ = dis_b.encode(real_b)
        dis_b.advance_heads()
        fake_a2b, fake_b2a = gen_a2b(z_a), gen_b2a(z_b)
        fake_la, fake_ga, fake_cam_a, _, fake_z_a = dis_a(fake_b2a)
        fake_lb, fake_gb, fake_cam_b, _, fake_z_b = dis_b(fake_a2b)
        fake_b2a2b, fake_a2b2a = gen_a2b(fake_z_a), gen_b2a(fake_z_b)
        fake_a2a, fake_b2b = gen_b2a(z_a), gen_a2b(z_b)
        adv_a = _mse(fake_ga, 1.0) + _mse(fake_cam_a, 1.0) + _mse(fake_la, 1.0)
        adv_b = _mse(fake_gb, 1.0) + _mse(fake_cam_b, 1.0) + _mse(fake_lb, 1.0)
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
            return self.nets["dis_a"], self.nets["gen_a2b"], self.nets["gen_b2a"]
        return self.nets["dis_b"], self.nets["gen_b2a"], self.nets["gen_a2b"]

    def direction_nets(self, direction: str) -> tuple[str, ...]:
        """The source domain's discriminator (its encoder: ``inference_parts``) and the generator into the target."""
        return ("dis_a", "gen_a2b") if check_direction(direction) == "a2b" else ("dis_b", "gen_b2a")

    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Latent code of images ``x`` of ``domain`` (``"a"`` or ``"b"``) from that domain's encoder."""
        return self.nets[f"dis_{domain}"].encode(x)[0]

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
        other = self.nets["dis_b" if direction == "a2b" else "dis_a"]
        cycle = back(other.encode(fake)[0])
        return {"real": x, "heatmap": heat, "recon": back(z), "fake": fake, "cycle": cycle}
