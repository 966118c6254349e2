"""The model contract: models own the maths, the training step owns the mechanics.

A model is an ``nn.Module`` whose networks live in ``self.nets`` (an ``nn.ModuleDict``). In ``__init__`` it declares
its training phases, in update order: each :class:`Phase` names the nets that phase's optimizer updates and the
function computing its loss. The training step (:func:`nicegan.training.step.train_step`) freezes every other net
for that phase (gradients still flow *through* frozen nets into the phase's ones), prefixes the loss terms with the
phase name, adds ``<phase>/total``, detaches them for logging, backpropagates and steps. Nothing here knows about
optimizers, checkpoints, devices or logging.

What a model can do beyond translating is a capability, checked with ``isinstance`` against the small runtime
protocols below: :class:`HeatmapModel` (CAM attention maps), :class:`LatentModel` (a latent code per domain),
:class:`ClassifierModel` (a class head; its training batches carry ``a_label``) and :class:`StyleModel` (multimodal
translation with style codes).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from nicegan.core.errors import ConfigError, NiceganError

DIRECTIONS = ("a2b", "b2a")

#: loss of one phase on a batch: the scalar to minimise and its named terms (without the phase prefix)
LossFn = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]


@dataclass
class ModelConfig:
    """Fields every model config has; each model's config dataclass extends it with its own."""

    img_size: int = 256  # training (and default translation) size, square
    img_ch: int = 3  # channels the networks see (the toolkit's images are RGB)

    #: the smallest overrides (``model.key=value``) that still build the real architecture: tests and smoke runs
    tiny: ClassVar[dict[str, Any]] = {}
    #: ``img_ch`` values with which the model still takes and gives RGB images (the toolkit reads every image as
    #: RGB): 3 by default; a model that maps RGB to its channels and back itself may declare more
    rgb_img_ch: ClassVar[tuple[int, ...]] = (3,)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first value the networks cannot be built with.

        The base checks hold for every model: sizes >= 1, every number finite, and loss weights (fields named
        ``*weight*`` or ``lambda_*``) not negative. Subclasses add their own after calling it.
        """
        for key in ("img_size", "img_ch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.img_size > 4096:  # the papers train at 256; activations grow with the square of the side
            raise ConfigError(f"model.img_size must be at most 4096, got {self.img_size}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"model.{f.name} must be a finite number, got {value}")
            if (isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
                    and ("weight" in f.name or f.name.startswith("lambda_"))):
                raise ConfigError(f"model.{f.name} is a loss weight and must be >= 0, got {value}")


class Phase(NamedTuple):
    """One optimisation phase of a training step."""

    nets: tuple[str, ...]  # the nets this phase's optimizer updates (in parameter order)
    loss: LossFn
    after: Callable[[], None] | None = None  # called after the optimizer step (e.g. U-GAT-IT's rho clipping)
    #: nets of which this phase updates only a part: net -> the parameter-name prefixes of that part (NICE-GAN's
    #: ``encoder_updates`` ablation moves the encoder inside a discriminator between phases); other nets: all
    parts: Mapping[str, tuple[str, ...]] | None = None
    #: name of an optimizer shared with other phases (one Adam over the union of their parameters, so one set of
    #: moments, as official codes that step a per-network optimizer from two losses: DRIT); None: its own
    optimizer: str | None = None
    #: this phase's learning rate relative to ``train.lr`` (the same for every phase sharing an optimizer)
    lr_scale: float = 1.0
    #: clip the phase's gradient norm to this before its optimizer step; None: no clipping
    clip_grad_norm: float | None = None


@dataclass(frozen=True)
class ModelCard:
    """What a model is, as data: read by ``nicegan models``, the docs' tests and the parameter-count test, so a new
    model is its file plus a preset."""

    title: str  #: the method's name as its paper writes it
    paper: str  #: authors, title, venue and year
    paper_url: str
    code: str  #: the official repository (owner/name) this file follows
    commit: str  #: the official commit or branch checked against
    parameters: int  #: total parameters at the default configuration: the official count
    released: str  #: the trained weights the official authors released (docs/released-models.md)


class TranslationModel(nn.Module):
    """Base class of every registered image-to-image translation model.

    Subclasses set ``config_class``, build ``self.nets`` and ``self.phases`` in ``__init__(cfg)``, set
    ``self.inference_nets`` when translation needs more than the default, and implement :meth:`translate`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: paper, official code, expected parameter count, released weights (every registered model declares one)
    card: ClassVar[ModelCard | None] = None
    #: True if :meth:`translate` optimises something (CoGAN's latent inversion): callers then use ``no_grad``, not
    #: ``inference_mode``, and the model enables gradients where it needs them.
    translation_needs_grad: ClassVar[bool] = False

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.nets = nn.ModuleDict()
        #: phase name -> :class:`Phase`; dict order is the update order
        self.phases: dict[str, Phase] = {}
        #: the nets translation needs (what inference loads and exports); set by models that need fewer than all
        self.inference_nets: tuple[str, ...] = ()
        #: nets of which translation runs only some parts: net -> the state-dict key prefixes of those parts (NICE-GAN's
        #: discriminators, whose encoder translates and whose heads only judge); inference bundles keep only those
        self.inference_parts: dict[str, tuple[str, ...]] = {}
        #: the directions this instance holds trained weights for: both, unless it was loaded from an inference
        #: bundle exported for one direction (``nicegan export --direction``); see :meth:`require_direction`
        self.directions: tuple[str, ...] = DIRECTIONS
        #: facts about the last :meth:`translate` call worth reporting (e.g. an inversion's reconstruction error)
        self.translate_diagnostics: dict[str, float] = {}

    def extra_state(self) -> dict[str, Any]:
        """Training state outside the nets' state dicts (e.g. an image pool), as plain tensors and containers.

        Saved in every checkpoint so that a resumed run continues exactly.
        """
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def phase_parameters(self, phase: str) -> list[nn.Parameter]:
        """Parameters updated in ``phase``, in a stable order (the order of the phase's nets), narrowed to the
        phase's ``parts`` where it names any."""
        spec = self.phases[phase]
        parts = spec.parts or {}
        return [p for name in spec.nets for key, p in self.nets[name].named_parameters()
                if name not in parts or key.startswith(parts[name])]

    def set_trainable(self, phase: str) -> None:
        """Make exactly ``phase``'s parameters require gradients (gradients still flow through the others)."""
        self.nets.requires_grad_(False)
        for p in self.phase_parameters(phase):
            p.requires_grad_(True)

    def translate(self, x: Tensor, direction: str) -> Tensor:
        """Translate images ``x`` (B x C x S x S in [-1, 1]) in ``direction`` (``"a2b"`` or ``"b2a"``)."""
        raise NotImplementedError

    def check_input_size(self, size: int) -> None:
        """Raise :class:`~nicegan.core.errors.ConfigError` if translation cannot run on ``size`` x ``size`` inputs."""

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Rows of a sample grid for source images ``x``; images in [-1, 1], heatmaps B x 1 x h x w."""
        return {"real": x, "fake": self.translate(x, direction)}

    def accumulate_diagnostics(self, means: dict[str, float], done: int, n: int) -> None:
        """Fold the last :meth:`translate` call's ``translate_diagnostics`` (``n`` images) into ``means``, the
        image-weighted running means over the ``done`` images translated before it."""
        for key, value in self.translate_diagnostics.items():
            means[key] = (means.get(key, 0.0) * done + value * n) / (done + n)

    @torch.no_grad()
    def num_parameters(self, net: str | None = None) -> int:
        """Number of parameters of one net, or of all nets."""
        module = self.nets if net is None else self.nets[net]
        return sum(p.numel() for p in module.parameters())

    def translation_nets(self) -> tuple[str, ...]:
        """The nets translation needs: ``inference_nets``, or every net if the model did not narrow it."""
        return self.inference_nets or tuple(self.nets)

    def direction_nets(self, direction: str) -> tuple[str, ...]:
        """The nets translating (and the heatmap) in ``direction`` needs: what a one-direction bundle holds.

        Default: every translation net. Models with nets per direction (a generator per direction, NICE-GAN's
        encoder per domain) override it; the two directions together must cover :meth:`translation_nets`.
        """
        check_direction(direction)
        return self.translation_nets()

    def inference_state(self, net: str) -> dict[str, Tensor]:
        """The part of ``net``'s state dict that translation uses (all of it unless ``inference_parts`` says)."""
        state = self.nets[net].state_dict()
        parts = self.inference_parts.get(net)
        return state if parts is None else {k: v for k, v in state.items() if k.startswith(parts)}

    def require_direction(self, direction: str) -> str:
        """Return ``direction`` if this instance can translate it; a one-line :class:`NiceganError` if it was
        loaded from a bundle exported for the other direction only."""
        check_direction(direction)
        if direction not in self.directions:
            raise NiceganError(f"this {self.name} model was exported for {' and '.join(self.directions)} only and "
                               f"cannot translate {direction}: export it again for {direction} or for both directions")
        return direction


