"""CycleGAN: "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks".

Zhu, Park, Isola, Efros. ICCV 2017. arXiv:1703.10593.
Official code: https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (master; models/networks.py,
models/cycle_gan_model.py, util/image_pool.py), the PyTorch re-implementation by the authors that the later papers
(UNIT, MUNIT, U-GAT-IT, NICE-GAN) compare against. We follow its ``--model cycle_gan`` defaults: ``resnet_9blocks``
generators, the ``basic`` 70x70 PatchGAN, instance norm without affine parameters or running statistics, no dropout,
LSGAN, ``lambda_A = lambda_B = 10``, ``lambda_identity = 0.5``, image pools of 50, ``init_type normal`` (0.02).

Names: ``gen_a2b`` = official ``netG_A`` (A -> B), ``gen_b2a`` = ``netG_B``, ``dis_a`` judges domain-A images
(official ``netD_B``), ``dis_b`` judges domain-B images (official ``netD_A``). Inside each net the official
``nn.Sequential`` layout is kept, so the state-dict keys equal those of the official ``*_net_G_A.pth`` /
``*_net_D_A.pth`` files (``model.1.weight``, ``model.10.conv_block.1.weight``...): official weights load directly.
Nets are built and initialised in the official order (G_A, G_B, D_A, D_B), so a seeded build draws the same
initial weights.

One iteration, in the official order: the generator phase (discriminators frozen) translates both batches, computes
the adversarial, cycle and identity losses and updates both generators; then the discriminator phase updates both
discriminators on real images and on fakes drawn from a per-domain image pool. The fakes fed to the pools are the
ones computed in the generator phase of the same iteration (before the generator update), detached, exactly as in
the official code; the model caches them between the two phases.

Deliberate deviations from the official code:

1. LR schedule: the official one is per epoch (100 epochs constant, then the factor drops by 1/101 each epoch for
   100 epochs, never reaching 0). Ours is linear per step from ``decay_start * max_steps`` to 0 at ``max_steps``
   (the toolkit's schedule, a pure function of the step); the presets express epochs as steps (see cyclegan.yaml).
2. The image pools are training state: they are saved in every checkpoint (``extra_state``) and restored on
   resume, so a resumed run is exact. The official ``--continue_train`` restarts with empty pools.
3. The pool stores a copy of each fake rather than a view into the batch tensor (identical values; a batch of B
   fakes is not kept alive by one stored image). Its random draws (``random.uniform`` then ``random.randint``, with
   Python's ``random``, B pool before A pool) are the official ones.
4. The discriminator phase sums the two discriminators' losses and calls backward once; the official code calls
   backward per discriminator. The nets are disjoint, so the gradients are the same.
5. Only what the CycleGAN defaults use is implemented: the ResNet generator (``n_blocks`` configurable; 6 is the
   official choice for 128 px), the n-layer PatchGAN (``n_layers_d``, 3 = ``basic``), instance norm, reflection
   padding, LSGAN. Not ported: U-Net generators, batch norm, dropout, the vanilla and WGAN-GP losses, and
   separate input/output channel counts. ``adv_weight`` (official: an implicit 1) scales the generators'
   adversarial terms so that, like every other loss weight, 0 removes them.
6. Work that does not change the numbers is skipped: a term whose weight is 0 is not computed (official: computed,
   then multiplied by 0, except identity), and the discriminator phase never builds a generator graph.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model
from nicegan.nn.losses import mse_to


@dataclass
class CycleGANConfig(ModelConfig):
    """CycleGAN architecture and loss weights (official ``cycle_gan`` defaults at 256 px)."""

    ngf: int = 64  # generator base width (official --ngf)
    ndf: int = 64  # discriminator base width (official --ndf)
    n_blocks: int = 9  # ResNet blocks: resnet_9blocks at 256 px; the official choice for 128 px is 6
    n_layers_d: int = 3  # stride-2 convs of the PatchGAN (official --n_layers_D; 3 = "basic", 70x70 receptive field)
    pool_size: int = 50  # image pool per domain; 0 = no pool (the latest fakes only)
    init_gain: float = 0.02  # std of the normal init of conv weights (official --init_gain)
    adv_weight: float = 1.0  # generators' adversarial terms (implicit 1 in the official code)
    lambda_a: float = 10.0  # cycle A -> B -> A (official --lambda_A)
    lambda_b: float = 10.0  # cycle B -> A -> B (official --lambda_B)
    lambda_identity: float = 0.5  # identity weight relative to lambda_a / lambda_b: 0.5 x 10 = 5 effective

    tiny = {"img_size": 32, "ngf": 4, "ndf": 4, "n_blocks": 1}

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the networks cannot be built or run at this size."""
        super().validate()
        for key in ("ngf", "ndf"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("n_blocks", "n_layers_d", "pool_size"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not self.init_gain > 0:
            raise ConfigError(f"model.init_gain must be > 0, got {self.init_gain}")
        for key in ("adv_weight", "lambda_a", "lambda_b", "lambda_identity"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if not (self.adv_weight or self.lambda_a or self.lambda_b):
            raise ConfigError("model.adv_weight, model.lambda_a and model.lambda_b are all 0: the generators "
                              "would have no loss")
        generator_check(self.img_size, self.n_blocks, "model.img_size")
        patch_size(self.img_size, self.n_layers_d)


def generator_check(size: int, n_blocks: int, what: str) -> None:
    """ConfigError unless the ResNet generator maps ``size`` x ``size`` images to images of the same size."""
    # Two stride-2 convs and two x2 transposed convs give back the input size only for multiples of 4; the 7x7
    # reflection pad needs a side > 3, and the blocks' reflection pad at 1/4 resolution needs a side of at least 2.
    least = 8 if n_blocks else 4
    if size % 4 or size < least:
        raise ConfigError(f"{what} must be a multiple of 4 and at least {least} for the CycleGAN generator, "
                          f"got {size}")


def patch_size(img_size: int, n_layers: int) -> int:
    """Side of the PatchGAN logit map at ``img_size``; ConfigError if it would be empty."""

    def out(s: int) -> int:
        for _ in range(n_layers):
            s = max(0, (s + 2 - 4) // 2 + 1)  # 4x4 conv, stride 2, zero padding 1
        for _ in range(2):
            s = max(0, s - 1)  # 4x4 conv, stride 1, padding 1
        return s

    side = out(img_size)
    if side < 1:
        least = 3 * 2**n_layers  # each stride-2 conv halves (rounding down); the stride-1 convs need 3 -> 2 -> 1
        raise ConfigError(f"model.img_size {img_size} is too small for the PatchGAN with n_layers_d {n_layers} "
                          f"(its output would be empty); use img_size >= {least} or a smaller n_layers_d")
    return side


def init_normal(net: nn.Module, gain: float) -> None:
    """Official ``init_type normal``: conv weights ~ N(0, gain), biases 0 (module registration order)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _norm(ch: int) -> nn.InstanceNorm2d:
    # Official norm 'instance': no affine parameters and no running statistics (train and eval modes agree).
    return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Pad-conv-IN-ReLU-pad-conv-IN plus identity (official ``ResnetBlock``, no dropout, reflection padding)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # Convs carry a bias because instance norm has no affine shift (official use_bias for InstanceNorm2d).
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=True), _norm(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Official ``ResnetGenerator``: c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` ResNet blocks, two x2
    transposed-conv upsamplings, c7s1-3 with tanh."""

    def __init__(self, img_ch: int, ngf: int, n_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(img_ch, ngf, 7, padding=0, bias=True),
                                   _norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                       _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=True),
                       _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, img_ch, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """Official ``NLayerDiscriminator`` (PatchGAN): ``n_layers`` stride-2 4x4 convs, one stride-1 conv, a 1-channel
    stride-1 conv; LeakyReLU 0.2, instance norm on all but the first and the last conv. 30x30 logits at 256 px."""

    def __init__(self, img_ch: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(img_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True), _norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True), _norm(ndf * mult),
                   nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ImagePool:
    """History of generated images (Shrivastava et al. 2017), the official ``ImagePool`` semantics.

    Until ``size`` images are stored, every incoming image is stored and returned. Once full, each incoming image
    is, with probability 0.5, swapped with a uniformly chosen stored image, which is returned in its place;
    otherwise it is returned and not stored. Draws use Python's ``random`` (checkpointed by the training loop).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[Tensor] = []  # C x H x W each, detached copies

    def query(self, images: Tensor) -> Tensor:
        """Images (B x C x H x W) for the discriminator: a mix of ``images`` and stored ones."""
        if self.size == 0:
            return images
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].to(img.device, img.dtype))  # a resumed pool may sit elsewhere
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state(self) -> Tensor:
        """The stored images as one N x C x H x W tensor (an empty tensor for an empty pool)."""
        return torch.stack(self.images) if self.images else torch.empty(0)

    def load(self, images: Tensor, device: torch.device) -> None:
        """Replace the stored images with ``images`` (as returned by :meth:`state`), moved to ``device``."""
        self.images = list(images.to(device).unbind(0)) if images.numel() else []


@register_model("cyclegan")
class CycleGAN(TranslationModel):
    """CycleGAN: generator phase (discriminators frozen), then discriminator phase with image pools."""

    card = ModelCard(
        title="CycleGAN",
        paper=("Zhu, Park, Isola, Efros: Unpaired Image-to-Image Translation using Cycle-Consistent "
               "Adversarial Networks, ICCV 2017"),
        paper_url="https://arxiv.org/abs/1703.10593",
        code="junyanz/pytorch-CycleGAN-and-pix2pix",
        commit="master",
        parameters=28_285_832,
        released="18 single-direction generators (download_cyclegan_model.sh)",
    )

    config_class = CycleGANConfig

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__(cfg)
        # Official construction (and init) order: G_A, G_B, D_A (judges B), D_B (judges A).
        built: dict[str, nn.Module] = {}
        for name in ("gen_a2b", "gen_b2a"):
            built[name] = ResnetGenerator(cfg.img_ch, cfg.ngf, cfg.n_blocks)
            init_normal(built[name], cfg.init_gain)
        for name in ("dis_b", "dis_a"):
            built[name] = NLayerDiscriminator(cfg.img_ch, cfg.ndf, cfg.n_layers_d)
            init_normal(built[name], cfg.init_gain)
        for name in ("gen_a2b", "gen_b2a", "dis_a", "dis_b"):
            self.nets[name] = built[name]
        self.phases = {"gen": Phase(("gen_a2b", "gen_b2a"), self.gen_loss),
                       "dis": Phase(("dis_a", "dis_b"), self.dis_loss)}
        self.inference_nets = ("gen_a2b", "gen_b2a")
        # pool_a holds fake A images (official fake_A_pool) for dis_a; pool_b holds fake B images for dis_b.
        self.pool_a = ImagePool(cfg.pool_size)
        self.pool_b = ImagePool(cfg.pool_size)
        # (real_a, real_b, fake_a, fake_b) of the last generator phase, detached, for the discriminator phase
        self._fakes: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def extra_state(self) -> dict[str, Any]:
        """The two image pools (N x C x H x W tensors)."""
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the image pools saved by :meth:`extra_state` (missing entries leave a pool empty)."""
        device = next(self.parameters()).device
        self.pool_a.load(state.get("pool_a", torch.empty(0)), device)
        self.pool_b.load(state.get("pool_b", torch.empty(0)), device)

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Generator phase (discriminators frozen): adversarial, cycle and identity terms."""
        real_a, real_b = batch["a"], batch["b"]
        gen_a2b, gen_b2a = self.nets["gen_a2b"], self.nets["gen_b2a"]
        dis_a, dis_b = self.nets["dis_a"], self.nets["dis_b"]
        w = self.cfg
        logs: dict[str, Tensor] = {}
        # Official forward order: fake_B, rec_A, fake_A, rec_B, then the identity images.
        fake_b = gen_a2b(real_a)
        rec_a = gen_b2a(fake_b) if w.lambda_a else None
        fake_a = gen_b2a(real_b)
        rec_b = gen_a2b(fake_a) if w.lambda_b else None
        self._fakes = (real_a, real_b, fake_a.detach(), fake_b.detach())
        terms: list[Tensor] = []  # summed in the official order: G_A, G_B, cycle_A, cycle_B, idt_A, idt_B
        if w.adv_weight:
            logs["adv_b"] = mse_to(dis_b(fake_b), 1.0)  # official loss_G_A
            logs["adv_a"] = mse_to(dis_a(fake_a), 1.0)  # official loss_G_B
            terms += [w.adv_weight * logs["adv_b"], w.adv_weight * logs["adv_a"]]
        if rec_a is not None:
            logs["cycle_a"] = F.l1_loss(rec_a, real_a)
            terms.append(w.lambda_a * logs["cycle_a"])
        if rec_b is not None:
            logs["cycle_b"] = F.l1_loss(rec_b, real_b)
            terms.append(w.lambda_b * logs["cycle_b"])
        if w.lambda_identity:
            # G_A(B) should leave B images unchanged (weight lambda_idt * lambda_B), G_B(A) A images.
            if w.lambda_b:
                logs["identity_b"] = F.l1_loss(gen_a2b(real_b), real_b)
                terms.append(w.lambda_identity * w.lambda_b * logs["identity_b"])
            if w.lambda_a:
                logs["identity_a"] = F.l1_loss(gen_b2a(real_a), real_a)
                terms.append(w.lambda_identity * w.lambda_a * logs["identity_a"])
        return (sum(terms[1:], terms[0]) if terms else real_a.new_zeros(())), logs

    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Discriminator phase: LSGAN (halved) on real images and pooled fakes of this step's generator phase."""
        real_a, real_b = batch["a"], batch["b"]
        dis_a, dis_b = self.nets["dis_a"], self.nets["dis_b"]
        cached, self._fakes = self._fakes, None
        if cached is not None and cached[0] is real_a and cached[1] is real_b:
            fake_a, fake_b = cached[2], cached[3]
        else:  # called without this batch's generator phase: translate with the current generators
            with torch.no_grad():
                fake_b, fake_a = self.nets["gen_a2b"](real_a), self.nets["gen_b2a"](real_b)
        # Official order: D_A (our dis_b) queries the B pool first, then D_B (dis_a) the A pool.
        fake_b = self.pool_b.query(fake_b)
        adv_b = 0.5 * (mse_to(dis_b(real_b), 1.0) + mse_to(dis_b(fake_b), 0.0))
        fake_a = self.pool_a.query(fake_a)
        adv_a = 0.5 * (mse_to(dis_a(real_a), 1.0) + mse_to(dis_a(fake_a), 0.0))
        return adv_b + adv_a, {"adv_b": adv_b, "adv_a": adv_a}

    def _gens(self, direction: str) -> tuple[nn.Module, nn.Module]:
        """(generator into the target domain, generator back into the source domain)."""
        if check_direction(direction) == "a2b":
            return self.nets["gen_a2b"], self.nets["gen_b2a"]
        return self.nets["gen_b2a"], self.nets["gen_a2b"]

    def direction_nets(self, direction: str) -> tuple[str, ...]:
        return ("gen_a2b",) if check_direction(direction) == "a2b" else ("gen_b2a",)

    def check_input_size(self, size: int) -> None:
        generator_check(size, self.cfg.n_blocks, "the input size")

    def translate(self, x: Tensor, direction: str) -> Tensor:
        return self._gens(direction)[0](x)

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Rows: real, fake, cycle (reconstruction through both generators), identity (the generator into the
        source domain applied to the source images, which the identity loss keeps close to them)."""
        gen, back = self._gens(direction)
        fake = gen(x)
        return {"real": x, "fake": fake, "cycle": back(fake), "identity": back(x)}
