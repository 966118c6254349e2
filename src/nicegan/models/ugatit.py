"""U-GAT-IT: "Unsupervised Generative Attentional Networks with Adaptive Layer-Instance Normalization for
Image-to-Image Translation".

Kim, Kim, Kang, Lee. ICLR 2020. arXiv:1907.10830.
Official PyTorch code: https://github.com/znxlwm/UGATIT-pytorch (commit b8c4251), which this file follows number
for number. The paper's own code is the TensorFlow taki0112/UGATIT, whose defaults differ in details; the PyTorch
port is the code NICE-GAN compares with and was built from, so it is the natural baseline here. Both the light and
the full generator are supported (``light``). Checked during development against the official networks and
training iteration in float64: identical seeded initial weights and state-dict keys, and losses and all weights
equal to 1e-11 after three iterations (light and full). In float32 the shared fused ILN rounds differently.

Per direction there is one generator with its own encoder (7x7 conv, two stride-2 convs, ``n_res`` instance-norm
residual blocks), a class-activation-map (CAM) block whose two bias-free linear classifiers (on the average- and
max-pooled features) re-weight the feature channels, an MLP producing AdaILN's ``gamma``/``beta`` and a decoder
(``n_res`` AdaILN residual blocks, nearest up-sampling + conv + ILN). Per domain there are two spectral-norm
discriminators with their own CAM: a global one (``global_layers``, official 7) and a local one (``local_layers``,
official 5).

Names: ``gen_a2b`` = official ``genA2B``, ``gen_b2a`` = ``genB2A``, ``dis_ga`` = ``disGA`` (global, judges domain
A), ``dis_gb`` = ``disGB``, ``dis_la`` = ``disLA`` (local, domain A), ``dis_lb`` = ``disLB``. Inside each net the
official state-dict keys and parameter order are kept (e.g. ``DownBlock.1.weight``, ``gap_fc.weight``,
``UpBlock1_1.norm1.rho``, ``FC.0.weight``; discriminators ``model.1.weight_orig``, ``gap_fc.weight_orig``), and the
nets are built in the official order, so official weights load one to one.

ILN/AdaILN are the shared layers in mode ``"clip"``: one ``rho`` per channel used as ``(rho, 1 - rho)``, initial
0.9 (AdaILN) / 0.0 (ILN), clamped to [0, 1] after every generator step (the official ``RhoClipper``).

Deliberate deviations from the official code (behaviour of the maths is unchanged unless stated):

1. The D step runs the generators under ``no_grad``; the official code builds their graph and backpropagates the
   discriminator loss into the generators, whose gradients are then zeroed before the G step. Same numbers, less
   time and memory (the official code's "does not detach the fakes", UGATIT-pytorch#21).
2. In the G step the discriminators are frozen by the training loop (the official code computes and discards
   their gradients). A loss weight of 0 skips the passes that only feed that term (e.g. ``cycle_weight 0`` skips
   the cycle translations); with the official weights every pass runs.
3. Small images: the official depths (global 7, local 5) need at least 96 / 24 px. ``global_layers`` and
   ``local_layers`` make them configurable (defaults are the official ones); the ``ugatit-digits`` preset uses
   5 / 3 at 32 px. Too-deep settings are a ConfigError, not a reflection-padding crash mid-run.
4. ``light`` defaults to True (as NiceGANConfig does; the official CLI default is False): presets ``ugatit-light``
   and ``ugatit-full`` name the variant explicitly.
5. Training-loop bugs of the official code are fixed by the generic loop, not copied: the Python-2
   ``iterator.next()`` call that, under a bare ``except``, re-creates the data iterators every step on PyTorch
   >= 1.13; the resume that subtracts the LR decay cumulatively; sample grids that run with gradients (the
   memory leak of UGATIT-pytorch#23) and consume training batches; weight-only checkpoints (ours hold the optimizer
   state and RNG, so resume is exact).
6. Sample grids have five rows (real, the translating generator's heatmap, translation, cycle, identity) instead of
   the official seven (which add the identity and cycle passes' own heatmaps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model
from nicegan.nn import ILN, ResnetAdaILNBlock, SNConv2d, SNLinear, clip_rho
from nicegan.nn.losses import bce_to, mse_to


@dataclass
class UGATITConfig(ModelConfig):
    """U-GAT-IT architecture and loss weights (official defaults at 256 px)."""

    ch: int = 64  # base width of generators and discriminators
    n_res: int = 4  # residual blocks in the encoder and AdaILN residual blocks in the decoder
    light: bool = True  # light MLP (global average pool) instead of the full flattening MLP
    global_layers: int = 7  # depth (official n_layers) of the global discriminators
    local_layers: int = 5  # depth (official n_layers) of the local discriminators
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    identity_weight: float = 10.0
    cam_weight: float = 1000.0

    tiny = {"img_size": 32, "ch": 4, "n_res": 1, "global_layers": 4, "local_layers": 3}

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the networks cannot be built or run at this size."""
        super().validate()
        if self.ch < 1:
            raise ConfigError(f"model.ch must be >= 1, got {self.ch}")
        if self.n_res < 0:
            raise ConfigError(f"model.n_res must be >= 0, got {self.n_res}")
        if self.img_size % 4 or self.img_size < 8:
            raise ConfigError(f"model.img_size must be a multiple of 4 and at least 8, got {self.img_size}")
        for key in ("global_layers", "local_layers"):
            if getattr(self, key) < 3:
                raise ConfigError(f"model.{key} must be >= 3 (the discriminator needs one stride-2 conv), "
                                  f"got {getattr(self, key)}")
        for key in ("adv_weight", "cycle_weight", "identity_weight", "cam_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not (self.adv_weight or self.cycle_weight or self.identity_weight or self.cam_weight):
            raise ConfigError("model.adv_weight, cycle_weight, identity_weight and cam_weight are all 0: "
                              "the generators would have nothing to minimise")
        dis_sizes(self)


def dis_map_size(img_size: int, n_layers: int, key: str = "n_layers") -> int:
    """Side length of a discriminator's logit map; ConfigError if a layer would get too small an input."""
    s = img_size
    strides = [2] * (n_layers - 2) + [1, 1]  # stride-2 trunk, stride-1 trunk conv, output conv
    for i, stride in enumerate(strides):
        # Every conv is ReflectionPad2d(1) + 4x4 conv; reflection padding needs an input of at least 2.
        if s < 2:
            deepest = max((n for n in range(3, n_layers) if _fits(img_size, n)), default=None)
            hint = f"use model.{key} <= {deepest}" if deepest else "use a larger img_size"
            raise ConfigError(f"model.{key} {n_layers} is too deep for img_size {img_size} (conv {i + 1} of the "
                              f"discriminator gets a {s}x{s} map); {hint}")
        s = (s + 2 - 4) // stride + 1
    return s


def _fits(img_size: int, n_layers: int) -> bool:
    try:
        dis_map_size(img_size, n_layers)
    except ConfigError:
        return False
    return True


def dis_sizes(cfg: UGATITConfig) -> tuple[int, int]:
    """Side lengths of the global and local logit maps (official 256 px: 6 and 30)."""
    return (dis_map_size(cfg.img_size, cfg.global_layers, "global_layers"),
            dis_map_size(cfg.img_size, cfg.local_layers, "local_layers"))


# --- generator ------------------------------------------------------------------------------------------------


class ResnetBlock(nn.Module):
    """Encoder residual block: (reflect pad, 3x3 conv, IN, ReLU) then (reflect pad, 3x3 conv, IN), plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, 1, 0, bias=False), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, 1, 0, bias=False), nn.InstanceNorm2d(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class Generator(nn.Module):
    """Official U-GAT-IT ``ResnetGenerator``: encoder, CAM, gamma/beta MLP, AdaILN decoder (official key names)."""

    def __init__(self, img_ch: int, ngf: int, n_blocks: int, img_size: int, light: bool) -> None:
        super().__init__()
        self.light = light
        self.n_blocks = n_blocks
        # Modules are created in the official order (a seeded build draws the official initial weights) and
        # registered in the official order (state-dict keys and parameter order match).
        down: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(img_ch, ngf, 7, 1, 0, bias=False),
                                 nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        for m in (1, 2):  # two stride-2 down-sampling convs (official n_downsampling is hard-coded to 2)
            down += [nn.ReflectionPad2d(1), nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 0, bias=False),
                     nn.InstanceNorm2d(ngf * m * 2), nn.ReLU(True)]
        dim = ngf * 4
        down += [ResnetBlock(dim) for _ in range(n_blocks)]

        # CAM: the two logit classifiers' weights also re-weight the feature channels.
        self.gap_fc = nn.Linear(dim, 1, bias=False)
        self.gmp_fc = nn.Linear(dim, 1, bias=False)
        self.conv1x1 = nn.Conv2d(dim * 2, dim, kernel_size=1, stride=1, bias=True)
        self.relu = nn.ReLU(True)

        # Light: MLP on the globally average-pooled features; full: on the flattened map ((S/4)^2 * dim inputs).
        fc_in = dim if light else (img_size // 4) ** 2 * dim
        fc = [nn.Linear(fc_in, dim, bias=False), nn.ReLU(True), nn.Linear(dim, dim, bias=False), nn.ReLU(True)]
        self.gamma = nn.Linear(dim, dim, bias=False)
        self.beta = nn.Linear(dim, dim, bias=False)
        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", ResnetAdaILNBlock(dim, mode="clip"))

        up: list[nn.Module] = []
        for m in (4, 2):
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                   nn.Conv2d(ngf * m, ngf * m // 2, 3, 1, 0, bias=False), ILN(ngf * m // 2, mode="clip"), nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, img_ch, 7, 1, 0, bias=False), nn.Tanh()]

        self.DownBlock = nn.Sequential(*down)
        self.FC = nn.Sequential(*fc)
        self.UpBlock2 = nn.Sequential(*up)

    def attend(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder + CAM: ``(features, cam_logit (B x 2), heatmap (B x 1 x S/4 x S/4))``."""
        x = self.DownBlock(x)
        b = x.shape[0]
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).view(b, -1))
        gmp_logit = self.gmp_fc(F.adaptive_max_pool2d(x, 1).view(b, -1))
        gap = x * self.gap_fc.weight[:, :, None, None]
        gmp = x * self.gmp_fc.weight[:, :, None, None]
        x = self.relu(self.conv1x1(torch.cat([gap, gmp], 1)))
        heatmap = torch.sum(x, dim=1, keepdim=True)
        return x, torch.cat([gap_logit, gmp_logit], 1), heatmap

    def decode(self, x: Tensor) -> Tensor:
        """Gamma/beta MLP and decoder on the CAM features: the translated image in [-1, 1]."""
        pooled = F.adaptive_avg_pool2d(x, 1) if self.light else x
        h = self.FC(pooled.reshape(x.shape[0], -1))
        gamma, beta = self.gamma(h), self.beta(h)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Official output tuple ``(image, cam_logit, heatmap)``."""
        feat, cam_logit, heatmap = self.attend(x)
        return self.decode(feat), cam_logit, heatmap


# --- discriminator --------------------------------------------------------------------------------------------


def _sn_block(in_ch: int, out_ch: int, stride: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), SNConv2d(in_ch, out_ch, 4, stride), nn.LeakyReLU(0.2, True)]


class Discriminator(nn.Module):
    """Official U-GAT-IT ``Discriminator``: spectral-norm trunk, CAM (SN linears), SN output conv."""

    def __init__(self, img_ch: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        model = _sn_block(img_ch, ndf, 2)
        for i in range(1, n_layers - 2):
            model += _sn_block(ndf * 2 ** (i - 1), ndf * 2**i, 2)
        mult = 2 ** (n_layers - 3)
        model += _sn_block(ndf * mult, ndf * mult * 2, 1)
        dim = ndf * mult * 2
        self.gap_fc = SNLinear(dim, 1, bias=False)
        self.gmp_fc = SNLinear(dim, 1, bias=False)
        self.conv1x1 = nn.Conv2d(dim * 2, dim, kernel_size=1, stride=1, bias=True)  # the only conv without SN
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = SNConv2d(dim, 1, 4, 1, bias=False)
        self.model = nn.Sequential(*model)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Official output tuple ``(logit map, cam_logit (B x 2), heatmap)``."""
        x = self.model(x)
        b = x.shape[0]
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).view(b, -1))
        gmp_logit = self.gmp_fc(F.adaptive_max_pool2d(x, 1).view(b, -1))
        # The re-weighting uses the raw (not spectrally normalised) weights, as the official code does (it takes
        # the layer's first parameter, which the spectral-norm hook names weight_orig).
        gap = x * self.gap_fc.weight_orig[:, :, None, None]
        gmp = x * self.gmp_fc.weight_orig[:, :, None, None]
        x = self.leaky_relu(self.conv1x1(torch.cat([gap, gmp], 1)))
        heatmap = torch.sum(x, dim=1, keepdim=True)
        return self.conv(self.pad(x)), torch.cat([gap_logit, gmp_logit], 1), heatmap


