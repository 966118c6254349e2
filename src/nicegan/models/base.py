"""The model contract: models own the maths, the training loop owns the mechanics.

A model is an ``nn.Module`` whose networks live in ``self.nets`` (an ``nn.ModuleDict``). It declares its training
phases, in update order, each with the networks that phase's optimizer updates; the loop freezes everything else
for that phase (gradients still flow *through* frozen networks into the phase's ones), zeroes, backpropagates and
steps. Nothing here knows about optimizers, checkpoints, devices or logging.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from nicegan.errors import NiceganError

DIRECTIONS = ("a2b", "b2a")


class TranslationModel(nn.Module):
    """Base class of every registered image-to-image translation model.

    Subclasses set the class attributes below, build ``self.nets`` in ``__init__(cfg)`` and implement
    :meth:`compute_loss` and :meth:`translate`.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type]
    #: phase name -> names of the nets whose parameters that phase updates; dict order is the update order.
    phases: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: nets needed to translate (what inference loads); the rest is training-only.
    generator_names: ClassVar[tuple[str, ...]] = ()
    #: True if :meth:`translate` optimises something (CoGAN's latent inversion): callers then use ``no_grad``, not
    #: ``inference_mode``, and the model enables gradients where it needs them.
    translation_needs_grad: ClassVar[bool] = False
    #: True if :meth:`heatmap` returns attention maps (CAM models)
    has_heatmap: ClassVar[bool] = False

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.cfg = cfg
        self.nets = nn.ModuleDict()
        #: facts about the last :meth:`translate` call worth reporting (e.g. an inversion's reconstruction error)
        self.translate_diagnostics: dict[str, float] = {}

    @property
    def uses_labels(self) -> bool:
        """True if training batches must carry ``a_label``/``b_label`` (domain-adaptation modes)."""
        return False

    def extra_state(self) -> dict[str, Any]:
        """Training state outside the nets' state dicts (e.g. an image pool), as plain tensors and containers.

        Saved in every checkpoint so that a resumed run continues exactly.
        """
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    # --- training -------------------------------------------------------------------------------------------
    def compute_loss(self, phase: str, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss to minimise in ``phase`` and a flat dict of detached scalar terms named ``"<phase>/<term>"``."""
        raise NotImplementedError

    def after_phase(self, phase: str) -> None:
        """Called after the optimizer step of ``phase`` (for parameter constraints such as rho clipping)."""

    def phase_parameters(self, phase: str) -> list[nn.Parameter]:
        """Parameters updated in ``phase``, in a stable order (the order of the phase's nets)."""
        return [p for name in self.phases[phase] for p in self.nets[name].parameters()]

    # --- inference ------------------------------------------------------------------------------------------
    def translate(self, x: Tensor, direction: str) -> Tensor:
        """Translate images ``x`` (B x C x S x S in [-1, 1]) in ``direction`` (``"a2b"`` or ``"b2a"``)."""
        raise NotImplementedError

    def encode(self, x: Tensor, domain: str) -> Tensor:
        """Latent code of images ``x`` of ``domain`` ("a" or "b"), for models with a shared latent space."""
        raise NiceganError(f"the {self.name} model has no latent encoder")

    def decode(self, z: Tensor, domain: str) -> Tensor:
        """Images of ``domain`` decoded from latent codes ``z`` (models with a shared latent space)."""
        raise NiceganError(f"the {self.name} model has no latent decoder")

    def accumulate_diagnostics(self, means: dict[str, float], done: int, n: int) -> None:
        """Fold the last :meth:`translate` call's ``translate_diagnostics`` (``n`` images) into ``means``, the
        image-weighted running means over the ``done`` images translated before it."""
        for key, value in self.translate_diagnostics.items():
            means[key] = (means.get(key, 0.0) * done + value * n) / (done + n)

    def check_input_size(self, size: int) -> None:
        """Raise :class:`~nicegan.errors.ConfigError` if translation cannot run on ``size`` x ``size`` inputs."""

    def heatmap(self, x: Tensor, direction: str) -> Tensor | None:
        """Attention heatmap (B x 1 x h x w) that drives the translation of ``x``, or None if the model has none."""
        return None

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Rows of a sample grid for source images ``x``; images in [-1, 1], heatmaps B x 1 x h x w."""
        return {"real": x, "fake": self.translate(x, direction)}

    @torch.no_grad()
    def num_parameters(self, net: str | None = None) -> int:
        """Number of parameters of one net, or of all nets."""
        module = self.nets if net is None else self.nets[net]
        return sum(p.numel() for p in module.parameters())


def check_direction(direction: str) -> str:
    """Return ``direction`` if it is ``"a2b"`` or ``"b2a"``, else raise ``ValueError``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return direction
