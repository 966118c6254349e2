"""``torch.compile`` of a model's networks (``--compile``): the one place that says how, for training, translation
and the benchmarks alike.

Every network is compiled on its own (``nn.Module.compile``: its ``forward``), so a network called several times per
step (NICE-GAN's generators six times) is compiled once per kind of call (grad or no grad, inputs that need gradients
or not: two to three graphs per network), and a state dict keeps its plain keys. What makes this work:

- the spectral-norm power iteration is traced with the layer (no graph break per layer; before, Dynamo recompiled
  the normalisation for every weight shape, hit its recompile limit and ran the rest eagerly), and under compilation
  it rebinds ``u``/``v`` instead of updating them in place (:mod:`nicegan.nn.spectral`);
- on the CPU, Inductor's layout optimisation is off: it converts the convolutions to channels-last, which this
  toolkit measured slower on CPUs (docs/performance.md), and pays for the conversions besides;
- compiled kernels are cached on disk in the toolkit's cache (``<cache>/inductor``, :func:`user_cache_dir`) unless
  ``TORCHINDUCTOR_CACHE_DIR`` says otherwise, so a second run with the same networks skips most of the compile.

Numbers change in the last bits (fused kernels sum in another order), not in meaning: tested against the default
path over 20 training steps, and exact resume holds within compiled runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from torch import nn

from nicegan.core.errors import ConfigError
from nicegan.core.files import user_cache_dir
from nicegan.core.process import cpu_compiler

#: Inductor settings per device type (see the module docstring)
INDUCTOR_OPTIONS: dict[str, dict[str, object]] = {"cpu": {"layout_optimization": False}}


def inductor_cache_dir() -> str:
    """Where Inductor caches compiled kernels (this toolkit's default, or ``TORCHINDUCTOR_CACHE_DIR``)."""
    return os.environ.get("TORCHINDUCTOR_CACHE_DIR") or str(user_cache_dir() / "inductor")


def use_disk_cache() -> str:
    """Point Inductor's kernel cache at the toolkit's cache folder unless the user chose one; returns the folder."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder = inductor_cache_dir()
    return folder


def check_compilable(device: torch.device, backend: str = "inductor") -> None:
    """Refuse in one line, before any step, what would otherwise fail deep inside the first compile."""
    if backend == "inductor" and device.type == "cpu" and cpu_compiler() is None:
        raise ConfigError("compile on the CPU needs a C++ compiler (g++ or clang++) and none was found: install one "
                          "(e.g. apt-get install g++) or turn compile off (train.compile=false)", option="compile")


def _prepare(device: torch.device, backend: str) -> dict[str, object] | None:
    """Checks and settings every compile here shares: the compiler's presence, the disk cache, the options."""
    check_compilable(device, backend)
    if backend != "inductor":
        return None
    use_disk_cache()
    return INDUCTOR_OPTIONS.get(device.type)


def compile_nets(nets: Iterable[nn.Module], device: torch.device, backend: str = "inductor") -> None:
    """Compile each network's ``forward`` in place (lazily: the compile happens at each network's first calls)."""
    options = _prepare(device, backend)
    for net in nets:
        net.compile(backend=backend, options=options)
        for name in getattr(net, "compiled_methods", ()):  # entry points other than forward (an encoder's encode)
            setattr(net, name, torch.compile(getattr(net, name), backend=backend, options=options))


def compile_translation(model: nn.Module, device: torch.device, backend: str = "inductor") -> None:
    """Compile ``model.translate`` (``translate --compile``): the whole translation of a batch, encoder methods
    included, as one graph per input shape (the first batch of each new shape compiles). Training is unaffected:
    only this instance's ``translate`` is replaced."""
    options = _prepare(device, backend)
    model.translate = torch.compile(model.translate, backend=backend, options=options)
