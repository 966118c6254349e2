"""TEMPLATE: copy this file to start a new model. It is complete and runs, but is not registered (its decorator is
commented out and ``models/__init__.py`` does not import it); tests/test_models.py checks that it keeps working.

Header of a real model file: the paper (authors, venue, arXiv id), the official code it follows (URL and commit),
what was checked against it (parameter counts, golden outputs), the naming map from the official attribute names to
ours, and a numbered list of every deliberate deviation from the official code, each with its reason.

This example: a least-squares GAN with one small convolutional generator per direction and one discriminator per
domain, plus an L1 cycle loss (a CycleGAN in miniature).

Adding a model (docs/overview.md, "How to add a model"):
1. Copy this file to ``models/<name>.py``; write the config, the networks and the losses.
2. Uncomment ``@register_model("<name>")`` and add ``<name>`` to the import list in ``models/__init__.py``.
3. Add a preset ``configs/presets/<name>.yaml`` (the paper's setting) and declare ``tiny`` on the config.
4. Fill the class's ``card`` (paper, official code and commit, the official parameter count at the default
   configuration, released weights) and add the model's row to the README's model table.
The registry-driven tests (shapes, phase isolation, exact resume, the card's parameter count, ...), the CLI,
checkpoints, evaluation and ``nicegan models`` then cover the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from nicegan.core.errors import ConfigError
from nicegan.models.base import ModelCard, ModelConfig, Phase, TranslationModel, check_direction
from nicegan.nn.losses import mse_to

# from nicegan.models.registry import register_model


@dataclass
class TemplateConfig(ModelConfig):
    """Architecture and loss weights; every field is settable as ``model.<field>`` in presets and ``--set``."""

    ch: int = 32  # width of the generators and discriminators
    adv_weight: float = 1.0
    cycle_weight: float = 10.0

    # The smallest configuration that still builds the real architecture (tests and smoke runs).
    tiny = {"img_size": 32, "ch": 4}

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first value the networks cannot be built with."""
        super().validate()
        if self.ch < 1:
            raise ConfigError(f"model.ch must be >= 1, got {self.ch}")
        for key in ("adv_weight", "cycle_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key} must be >= 0, got {getattr(self, key)}")


def _generator(img_ch: int, ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(img_ch, ch, 3, padding=1), nn.ReLU(True), nn.Conv2d(ch, img_ch, 3, padding=1),
                         nn.Tanh())


def _discriminator(img_ch: int, ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(img_ch, ch, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(ch, 1, 4, 2, 1))


# @register_model("template")
class TemplateModel(TranslationModel):
    """Two generators (``gen_a2b``, ``gen_b2a``), two discriminators (``dis_a``, ``dis_b``); D step, then G step."""

    config_class = TemplateConfig
    # What the model is, as data (nicegan models, the tests and the README table read it); a real model fills it in.
    card = ModelCard(title="Template", paper="(the paper: authors, title, venue, year)", paper_url="https://arxiv.org",
                     code="(owner/official-repository)", commit="(commit)", parameters=2 * 1_763 + 2 * 2_081,
                     released="(what the authors released)")

    def __init__(self, cfg: TemplateConfig) -> None:
        super().__init__(cfg)  # validates cfg, creates self.nets
        for name in ("gen_a2b", "gen_b2a"):
            self.nets[name] = _generator(cfg.img_ch, cfg.ch)
        for name in ("dis_a", "dis_b"):
            self.nets[name] = _discriminator(cfg.img_ch, cfg.ch)
        # Update order, the nets each phase's optimizer owns, and the loss of each phase.
        self.phases = {"dis": Phase(("dis_a", "dis_b"), self.dis_loss),
                       "gen": Phase(("gen_a2b", "gen_b2a"), self.gen_loss)}
        self.inference_nets = ("gen_a2b", "gen_b2a")  # what translate needs (inference loads only these)

    def dis_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """LSGAN: real images to 1, translations to 0. Terms are named without the phase; the step adds it."""
        real_a, real_b = batch["a"], batch["b"]
        fake_b, fake_a = self.nets["gen_a2b"](real_a).detach(), self.nets["gen_b2a"](real_b).detach()
        adv_a = mse_to(self.nets["dis_a"](real_a), 1.0) + mse_to(self.nets["dis_a"](fake_a), 0.0)
        adv_b = mse_to(self.nets["dis_b"](real_b), 1.0) + mse_to(self.nets["dis_b"](fake_b), 0.0)
        return self.cfg.adv_weight * (adv_a + adv_b), {"adv_a": adv_a, "adv_b": adv_b}

    def gen_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Fool the (frozen) discriminators and come back through the other generator."""
        real_a, real_b = batch["a"], batch["b"]
        fake_b, fake_a = self.nets["gen_a2b"](real_a), self.nets["gen_b2a"](real_b)
        adv_a, adv_b = mse_to(self.nets["dis_a"](fake_a), 1.0), mse_to(self.nets["dis_b"](fake_b), 1.0)
        cycle_a = F.l1_loss(self.nets["gen_b2a"](fake_b), real_a)
        cycle_b = F.l1_loss(self.nets["gen_a2b"](fake_a), real_b)
        w = self.cfg
        loss = w.adv_weight * (adv_a + adv_b) + w.cycle_weight * (cycle_a + cycle_b)
        return loss, {"adv_a": adv_a, "adv_b": adv_b, "cycle_a": cycle_a, "cycle_b": cycle_b}

    def translate(self, x: Tensor, direction: str) -> Tensor:
        return self.nets["gen_a2b" if check_direction(direction) == "a2b" else "gen_b2a"](x)

    # --- optional hooks: the defaults in models/base.py are shown here so a new model sees what it may override ---

    def direction_nets(self, direction: str) -> tuple[str, ...]:
        """The nets one direction needs (what a one-direction bundle keeps): one generator here."""
        return ("gen_a2b",) if check_direction(direction) == "a2b" else ("gen_b2a",)

    def check_input_size(self, size: int) -> None:
        """Refuse, in one line, an input size the networks cannot run (two stride-2 convs here need >= 4 px)."""
        if size < 4:
            raise ConfigError(f"the template model needs images of at least 4 px, got {size}")

    def visuals(self, x: Tensor, direction: str) -> dict[str, Tensor]:
        """Rows of the training samples grid: the source, its translation and the way back."""
        fake = self.translate(x, direction)
        return {"real": x, "fake": fake, "cycle": self.translate(fake, "b2a" if direction == "a2b" else "a2b")}

    def extra_state(self) -> dict[str, Any]:
        """Training state outside the nets (CycleGAN's image pools are the real example); saved in checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`extra_state` on resume."""