# --- capabilities ------------------------------------------------------------------------------------------------


@runtime_checkable
class HeatmapModel(Protocol):
    """A model whose translation is driven by an attention map (the CAM models)."""

    def heatmap(self, x: Tensor, direction: str) -> Tensor:
        """Attention heatmap (B x 1 x h x w) that drives the translation of ``x``."""
        ...


@runtime_checkable
class LatentModel(Protocol):
    """A model with a latent code per domain (encoders and decoders), for the latent analyses."""

    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Latent codes of images ``x`` of ``domain`` (``"a"`` or ``"b"``)."""
        ...

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` decoded from latent codes ``z``."""
        ...


@runtime_checkable
class ClassifierModel(Protocol):
    """A model with a class head trained on labelled domain A (domain adaptation): its batches carry labels."""

    def classify(self, x: Tensor, domain: str) -> Tensor:
        """Class logits (B x classes) of images ``x`` of ``domain``."""
        ...


@runtime_checkable
class StyleModel(Protocol):
    """A multimodal model: a translation is a content code plus a style code of the target domain."""

    style_dim: int

    def translate(self, x: Tensor, direction: str, style: Tensor | None = None) -> Tensor:
        """Translate ``x`` with style codes ``style`` (B x style_dim; None: drawn from the prior)."""
        ...

    def encode_style(self, x: Tensor, domain: str) -> Tensor:
        """Style codes (B x style_dim) of images ``x`` of ``domain`` (example-guided translation)."""
        ...


def check_direction(direction: str) -> str:
    """Return ``direction`` if it is ``"a2b"`` or ``"b2a"``, else raise ``ValueError``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction
