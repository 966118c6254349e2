"""Convert official NICE-GAN checkpoints (alpc91/NICE-GAN-pytorch) into nicegan checkpoints.

An official file is a dict with ``gen2B``, ``gen2A``, ``disA``, ``disB`` (state dicts), ``G_optimizer``,
``D_optimizer`` (Adam state dicts over ``gen2B + gen2A`` and ``disA + disB`` parameters) and ``start_iter``. Files
written after the official build-time profiling may carry extra ``total_ops``/``total_params`` entries; they are
dropped. Inside each net our key names and parameter order are the official ones, so weights load directly and
Adam moments are matched by parameter name (checked, not assumed).

The architecture is read off the weights: ``ch`` and ``img_ch`` from the first conv, ``n_res`` from the residual
blocks, ``n_dis`` from the global head's width, light/full from the MLP's first layer (for full models that also
gives ``img_size``; a light model's ``img_size`` cannot be read off and defaults to the official 256).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import torch

from nicegan.configs.schema import given, resolve_config
from nicegan.core.errors import CheckpointError
from nicegan.core.runtime import seed_everything
from nicegan.formats.checkpoint import (
    OFFICIAL_KEYS,
    Checkpoint,
    capture_rng,
    check_optimizer_state,
    check_structure,
    load_nets,
    read_torch_file,
)
from nicegan.models import create_model
from nicegan.training.importers.common import adam_states_by_name
from nicegan.training.optim import build_optimizers

log = logging.getLogger("nicegan")

NET_NAMES = {"gen2B": "gen_a2b", "gen2A": "gen_b2a", "disA": "dis_a", "disB": "dis_b"}
OPTIMIZERS = {"G_optimizer": ("gen", ("gen2B", "gen2A")), "D_optimizer": ("dis", ("disA", "disB"))}
_STRAY = ("total_ops", "total_params")


def _clean(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if not k.endswith(_STRAY)}


def infer_architecture(nets: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Model config fields readable from official state dicts (``img_size`` only for full models)."""
    try:
        first = nets["disA"]["model.1.weight_orig"]
        ch, img_ch = int(first.shape[0]), int(first.shape[1])
        n_res = len({m.group(1) for k in nets["gen2B"] if (m := re.match(r"UpBlock1_(\d+)\.", k))})
        glob_in = int(nets["disA"]["conv1.weight_orig"].shape[1])
        fc_in = int(nets["gen2B"]["FC.0.weight"].shape[1])
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise CheckpointError(f"not an official NICE-GAN state dict: missing or malformed {e}") from None
    if min(ch, img_ch, glob_in, fc_in) < 1 or glob_in % ch:
        raise CheckpointError(f"not an official NICE-GAN state dict: layer widths {ch}, {glob_in}, {fc_in} do not fit "
                              "the architecture")
    n_dis = round(math.log2(glob_in / ch)) + 2
    arch: dict[str, Any] = {"ch": ch, "img_ch": img_ch, "n_res": n_res, "n_dis": n_dis, "light": fc_in == 4 * ch}
    if not arch["light"]:
        side = math.isqrt(fc_in // (4 * ch))
        arch["img_size"] = side * 4
    return arch


def official_param_names(sd: dict[str, torch.Tensor]) -> list[str]:
    """Parameter names in the official ``parameters()`` order: state-dict order minus the spectral-norm buffers."""
    return [k for k in _clean(sd) if not k.endswith(("weight_u", "weight_v"))]


def convert_official(path: str | Path, *, light: bool | None = None, img_size: int | None = None,
                     config: str = "nicegan-light", overrides: list[str] | None = None,
                     data_root: str | None = None) -> Checkpoint:
    """Read an official checkpoint and return the equivalent nicegan checkpoint (optimizer state included)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"official checkpoint not found: {path}")
    raw = read_torch_file(path)
    check_structure(raw, str(path))
    if not isinstance(raw, dict) or not set(raw) >= OFFICIAL_KEYS:
        raise CheckpointError(f"{path} is not an official NICE-GAN checkpoint (expected keys gen2B, gen2A, disA, disB)")
    if not all(isinstance(raw[k], dict) and all(isinstance(v, torch.Tensor) for v in raw[k].values())
               for k in NET_NAMES):
        raise CheckpointError(f"{path}: gen2B, gen2A, disA and disB must be state dicts of tensors")
    nets = {k: _clean(raw[k]) for k in NET_NAMES}
    arch = infer_architecture(nets)
    if light is not None and light != arch["light"]:
        raise CheckpointError(f"{path} holds a {'light' if arch['light'] else 'full'} model, but a "
                              f"{'light' if light else 'full'} one was asked for (light={light})", option="light")
    if "img_size" in arch and img_size is not None and img_size != arch["img_size"]:
        raise CheckpointError(f"{path} is a full model trained at {arch['img_size']} px; img_size={img_size} "
                              "cannot be used with it", option="img_size")
    if arch["light"]:
        if img_size is None:
            log.warning("a light model's image size cannot be read from its weights; assuming the official 256 "
                        "(pass img_size otherwise)", extra={"option": "img_size"})
        arch["img_size"] = img_size or 256
    read_off = {"model.name": "nicegan", **{f"model.{k}": v for k, v in arch.items()}, "data.root": data_root}
    cfg = resolve_config(config, [*given(read_off), *(overrides or [])])

    seed_everything(cfg.train.seed)
    model = create_model("nicegan", cfg.model)
    load_nets(model.nets, {NET_NAMES[k]: v for k, v in nets.items()}, where=str(path), model="nicegan")
    optimizers = build_optimizers(model, cfg.train)
    for off_key, (phase, off_nets) in OPTIMIZERS.items():
        if off_key not in raw:
            log.warning("%s has no %s; the %s optimizer starts fresh", path, off_key, phase)
            continue
        ours = optimizers[phase].state_dict()["param_groups"][0]
        try:
            optimizers[phase].load_state_dict(_map_adam_state(raw[off_key], nets, off_nets, model, phase, ours, path))
            check_optimizer_state(optimizers[phase], f"{path} ({off_key})")
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise CheckpointError(f"{path}: the {off_key} state does not fit the networks "
                                  f"({' '.join(str(e).split())[:150]})") from None
    step = raw.get("start_iter", 0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path}: start_iter must be a non-negative integer, got {str(step)[:40]!r}")
    return Checkpoint(model="nicegan", config=cfg.to_dict(), step=step,
                      nets={k: v.state_dict() for k, v in model.nets.items()},
                      optimizers={k: o.state_dict() for k, o in optimizers.items()}, rng=capture_rng(),
                      extra={"imported_from": str(path)})


def _map_adam_state(state: dict[str, Any], nets: dict[str, dict[str, torch.Tensor]], off_nets: tuple[str, ...],
                    model: Any, phase: str, our_group: dict[str, Any], path: Path) -> dict[str, Any]:
    """Re-key an official Adam state dict onto our optimizer's parameter order, by parameter name.

    Hyper-parameters come from our config (``our_group``); the LR is set from the schedule at every step anyway.
    """
    off_names = [f"{NET_NAMES[n]}.{k}" for n in off_nets for k in official_param_names(nets[n])]
    ours = [f"{n}.{k}" for n in model.phases[phase].nets for k, _ in model.nets[n].named_parameters()]
    if sorted(off_names) != sorted(ours):
        raise CheckpointError(f"{path}: the optimizer's parameters do not match the networks")
    by_name = adam_states_by_name(state, off_names, str(path))
    group = {**our_group, "params": list(range(len(ours)))}
    return {"state": {j: by_name[name] for j, name in enumerate(ours) if name in by_name}, "param_groups": [group]}
