"""Load a trained model for inference: from a checkpoint, a run folder or an exported bundle."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nicegan.configs.schema import RunConfig, resolve_config
from nicegan.core.errors import CheckpointError, ConfigError, NiceganError
from nicegan.core.runtime import resolve_device
from nicegan.formats import checkpoint
from nicegan.models import create_model
from nicegan.models.base import TranslationModel


def load_model(checkpoint_path: str | Path,
               device: str | torch.device = "cpu") -> tuple[TranslationModel, RunConfig, int]:
    """Rebuild the model recorded in a checkpoint file, run folder or inference bundle (``nicegan export``) and
    load its translation nets.

    Returns ``(model in eval mode on device, run config, training step)``. A bundle exported for one direction
    gives a model whose ``directions`` holds that direction only: :meth:`TranslationModel.require_direction` says
    so in one line, and any call of a net of the other direction raises the same kind of error.
    """
    from nicegan.formats import bundle

    if bundle.is_bundle(checkpoint_path):
        b = bundle.load(checkpoint_path)
        return model_from_weights(b.config, b.nets, b.step, b.path, device, b.directions, b.model)
    ck = checkpoint.load(checkpoint_path)
    return model_from_weights(ck.config, ck.nets, ck.step, ck.path, device, model_name=ck.model)


#: how much larger than its stored weights a model may be: a bundle stores the translation nets only, and the
#: whole model (discriminators and heads included) is at most 7 times their size and module count in every
#: registered model at its default and tiny sizes; beyond this, the config does not describe these weights
SIZE_FACTOR = 16


class _TooLarge(Exception):
    pass


def check_size(cfg: RunConfig, nets: dict[str, dict[str, Tensor]], where: str) -> None:
    """Refuse a config that describes a model far larger than the weights stored with it (``model.n_res: 1000000``
    would build for minutes, a huge ``model.ch`` would allocate gigabytes) before building it: the model is built
    on the meta device (no memory) and the build stops at the first module or parameter over the budget."""
    from torch.nn.modules import module as nn_module

    tensors = sum(len(state) for state in nets.values())
    if tensors == 0:  # the plainer fault first: nothing to load at all
        raise CheckpointError(f"{where} has no weights for any net")
    numel = sum(t.numel() for state in nets.values() for t in state.values() if isinstance(t, Tensor))
    max_modules, max_numel = SIZE_FACTOR * tensors + 256, SIZE_FACTOR * numel + 1_000_000
    seen = {"modules": 0, "numel": 0}
    me = threading.get_ident()

    def on_module(module: Any, name: str, sub: Any) -> None:
        if threading.get_ident() == me:
            seen["modules"] += 1
            if seen["modules"] > max_modules:
                raise _TooLarge

    def on_parameter(module: Any, name: str, param: Any) -> None:
        if threading.get_ident() == me and param is not None:
            seen["numel"] += param.numel()
            if seen["numel"] > max_numel:
                raise _TooLarge

    hooks = (nn_module.register_module_module_registration_hook(on_module),
             nn_module.register_module_parameter_registration_hook(on_parameter))
    try:
        with torch.device("meta"):
            create_model(cfg.model_name, cfg.model)
    except _TooLarge:
        raise CheckpointError(f"{where} is damaged or hostile: its config describes a {cfg.model_name} model far "
                              f"larger than the {tensors:,} tensors ({numel:,} values) stored with it") from None
    finally:
        for h in hooks:
            h.remove()


def model_from_weights(config: dict[str, Any], nets: dict[str, dict[str, Tensor]], step: int, where: str,
                       device: str | torch.device = "cpu", directions: tuple[str, ...] = ("a2b", "b2a"),
                       model_name: str | None = None) -> tuple[TranslationModel, RunConfig, int]:
    """:func:`load_model` on a record already read: a run config dict and the state dicts of the nets
    ``directions`` needs (whole, or a bundle's ``inference_parts``). Parts left without trained weights (the other
    direction's nets, NICE-GAN's discriminator heads in a bundle) raise a one-line error if they are ever run."""
    try:
        cfg = resolve_config(config)
    except ConfigError as e:
        raise CheckpointError(f"{where} holds a config this nicegan cannot use ({e})") from None
    if model_name is not None and model_name != cfg.model_name:
        raise CheckpointError(f"{where} is damaged: it names the model {model_name!r} but its config is for "
                              f"{cfg.model_name!r}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    check_size(cfg, nets, where)
    model = create_model(cfg.model_name, cfg.model)
    needed = [n for n in model.translation_nets() if any(n in model.direction_nets(d) for d in directions)]
    states = {}
    for n in needed:
        parts, given = model.inference_parts.get(n), nets.get(n)
        if parts and given is not None:  # the parts translation does not run keep their initial values
            given = {**{k: v for k, v in model.nets[n].state_dict().items() if not k.startswith(parts)}, **given}
        if given is not None:
            states[n] = given
    checkpoint.load_nets(model.nets, states, names=needed, where=where, model=cfg.model_name)
    model.directions = tuple(d for d in ("a2b", "b2a") if d in directions)
    other = " and ".join(d for d in ("a2b", "b2a") if d not in directions)
    for n in model.translation_nets():
        loaded = set(nets.get(n, {})) if n in needed else set()
        if loaded >= set(model.nets[n].state_dict()):
            continue  # all of it (a checkpoint's nets)
        if n not in needed:
            why = (f"{where} was exported for {' and '.join(directions)} only: it has no weights for {n} (needed for "
                   f"{other}); export it again for both directions")
        for sub_name, sub in model.nets[n].named_modules():
            keys = [f"{sub_name}.{k}" if sub_name else k for k in sub.state_dict()]
            if not keys or any(k in loaded for k in keys):
                continue
            if n in needed:
                why = (f"{where} has no weights for {n}.{sub_name}: an inference bundle holds only what translation "
                       "runs; use the run's training checkpoint for this")

            def refuse(module: torch.nn.Module, args: Any, why: str = why) -> None:
                raise NiceganError(why)

            sub.register_forward_pre_hook(refuse)
    return model.to(dev).eval(), cfg, step
