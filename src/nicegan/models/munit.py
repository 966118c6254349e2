"""MUNIT: "Multimodal Unsupervised Image-to-Image Translation".

Huang, Liu, Belongie, Kautz. ECCV 2018. arXiv:1804.04732.
Official code: https://github.com/NVlabs/MUNIT at commit a82e222bc359892bd0f522d7a0f1573f3ec4a485 (networks.py:
AdaINGen, StyleEncoder, ContentEncoder, Decoder, MLP, MsImageDis, LayerNorm, AdaptiveInstanceNorm2d; trainer.py:
MUNIT_Trainer; utils.py: weights_init; configs/edges2shoes_folder.yaml), which this file follows. Parameter counts at
the default configuration equal the official ones (tests/test_models.py): AdaINGen 15,026,187 per domain (style
encoder 2,764,936, content encoder 5,385,856, decoder 5,754,627, MLP 1,120,768), MsImageDis 8,271,171 per domain,
46,594,716 in all.

An image is a content code (shared space, 256 x S/4 x S/4, from the domain's content encoder) and a style code (8
numbers, from the domain's style encoder). A->B decodes A's content code with a *B* style code: drawn from the prior
N(0, I) (multimodal translation, one output per style) or encoded from a reference image of B (example-guided). The
decoder's residual blocks use AdaIN whose per-channel scale and shift come from an MLP of the style code.

Training (official ``MUNIT_Trainer``; D step, then G step, each drawing its own N(0, I) styles ``s_a``, ``s_b``):

* D: LSGAN on 3 scales (``MsImageDis``), real images against ``x_ba = dec_a(c_b, s_a)``, ``x_ab = dec_b(c_a, s_b)``.
* G: ``gan_weight`` (1) x LSGAN on ``x_ba``, ``x_ab``; ``recon_x_weight`` (10) x L1 self-reconstruction with the
  image's own style; ``recon_s_weight`` (1) x L1 between the style re-encoded from the translation and the sampled
  style; ``recon_c_weight`` (1) x L1 between the content re-encoded from the translation and the original content;
  ``recon_x_cyc_weight`` (0 in the edges2shoes/edges2handbags/demo configs, 10 in summer2winter and
  synthia2cityscape) x L1 of the explicit style-augmented cycle (re-encoded content decoded with the image's own
  style).
* Adam lr 1e-4, betas (0.5, 0.999), weight decay 1e-4 for both; StepLR halving every 100k of 1M iterations
  (``train.lr_decay: step``); batch 1. Init: Kaiming normal (fan_in) with zero biases on the generators' conv and linear
  weights, N(0, 0.02) with zero biases on the discriminators'.

Naming map (official -> here): ``trainer.gen_a`` / ``gen_b`` / ``dis_a`` / ``dis_b`` -> the nets of the same names;
inside them the official attribute names and module layout are kept (``enc_style.model.0.conv.weight``,
``enc_content.model.3.model.0.model.0.conv.weight``, ``dec.model.1.norm.gamma``, ``mlp.model.2.fc.weight``,
``cnns.0.0.conv.weight``), so official ``gen_*.pt`` / ``dis_*.pt`` state dicts load after dropping the AdaIN layers'
dummy ``running_mean`` / ``running_var`` buffers (see deviation 2). Config: ``gen.dim`` -> ``dim``, ``gen.mlp_dim`` ->
``mlp_dim``, ``gen.style_dim`` -> ``style_dim``, ``gen.n_downsample`` -> ``n_downsample``, ``gen.n_res`` -> ``n_res``,
``dis.dim`` -> ``dis_dim``, ``dis.n_layer`` -> ``dis_n_layer``, ``dis.num_scales`` -> ``dis_num_scales``, ``gan_w``
-> ``gan_weight``, ``recon_x_w`` -> ``recon_x_weight``, ``recon_s_w`` -> ``recon_s_weight``, ``recon_c_w`` ->
``recon_c_weight``, ``recon_x_cyc_w`` -> ``recon_x_cyc_weight``. The official style encoder's hard-coded 4
down-samplings are ``n_style_downsample``.

Deliberate deviations from the official code:

1. Work that does not change the numbers is skipped: the D step runs only the content encoders and the decoders,
   under ``no_grad`` (the official one also runs the style encoders, whose outputs it discards, with gradients);
   the G step computes a term only when its weight is non-zero (the official code computes the style and content
   reconstructions always and multiplies by the weight).
2. AdaIN is computed functionally: the decoder passes each residual block its slice of the MLP output (official
   order: per AdaIN layer, the first C values are the shift, the next C the scale) instead of assigning
   ``weight``/``bias`` attributes on the modules before each call, which made the generator stateful between
   ``decode`` calls. The normalisation is the same per-instance, biased-variance normalisation with eps 1e-5 (the
   official ``batch_norm`` on a 1 x BC x H x W view, whose running buffers are never read; they are not kept).
3. The custom LayerNorm (per-sample mean and unbiased std over C x H x W, ``(x - mean) / (std + eps)``, gamma
   initialised Uniform[0, 1), beta 0) uses ``reshape`` instead of ``view`` so it runs on channels-last tensors;
   the maths is the official one.
4. The domain-invariant VGG perceptual loss (``vgg_w``, 0 in every config below 512 px, NVlabs/MUNIT#23) is not
   implemented: it needs VGG16 weights the toolkit does not ship, and the official loader is broken (``load_lua``).
5. Small images: the discriminator depth and scales (``dis_n_layer``, ``dis_num_scales``) and the style encoder's
   down-samplings are configurable, with a ConfigError when a reflection-padded conv would see an input smaller
   than 2 x 2 (the official code fails inside PyTorch). The official style code shape B x 8 x 1 x 1 is B x 8 here
   (the MLP flattens it anyway).
6. LR schedule: the official StepLR object is the toolkit's step-based ``train.lr_decay: step`` (``decay_every``
   100000, ``decay_gamma`` 0.5 in the ``munit`` preset): the same learning rates, as a pure function of the step.
7. Style codes at translation time: ``translate(x, direction)`` without a style draws N(0, I) codes from torch's
   global generator (as the official test scripts do); the toolkit's commands pass seeded codes instead
   (``nicegan translate --styles K --style-seed S``). The training sample grids use a fixed bank of styles drawn
   from their own seeded generator (the official trainer's fixed ``display_size`` bank), so saving samples never
   moves the training random stream. ``decode`` without a style (the latent analyses) uses the prior's mean, 0.
8. Mechanics: noise is drawn with ``randn`` on the input's device (the official code hard-codes ``.cuda()``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError, NiceganError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.models.registry import register_model

#: seed of the fixed style bank of the training sample grids (official: a bank drawn once at trainer start)
SAMPLE_STYLE_SEED = 1234


@dataclass
class MUNITConfig(ModelConfig):
    """MUNIT architecture and loss weights (official edges2shoes / edges2handbags config at 256 px)."""

    dim: int = 64  # generator base width (official gen.dim)
    style_dim: int = 8  # length of the style code
    mlp_dim: int = 256  # hidden width of the style MLP
    n_downsample: int = 2  # stride-2 convs of the content encoder (and up-samplings of the decoder)
    n_res: int = 4  # residual blocks of the content encoder and of the decoder
    n_style_downsample: int = 4  # stride-2 convs of the style encoder (hard-coded 4 in the official code)
    dis_dim: int = 64  # discriminator base width (official dis.dim)
    dis_n_layer: int = 4  # stride-2 convs per discriminator scale
    dis_num_scales: int = 3  # image scales judged (each half the previous, AvgPool 3x3 s2)
    gan_weight: float = 1.0  # gan_w
    recon_x_weight: float = 10.0  # recon_x_w: self-reconstruction
    recon_s_weight: float = 1.0  # recon_s_w: style reconstruction
    recon_c_weight: float = 1.0  # recon_c_w: content reconstruction
    recon_x_cyc_weight: float = 0.0  # recon_x_cyc_w: explicit style-augmented cycle (10 in summer2winter)

    tiny = {"img_size": 32, "dim": 4, "mlp_dim": 8, "n_res": 1, "dis_dim": 4, "dis_n_layer": 3}

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the networks cannot be built or run at this size."""
        super().validate()
        for key in ("dim", "style_dim", "mlp_dim", "dis_dim", "dis_n_layer", "dis_num_scales"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("n_downsample", "n_res", "n_style_downsample"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if self.n_style_downsample < 2:
            raise ConfigError(f"model.n_style_downsample must be >= 2 (the style encoder widens twice), got "
                              f"{self.n_style_downsample}")
        if self.n_res > 64 or self.n_downsample > 8 or self.n_style_downsample > 12 or self.dis_num_scales > 8:
            raise ConfigError("model.n_res (<= 64), n_downsample (<= 8), n_style_downsample (<= 12) or "
                              "dis_num_scales (<= 8) is too large")
        if not (self.gan_weight > 0 or self.recon_x_weight > 0 or self.recon_x_cyc_weight > 0):
            raise ConfigError("model.gan_weight, model.recon_x_weight and model.recon_x_cyc_weight are all 0: "
                              "nothing trains the generators' images")
        factor = 2**self.n_downsample
        if self.img_size % factor or self.img_size < max(4, factor):
            raise ConfigError(f"model.img_size must be a positive multiple of {factor} and >= 4 (the content "
                              f"encoder down-samples {self.n_downsample} times), got {self.img_size}")
        _check_strided(self.img_size, self.n_style_downsample, "the style encoder's", "model.n_style_downsample")
        size = self.img_size
        for scale in range(self.dis_num_scales):
            _check_strided(size, self.dis_n_layer, f"discriminator scale {scale + 1} ({size} px)",
                           "model.dis_n_layer or model.dis_num_scales")
            size = -(-size // 2)  # AvgPool2d(3, 2, 1, count_include_pad=False)


def _check_strided(size: int, n: int, what: str, fix: str) -> None:
    """Each reflection-padded 4x4 stride-2 conv needs an input of at least 2 x 2."""
    for _ in range(n):
        if size < 2:
            raise ConfigError(f"{what} {n} stride-2 convs need a larger input than img_size allows; reduce {fix}")
        size //= 2


# --- layers (official networks.py; attribute names kept for the official state-dict keys) ----------------------


class LayerNorm(nn.Module):
    """MUNIT's LayerNorm: per-sample mean and unbiased std over C x H x W, ``(x - mean) / (std + eps)``, then a
    per-channel affine whose gamma starts Uniform[0, 1) (official)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.reshape(x.shape[0], -1)
        shape = (-1, *[1] * (x.dim() - 1))
        x = (x - flat.mean(1).view(shape)) / (flat.std(1).view(shape) + self.eps)
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class Conv2dBlock(nn.Module):
    """Reflection pad, conv (bias), optional norm ("in", "ln" or "adain"), optional activation (official)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, norm: str = "none",
                 activation: str = "relu") -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding)
        self.adain = norm == "adain"
        self.norm: nn.Module | None = {"in": lambda: nn.InstanceNorm2d(out_ch), "ln": lambda: LayerNorm(out_ch),
                                       }.get(norm, lambda: None)()
        self.activation: nn.Module | None = {"relu": lambda: nn.ReLU(inplace=True),
                                             "lrelu": lambda: nn.LeakyReLU(0.2, inplace=True),
                                             "tanh": nn.Tanh}.get(activation, lambda: None)()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: Tensor, adain: Tensor | None = None) -> Tensor:
        """``adain``: B x 2C AdaIN parameters (shift, then scale) for an ``adain`` block."""
        x = self.conv(self.pad(x))
        if self.adain:
            if adain is None:
                raise ValueError("an AdaIN block needs its AdaIN parameters")
            c = x.shape[1]
            shift, scale = adain[:, :c, None, None], adain[:, c:2 * c, None, None]
            x = F.instance_norm(x, eps=1e-5) * scale + shift
        elif self.norm is not None:
            x = self.norm(x)
        return self.activation(x) if self.activation is not None else x


