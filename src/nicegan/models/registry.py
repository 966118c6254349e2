"""The model registry: the only way models are found by name (CLI choices, presets, checkpoints, tests).

It lives inside ``nicegan.models``: importing it imports the package, whose ``__init__`` imports every model
module, each of which registers itself here. So the registry is always complete, with no late import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from nicegan.core.errors import ConfigError

if TYPE_CHECKING:
    from nicegan.models.base import ModelConfig, TranslationModel

_MODELS: dict[str, type[TranslationModel]] = {}


def register_model(name: str) -> Callable[[type[TranslationModel]], type[TranslationModel]]:
    """Class decorator registering a :class:`TranslationModel` subclass under ``name``."""

    def deco(cls: type[TranslationModel]) -> type[TranslationModel]:
        if name in _MODELS and _MODELS[name] is not cls:
            raise RuntimeError(f"model name {name!r} registered twice")
        cls.name = name
        _MODELS[name] = cls
        return cls

    return deco


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_MODELS)


def get_model_class(name: str) -> type[TranslationModel]:
    """The model class registered as ``name``; ConfigError naming the choices if there is none."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, cfg: ModelConfig) -> TranslationModel:
    """Build the model ``name`` from its config dataclass instance.

    The model is first built on the ``meta`` device (no memory), so a config whose weights alone would not fit in
    this machine's memory (``model.ch=1000000``) is refused with the estimate instead of dying in an allocation.
    """
    cls = get_model_class(name)
    have = physical_memory()
    try:
        need = 4 * parameter_count(cls, cfg)  # float32 weights
    except (RuntimeError, TypeError, OverflowError, ValueError) as e:  # a tensor too large to even describe
        detail = " ".join(str(e).split())[:120]
        raise ConfigError(f"the {name} model of this config cannot be built: a weight tensor would exceed any "
                          f"machine's memory ({detail}); reduce model.ch or the depth") from None
    if have and need > have:
        raise ConfigError(f"the {name} model of this config has {need // 4:,} parameters: {need / 2**30:,.1f} GiB for "
                          f"its weights alone (training needs about 4x that), more than this machine's "
                          f"{have / 2**30:.1f} GiB of memory; reduce model.ch or the depth")
    return cls(cfg)


def parameter_count(cls: type[TranslationModel], cfg: ModelConfig) -> int:
    """Parameters (and buffers) of ``cls(cfg)``, counted on the ``meta`` device without allocating them."""
    with torch.device("meta"):
        model = cls(cfg)
    return sum(t.numel() for t in (*model.parameters(), *model.buffers()))


def physical_memory() -> int:
    """Bytes of RAM of this machine (0 if unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0
