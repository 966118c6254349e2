"""The model registry: the only way models are found by name (CLI choices, presets, checkpoints, tests).

It lives inside ``nicegan.models``: importing it imports the package, whose ``__init__`` imports every model
module, each of which registers itself here. So the registry is always complete, with no late import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nicegan.errors import ConfigError

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
    """Build the model ``name`` from its config dataclass instance."""
    return get_model_class(name)(cfg)
