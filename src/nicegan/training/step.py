"""One training step: every phase of a model in order. The loop, the golden test against the official code, the
contract tests and the benchmark all call this function, so the code users run is the code the oracle checks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from nicegan.models.base import TranslationModel

#: called with (phase, its detached logs) before the backward pass; raises to stop (the loop's NaN guard)
CheckFn = Callable[[str, dict[str, Tensor]], None]
#: called with a phase's parameters after the backward pass (the loop's gradient averaging over ranks)
GradFn = Callable[[list[torch.nn.Parameter]], None]


def train_step(model: TranslationModel, optimizers: dict[str, torch.optim.Optimizer], batch: dict[str, Tensor], *,
               scalers: dict[str, Any] | None = None,
               autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
               check: CheckFn | None = None, reduce_grads: GradFn | None = None) -> dict[str, Tensor]:
    """Run every phase of ``model`` on ``batch``; returns the phases' detached loss terms.

    For each phase, in order: only the phase's parameters are trainable (gradients still flow *through* the frozen
    ones), its loss runs under ``autocast``, its terms are named ``<phase>/<term>`` with ``<phase>/total`` added,
    ``check`` sees them, then backward (through the phase's fp16 gradient scaler, if any), ``reduce_grads``, the
    phase's gradient-norm clipping (if it has one), the step of its optimizer (``optimizers[phase.optimizer or
    name]``: phases may share one), the gradients are freed (less memory in the next phase) and the phase's
    ``after`` hook runs.
    """
    out: dict[str, Tensor] = {}
    for name, phase in model.phases.items():
        model.set_trainable(name)
        with autocast():
            loss, terms = phase.loss(batch)
        logs = {f"{name}/{k}": v.detach() for k, v in terms.items()}
        logs[f"{name}/total"] = loss.detach()
        if check is not None:
            check(name, logs)
        opt, scaler = optimizers[phase.optimizer or name], (scalers or {}).get(name)
        (scaler.scale(loss) if scaler else loss).backward()
        if reduce_grads is not None:
            reduce_grads(model.phase_parameters(name))
        if phase.clip_grad_norm is not None:
            if scaler:
                scaler.unscale_(opt)  # clip the true gradients, not the loss-scaled ones
            torch.nn.utils.clip_grad_norm_(model.phase_parameters(name), phase.clip_grad_norm)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        if phase.after is not None:
            phase.after()
        out.update(logs)
    return out
