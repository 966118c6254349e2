"""What every official-format importer shares: the record a format produces, file reading, and small helpers.

A format module turns the files an official code base writes into an :class:`Imported` record (our net names, the
official state dicts under them, the official Adam states with the nets they cover, the step, and what was assumed).
:mod:`nicegan.training.importers.driver` builds the model from it, checks that the weights describe it, and writes a
run folder or a bundle. Formats hold file layouts and key maps only; they never build models or write files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from nicegan.core.errors import CheckpointError
from nicegan.formats.checkpoint import check_structure, read_torch_file

StateDict = dict[str, Tensor]


@dataclass
class Imported:
    """An official checkpoint, re-expressed in the toolkit's terms (still the official weights and key names)."""

    model: str  #: registry name of our model
    preset: str  #: the config preset its training settings start from
    settings: dict[str, Any]  #: ``"model.<field>": value`` read off the weights (or the official default, noted)
    nets: dict[str, StateDict]  #: our net name -> state dict with the official keys
    step: int = 0
    #: our optimizer key -> [(official optimizer state dict, our nets it covers, in the official parameter order)]
    optimizers: dict[str, list[tuple[Any, tuple[str, ...]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  #: what was assumed, dropped or left fresh (printed)
    files: list[str] = field(default_factory=list)  #: the files read
    #: keys of each net to take from our fresh model instead (state the official files do not carry)
    fresh_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class OfficialFormat:
    """One official code base's file layout: how to recognise its files and how to read them."""

    name: str  #: the ``--format`` name
    code: str  #: the official repository it comes from, for messages and docs
    #: ``files -> None`` if they are this format's, else a short reason (for ``--format NAME`` errors)
    mismatch: Callable[[Mapping[Path, Any]], str | None]
    convert: Callable[[Mapping[Path, Any], dict[str, Any]], Imported]


def read_files(paths: list[Path]) -> dict[Path, Any]:
    """Each file through ``torch.load(weights_only=True)`` with one-line errors; folders are not expanded here."""
    out: dict[Path, Any] = {}
    for p in paths:
        raw = read_torch_file(p)
        check_structure(raw, str(p))
        out[p] = raw
    return out


def is_state_dict(x: Any) -> bool:
    """A non-empty mapping of string keys to tensors (what ``nn.Module.state_dict()`` returns)."""
    return (isinstance(x, dict) and bool(x) and all(isinstance(k, str) for k in x)
            and all(isinstance(v, Tensor) for v in x.values()))


def strip_prefix(sd: StateDict, prefix: str = "module.") -> StateDict:
    """Keys without a ``DataParallel`` prefix (when every key has it)."""
    if sd and all(k.startswith(prefix) for k in sd):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return dict(sd)


def count_indices(sd: Mapping[str, Any], pattern: str) -> int:
    """How many distinct values the first group of ``pattern`` takes over the keys (e.g. residual blocks)."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def shape(sd: Mapping[str, Tensor], key: str, where: str, what: str) -> tuple[int, ...]:
    """The shape of ``sd[key]``, or a one-line error saying which official file lacks it."""
    t = sd.get(key)
    if not isinstance(t, Tensor):
        raise CheckpointError(f"{where}: not {what}: it has no {key!r}")
    return tuple(int(n) for n in t.shape)


def step_from_name(path: Path, pattern: str) -> int | None:
    """The iteration number in a file name (``gen_00010000.pt`` -> 10000), None when the name has none."""
    m = re.search(pattern, path.name)
    return int(m.group(1)) if m else None


def files_named(files: Mapping[Path, Any], pattern: str) -> list[Path]:
    """The files whose name matches ``pattern`` (a regular expression matched against the whole name)."""
    rx = re.compile(pattern)
    return [p for p in files if rx.fullmatch(p.name)]


def finite_step(value: Any, where: str) -> int:
    """An official iteration counter as a step: a non-negative integer (a float epoch count is floored)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise CheckpointError(f"{where}: the iteration counter must be a non-negative number, got {str(value)[:40]!r}")
    if value > 10**12:
        raise CheckpointError(f"{where}: the iteration counter {int(value)} is not a plausible training step")
    return int(value)


def adam_states_by_name(state: Any, names: list[str], where: str) -> dict[str, Any]:
    """An official optimizer state dict's per-parameter states keyed by ``names``, the qualified names of the
    parameters it was built over, in their order (parameters without state, never stepped, are left out)."""
    try:
        ids = [i for g in state["param_groups"] for i in g["params"]]
        per_param = state["state"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{where}: unreadable optimizer state") from None
    if len(ids) != len(names):
        raise CheckpointError(f"{where}: the optimizer holds {len(ids)} parameters, the networks {len(names)}")
    return {names[pos]: per_param[i] for pos, i in enumerate(ids) if i in per_param}