class ResBlock(nn.Module):
    """conv3x3-norm-ReLU, conv3x3-norm, plus the input."""

    def __init__(self, dim: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(Conv2dBlock(dim, dim, 3, 1, 1, norm, "relu"),
                                   Conv2dBlock(dim, dim, 3, 1, 1, norm, "none"))

    def forward(self, x: Tensor, adain: Tensor | None = None) -> Tensor:
        """``adain``: B x 4C parameters of the block's two AdaIN layers, in order."""
        c = self.model[0].conv.out_channels
        first, second = (None, None) if adain is None else (adain[:, :2 * c], adain[:, 2 * c:4 * c])
        return self.model[1](self.model[0](x, first), second) + x


class ResBlocks(nn.Module):
    """``n`` residual blocks (official ResBlocks: the blocks in ``.model``)."""

    def __init__(self, n: int, dim: int, norm: str) -> None:
        super().__init__()
        self.model = nn.Sequential(*[ResBlock(dim, norm) for _ in range(n)])

    def forward(self, x: Tensor, adain: Tensor | None = None) -> Tensor:
        for k, block in enumerate(self.model):
            x = block(x, None if adain is None else adain[:, 4 * k * x.shape[1]:4 * (k + 1) * x.shape[1]])
        return x


class StyleEncoder(nn.Module):
    """conv 7x7, two widening stride-2 convs, (n - 2) more at the same width, global average pool, 1x1 conv."""

    def __init__(self, n_downsample: int, in_ch: int, dim: int, style_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(in_ch, dim, 7, 1, 3)]
        for _ in range(2):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1))
            dim *= 2
        layers += [Conv2dBlock(dim, dim, 4, 2, 1) for _ in range(n_downsample - 2)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Style codes B x style_dim."""
        return self.model(x).flatten(1)


class ContentEncoder(nn.Module):
    """conv 7x7 + IN, ``n_downsample`` widening stride-2 convs + IN, ``n_res`` IN residual blocks."""

    def __init__(self, n_downsample: int, n_res: int, in_ch: int, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(in_ch, dim, 7, 1, 3, "in")]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, "in"))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, "in"))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """AdaIN residual blocks, then (nearest x2 up-sampling, conv 5x5 + LayerNorm + ReLU) per level, conv 7x7 + tanh."""

    def __init__(self, n_upsample: int, n_res: int, dim: int, out_ch: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, "adain")]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2), Conv2dBlock(dim, dim // 2, 5, 1, 2, "ln")]
            dim //= 2
        layers.append(Conv2dBlock(dim, out_ch, 7, 1, 3, "none", "tanh"))
        self.model = nn.Sequential(*layers)

    def forward(self, content: Tensor, adain: Tensor) -> Tensor:
        x = self.model[0](content, adain)
        for layer in self.model[1:]:
            x = layer(x)
        return x


class LinearBlock(nn.Module):
    """Linear (bias) + optional ReLU (official LinearBlock, no norm)."""

    def __init__(self, in_dim: int, out_dim: int, relu: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.activation = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc(x)
        return self.activation(x) if self.activation is not None else x


class MLP(nn.Module):
    """style_dim -> mlp_dim -> mlp_dim -> the decoder's AdaIN parameters (official MLP with n_blk 3)."""

    def __init__(self, in_dim: int, out_dim: int, dim: int) -> None:
        super().__init__()
        self.model = nn.Sequential(LinearBlock(in_dim, dim, True), LinearBlock(dim, dim, True),
                                   LinearBlock(dim, out_dim, False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.flatten(1))


class AdaINGen(nn.Module):
    """One domain's auto-encoder: style encoder, content encoder, AdaIN decoder and the style MLP."""

    def __init__(self, cfg: MUNITConfig) -> None:
        super().__init__()
        self.enc_style = StyleEncoder(cfg.n_style_downsample, cfg.img_ch, cfg.dim, cfg.style_dim)
        self.enc_content = ContentEncoder(cfg.n_downsample, cfg.n_res, cfg.img_ch, cfg.dim)
        self.dec = Decoder(cfg.n_downsample, cfg.n_res, self.enc_content.output_dim, cfg.img_ch)
        # two AdaIN layers (shift and scale, C each) per decoder residual block
        self.mlp = MLP(cfg.style_dim, 4 * cfg.n_res * self.enc_content.output_dim, cfg.mlp_dim)
        for m in self.modules():  # official weights_init('kaiming') on every Conv*/Linear*
            if isinstance(m, (nn.Conv2d, nn.Linear)) and not m.weight.is_meta:  # meta: shape-only builds
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                nn.init.zeros_(m.bias)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(content code, style code)`` of images ``x``."""
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Images from content codes and style codes (B x style_dim)."""
        return self.dec(content, self.mlp(style))


class MsImageDis(nn.Module):
    """Multi-scale LSGAN discriminator: per scale, 4x4 stride-2 convs + LeakyReLU(0.2) (no norm), then 1x1 to a map;
    the next scale sees the input average-pooled by 2."""

    def __init__(self, in_ch: int, dim: int, n_layer: int, num_scales: int) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

        def scale() -> nn.Sequential:
            layers: list[nn.Module] = [Conv2dBlock(in_ch, dim, 4, 2, 1, "none", "lrelu")]
            d = dim
            for _ in range(n_layer - 1):
                layers.append(Conv2dBlock(d, 2 * d, 4, 2, 1, "none", "lrelu"))
                d *= 2
            layers.append(nn.Conv2d(d, 1, 1, 1, 0))
            return nn.Sequential(*layers)

        self.cnns = nn.ModuleList(scale() for _ in range(num_scales))
        for m in self.modules():  # official weights_init('gaussian')
            if isinstance(m, nn.Conv2d) and not m.weight.is_meta:  # meta: shape-only builds (memory checks)
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """One output map per scale, finest first."""
        outs = []
        for k, cnn in enumerate(self.cnns):
            if k:
                x = self.downsample(x)
            outs.append(cnn(x))
        return outs

    def dis_loss(self, fake: Tensor, real: Tensor) -> Tensor:
        """LSGAN, summed over scales: mean(D(fake)^2) + mean((D(real) - 1)^2)."""
        return sum(f.square().mean() + (r - 1).square().mean() for f, r in zip(self(fake), self(real), strict=True))

    def gen_loss(self, fake: Tensor) -> Tensor:
        """LSGAN, summed over scales: mean((D(fake) - 1)^2)."""
        return sum((f - 1).square().mean() for f in self(fake))


def _l1(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).abs().mean()


def _domain(domain: str) -> str:
    if domain not in ("a", "b"):
        raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
    return domain


@register_model("munit")
class MUNIT(TranslationModel):
    """MUNIT: one AdaINGen and one multi-scale LSGAN discriminator per domain; D step, then G step."""

    card = ModelCard(
        title="MUNIT",
        paper="Huang, Liu, Belongie, Kautz: Multimodal Unsupervised Image-to-Image Translation, ECCV 2018",
        paper_url="https://arxiv.org/abs/1804.04732",
        code="NVlabs/MUNIT",
        commit="a82e222",
        parameters=2 * 15_026_187 + 2 * 8_271_171,
        released="edges2shoes",
    )

    config_class = MUNITConfig

    def __init__(self, cfg: MUNITConfig) -> None:
        super().__init__(cfg)
        # Official construction order: gen_a, gen_b, dis_a, dis_b.
        self.nets["gen_a"] = AdaINGen(cfg)
        self.nets["gen_b"] = AdaINGen(cfg)
        self.nets["dis_a"] = MsImageDis(cfg.img_ch, cfg.dis_dim, cfg.dis_n_layer, cfg.dis_num_scales)
        self.nets["dis_b"] = MsImageDis(cfg.img_ch, cfg.dis_dim, cfg.dis_n_layer, cfg.dis_num_scales)
        self.phases = {"dis": Phase(("dis_a", "dis_b"), self.dis_loss),
                       "gen": Phase(("gen_a", "gen_b"), self.gen_loss)}
        self.inference_nets = ("gen_a", "gen_b")
        self.style_dim = cfg.style_dim

    def gen(self, domain: str) -> AdaINGen:
        """The auto-encoder of ``domain`` ("a" or "b")."""
        return self.nets["gen_a" if _domain(domain) == "a" else "gen_b"]

    def _prior(self, n: int, like: Tensor) -> Tensor:
        return torch.randn(n, self.cfg.style_dim, device=like.device, dtype=like.dtype)

    # --- training -----------------------------------------------------------------------------------------------
    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """LSGAN on the real images and on translations with styles drawn from the prior."""
        x_a, x_b = batch["a"], batch["b"]
        s_a, s_b = self._prior(x_a.shape[0], x_a), self._prior(x_b.shape[0], x_b)
        with torch.no_grad():  # only the translations are judged; D's loss never reaches the generators
            x_ba = self.gen("a").decode(self.gen("b").enc_content(x_b), s_a)
            x_ab = self.gen("b").decode(self.gen("a").enc_content(x_a), s_b)
        adv_a = self.nets["dis_a"].dis_loss(x_ba, x_a)
        adv_b = self.nets["dis_b"].dis_loss(x_ab, x_b)
        return self.cfg.gan_weight * (adv_a + adv_b), {"adv_a": adv_a, "adv_b": adv_b}

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Adversarial, self-reconstruction, latent (style and content) reconstruction and optional cycle terms."""
        x_a, x_b = batch["a"], batch["b"]
        w = self.cfg
        gen_a, gen_b = self.gen("a"), self.gen("b")
        s_a, s_b = self._prior(x_a.shape[0], x_a), self._prior(x_b.shape[0], x_b)
        c_a, s_a_prime = gen_a.encode(x_a)
        c_b, s_b_prime = gen_b.encode(x_b)
        x_ba, x_ab = gen_a.decode(c_b, s_a), gen_b.decode(c_a, s_b)
        terms: dict[str, tuple[float, Tensor]] = {}
        if w.recon_x_weight > 0:
            terms["recon_x_a"] = (w.recon_x_weight, _l1(gen_a.decode(c_a, s_a_prime), x_a))
            terms["recon_x_b"] = (w.recon_x_weight, _l1(gen_b.decode(c_b, s_b_prime), x_b))
        if w.recon_s_weight > 0 or w.recon_c_weight > 0 or w.recon_x_cyc_weight > 0:
            c_b_recon, s_a_recon = gen_a.encode(x_ba)
            c_a_recon, s_b_recon = gen_b.encode(x_ab)
            if w.recon_s_weight > 0:
                terms["recon_s_a"] = (w.recon_s_weight, _l1(s_a_recon, s_a))
                terms["recon_s_b"] = (w.recon_s_weight, _l1(s_b_recon, s_b))
            if w.recon_c_weight > 0:
                terms["recon_c_a"] = (w.recon_c_weight, _l1(c_a_recon, c_a))
                terms["recon_c_b"] = (w.recon_c_weight, _l1(c_b_recon, c_b))
            if w.recon_x_cyc_weight > 0:
                terms["cycle_a"] = (w.recon_x_cyc_weight, _l1(gen_a.decode(c_a_recon, s_a_prime), x_a))
                terms["cycle_b"] = (w.recon_x_cyc_weight, _l1(gen_b.decode(c_b_recon, s_b_prime), x_b))
        if w.gan_weight > 0:
            terms["adv_a"] = (w.gan_weight, self.nets["dis_a"].gen_loss(x_ba))
            terms["adv_b"] = (w.gan_weight, self.nets["dis_b"].gen_loss(x_ab))
        loss = sum(weight * value for weight, value in terms.values())
        return loss, {k: v for k, (_, v) in terms.items()}

    # --- inference ----------------------------------------------------------------------------------------------
    def _style_for(self, style: Tensor | None, x: Tensor) -> Tensor:
        if style is None:
            return self._prior(x.shape[0], x)
        style = style.to(device=x.device, dtype=x.dtype)
        style = style[None] if style.dim() == 1 else style.flatten(1)  # (D,), B x D or the official B x D x 1 x 1
        if style.shape[1] != self.cfg.style_dim:
            raise NiceganError(f"this {self.name} model's style codes have {self.cfg.style_dim} numbers, got "
                               f"{style.shape[1]}")
        if style.shape[0] == 1 and x.shape[0] != 1:
            style = style.expand(x.shape[0], -1)
        if style.shape[0] != x.shape[0]:
            raise NiceganError(f"got {style.shape[0]} style codes for {x.shape[0]} images (give one, or one per image)")
        return style

    def translate(self, x: Tensor, direction: str, style: Tensor | None = None) -> Tensor:
        """Decode ``x``'s content code with target-domain style codes ``style`` (B x style_dim, or one code for the
        whole batch; None: drawn from N(0, I) with torch's global generator)."""
        src, tgt = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        return self.gen(tgt).decode(self.gen(src).enc_content(x), self._style_for(style, x))

    def encode_style(self, x: Tensor, domain: str) -> Tensor:
        """Style codes (B x style_dim) of images ``x`` of ``domain``, from that domain's style encoder."""
        return self.gen(domain).enc_style(x)

    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Content codes (B x 256 x S/4 x S/4 at the defaults) of images ``x`` of ``domain``: the shared space."""
        return self.gen(domain).enc_content(x)

    def decode(self, z: Tensor, domain: str, style: Tensor | None = None) -> Tensor:
        """Images of ``domain`` from content codes ``z`` with style codes ``style`` (None: the prior's mean, 0)."""
        style = z.new_zeros(z.shape[0], self.cfg.style_dim) if style is None else self._style_for(style, z)
        return self.gen(domain).decode(z, style)

    def check_input_size(self, size: int) -> None:
        factor = 2**self.cfg.n_downsample
        if size < max(4, factor) or size % factor:
            raise ConfigError(f"MUNIT with n_downsample {self.cfg.n_downsample} needs an input size that is a "
                              f"multiple of {factor} and at least {max(4, factor)}, got {size}")

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Input, self-reconstruction and two translations with a fixed bank of styles (the same every time)."""
        src, tgt = ("a", "b") if check_direction(direction) == "a2b" else ("b", "a")
        gen_src, gen_tgt = self.gen(src), self.gen(tgt)
        content, own_style = gen_src.encode(x)
        bank = torch.randn(2, x.shape[0], self.cfg.style_dim,
                           generator=torch.Generator().manual_seed(SAMPLE_STYLE_SEED)).to(x.device, x.dtype)
        return {"real": x, "recon": gen_src.decode(content, own_style),
                "fake": gen_tgt.decode(content, bank[0]), "fake_style2": gen_tgt.decode(content, bank[1])}
