"""Activation checkpointing (``train.checkpoint_activations``): memory for time, gradients bit for bit unchanged.

:func:`checkpoint_blocks` wraps the blocks of each network (its child modules that hold layers of their own: residual
blocks, up-sampling stacks, discriminator trunks and heads) in ``torch.utils.checkpoint`` (non-reentrant). Such a
block keeps only its inputs for the backward pass; its inner activations are recomputed when the backward reaches
it. The recomputation repeats the forward's operations on the same values, and non-reentrant checkpointing keeps the
autograd graph of the forward (only its saved tensors come from the recomputation), so every gradient and the order
in which they are accumulated are those of the default path: gradients are bitwise identical on CPU.

What a recomputation must not repeat:

- the spectral-norm power iteration, which updates ``u``/``v`` in place on every training-mode forward: inside a
  checkpointed block each spectral-norm layer records the vectors its forward used (:func:`recorded_vectors`) and the
  recomputation reuses them, so ``u``/``v`` advance exactly once per forward, as in the default path;
- random draws (noise layers): ``torch.utils.checkpoint`` restores the RNG state for the recomputation and puts the
  generator back afterwards, so the draws repeat and the run's random stream is unchanged (exact resume holds);
- BatchNorm running statistics: a recomputation would update them twice, so blocks holding a BatchNorm are not
  wrapped (their sub-blocks without one are).

Outside training (``no_grad``, ``inference_mode``) a wrapped block runs plainly.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

_state = threading.local()  # the recording of the checkpointed block running on this thread, if any


class _Recording:
    """The power-iteration vectors of one call of a checkpointed block, per spectral-norm layer and in call order."""

    def __init__(self) -> None:
        self.vectors: dict[int, list[tuple[Tensor, Tensor]]] = {}
        self.replayed: dict[int, int] = {}
        self.replaying = False


@contextlib.contextmanager
def _active(rec: _Recording, replaying: bool) -> Iterator[None]:
    prev = getattr(_state, "rec", None)
    rec.replaying = replaying
    rec.replayed.clear()
    _state.rec = rec
    try:
        yield
    finally:
        _state.rec = prev


def in_checkpointed_block() -> bool:
    """Whether a checkpointed block's forward (or its recomputation) is running on this thread."""
    return getattr(_state, "rec", None) is not None


def recorded_vectors(layer: nn.Module, iterate: Callable[[], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """``(u, v)`` for a training-mode spectral-norm forward of ``layer``: ``iterate()`` (one power-iteration step)
    outside checkpointed blocks and in their first forward (where the result is recorded); in a recomputation, the
    vectors the forward used, without iterating again."""
    if torch.compiler.is_compiling():
        return iterate()
    rec: _Recording | None = getattr(_state, "rec", None)
    if rec is None:
        return iterate()
    key = id(layer)
    if rec.replaying:
        i = rec.replayed.get(key, 0)
        rec.replayed[key] = i + 1
        return rec.vectors[key][i]
    u, v = iterate()
    rec.vectors.setdefault(key, []).append((u, v))
    return u, v


def _contexts() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
    rec = _Recording()
    return _active(rec, replaying=False), _active(rec, replaying=True)


def _checkpointed(forward: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not torch.is_grad_enabled() or in_checkpointed_block():  # inference, or already inside a block
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, context_fn=_contexts, **kwargs)

    run.__nicegan_checkpointed__ = True  # type: ignore[attr-defined]
    return run


def _stateful(module: nn.Module) -> bool:
    """Whether a recomputation of ``module`` would update state twice (BatchNorm running statistics)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats for m in module.modules())


def _blocks(net: nn.Module) -> Iterator[nn.Module]:
    for child in net.children():
        if not any(True for _ in child.children()) or not any(True for _ in child.parameters()):
            continue  # a single layer (checkpointing it saves nothing) or parameter-free glue
        if _stateful(child):
            yield from _blocks(child)
        else:
            yield child


def checkpoint_blocks(nets: nn.Module) -> int:
    """Checkpoint the blocks of every network in ``nets`` (a model's ``nets`` ModuleDict); returns how many blocks
    were wrapped. Idempotent. The wrapping is per instance (``forward`` attribute), not saved in state dicts."""
    count = 0
    for net in nets.children():
        for block in _blocks(net):
            if not getattr(block.forward, "__nicegan_checkpointed__", False):
                block.forward = _checkpointed(block.forward)
            count += 1
    return count