# --- model ----------------------------------------------------------------------------------------------------


@register_model("ugatit")
class UGATIT(TranslationModel):
    """U-GAT-IT: D step (four discriminators), then G step (two generators), then rho clipping."""

    card = ModelCard(
        title="U-GAT-IT",
        paper=("Kim, Kim, Kang, Lee: U-GAT-IT: Unsupervised Generative Attentional Networks with "
               "Adaptive Layer-Instance Normalization for Image-to-Image Translation, ICLR 2020"),
        paper_url="https://arxiv.org/abs/1907.10830",
        code="znxlwm/UGATIT-pytorch",
        commit="b8c4251",
        parameters=134_021_248,
        released="none in PyTorch (selfie2anime in TensorFlow only)",
    )

    config_class = UGATITConfig

    def __init__(self, cfg: UGATITConfig) -> None:
        super().__init__(cfg)
        # Official construction order genA2B, genB2A, disGA, disGB, disLA, disLB: seeded builds match.
        for name in ("gen_a2b", "gen_b2a"):
            self.nets[name] = Generator(cfg.img_ch, cfg.ch, cfg.n_res, cfg.img_size, cfg.light)
        for name, depth in (("dis_ga", cfg.global_layers), ("dis_gb", cfg.global_layers),
                            ("dis_la", cfg.local_layers), ("dis_lb", cfg.local_layers)):
            self.nets[name] = Discriminator(cfg.img_ch, cfg.ch, depth)
        # Official D_optim order disGA, disGB, disLA, disLB (so official Adam states map one to one).
        self.phases = {"dis": Phase(("dis_ga", "dis_gb", "dis_la", "dis_lb"), self.dis_loss),
                       "gen": Phase(("gen_a2b", "gen_b2a"), self.gen_loss, after=self.clip_rho)}
        self.inference_nets = ("gen_a2b", "gen_b2a")

    def clip_rho(self) -> None:
        """After the generator step, clamp every ILN/AdaILN ``rho`` to [0, 1] (official ``RhoClipper``)."""
        for name in self.inference_nets:
            clip_rho(self.nets[name])

    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator step: LSGAN on the patch and CAM logits of the global and local discriminators."""
        n, real_a, real_b = self.nets, batch["a"], batch["b"]
        with torch.no_grad():  # the official code builds the generators' graph here and never uses it
            fake_a2b = n["gen_a2b"](real_a)[0]
            fake_b2a = n["gen_b2a"](real_b)[0]
        # Official call order (each training-mode call is one spectral-norm power iteration of that net).
        real = {"ga": n["dis_ga"](real_a), "la": n["dis_la"](real_a),
                "gb": n["dis_gb"](real_b), "lb": n["dis_lb"](real_b)}
        fake = {"ga": n["dis_ga"](fake_b2a), "la": n["dis_la"](fake_b2a),
                "gb": n["dis_gb"](fake_a2b), "lb": n["dis_lb"](fake_a2b)}
        logs: dict[str, Tensor] = {}
        totals = []
        for dom in "ab":
            terms = []
            for kind, scale in (("g", "global"), ("l", "local")):
                r, f = real[kind + dom], fake[kind + dom]
                adv = mse_to(r[0], 1.0) + mse_to(f[0], 0.0)  # LSGAN on the patch logits
                cam = mse_to(r[1], 1.0) + mse_to(f[1], 0.0)  # LSGAN on the CAM logits
                logs[f"{scale}_{dom}"], logs[f"{scale}_cam_{dom}"] = adv, cam
                terms += [adv, cam]
            totals.append(self.cfg.adv_weight * sum(terms[1:], terms[0]))
        return totals[0] + totals[1], logs

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator step: adversarial, cycle, identity and CAM terms of both domains."""
        n, w, real_a, real_b = self.nets, self.cfg, batch["a"], batch["b"]
        fake_a2b, cam_a2b, _ = n["gen_a2b"](real_a)
        fake_b2a, cam_b2a, _ = n["gen_b2a"](real_b)
        logs: dict[str, Tensor] = {}
        loss_parts = []
        # The official G loss of domain X: terms of the generator into X and of the X discriminators.
        for dom, gen, real_x, fake_x, fake_cam, fake_y in (("a", n["gen_b2a"], real_a, fake_b2a, cam_b2a, fake_a2b),
                                                           ("b", n["gen_a2b"], real_b, fake_a2b, cam_a2b, fake_b2a)):
            parts = []
            if w.adv_weight:
                g_logit, g_cam, _ = n[f"dis_g{dom}"](fake_x)
                l_logit, l_cam, _ = n[f"dis_l{dom}"](fake_x)
                adv = mse_to(g_logit, 1.0) + mse_to(g_cam, 1.0) + mse_to(l_logit, 1.0) + mse_to(l_cam, 1.0)
                logs[f"adv_{dom}"] = adv
                parts.append(w.adv_weight * adv)
            if w.cycle_weight:
                cycle = F.l1_loss(gen(fake_y)[0], real_x)  # X -> Y -> X
                logs[f"cycle_{dom}"] = cycle
                parts.append(w.cycle_weight * cycle)
            if w.identity_weight or w.cam_weight:
                # Identity mapping X -> X; without the identity term only its CAM logits are needed.
                if w.identity_weight:
                    fake_xx, idt_cam, _ = gen(real_x)
                    identity = F.l1_loss(fake_xx, real_x)
                    logs[f"identity_{dom}"] = identity
                    parts.append(w.identity_weight * identity)
                else:
                    idt_cam = gen.attend(real_x)[1]
                if w.cam_weight:
                    # The generator's CAM must tell its source domain (Y, target 1) from its own (X, target 0).
                    cam = bce_to(fake_cam, 1.0) + bce_to(idt_cam, 0.0)
                    logs[f"cam_{dom}"] = cam
                    parts.append(w.cam_weight * cam)
            loss_parts.append(sum(parts[1:], parts[0]))
        return loss_parts[0] + loss_parts[1], logs

    def _gens(self, direction: str) -> tuple[Generator, Generator]:
        """(generator of ``direction``, generator of the opposite direction)."""
        if check_direction(direction) == "a2b":
            return self.nets["gen_a2b"], self.nets["gen_b2a"]
        return self.nets["gen_b2a"], self.nets["gen_a2b"]

    def direction_nets(self, direction: str) -> tuple[str, ...]:
        return ("gen_a2b",) if check_direction(direction) == "a2b" else ("gen_b2a",)

    def check_input_size(self, size: int) -> None:
        if not self.cfg.light and size != self.cfg.img_size:
            raise ConfigError(f"the full U-GAT-IT generator only runs at its training size {self.cfg.img_size} "
                              f"(its first MLP layer flattens the feature map), not {size}")
        if size % 4 or size < 8:
            raise ConfigError(f"U-GAT-IT needs an input size that is a multiple of 4 and at least 8, got {size}")

    def translate(self, x: Tensor, direction: str) -> Tensor:
        return self._gens(direction)[0](x)[0]

    def heatmap(self, x: Tensor, direction: str) -> Tensor:
        """The translating generator's CAM heatmap (B x 1 x S/4 x S/4)."""
        return self._gens(direction)[0].attend(x)[2]

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        gen, back = self._gens(direction)
        fake, _, heat = gen(x)
        # Identity: the source image through the generator into its own domain (official sample grids show it).
        return {"real": x, "heatmap": heat, "fake": fake, "cycle": back(fake)[0], "identity": back(x)[0]}
