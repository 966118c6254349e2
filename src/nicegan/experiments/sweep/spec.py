"""The sweep file: what to train (variants x seeds), on which data, for how long, and when to evaluate.

A sweep file is a small YAML mapping::

    name: digits-main            # optional (default: the file's name)
    description: ...             # optional, free text
    data: builtin:digits         # data.root of every run
    steps: 1000                  # the step budget: train.max_steps of every run
    eval_steps: [250, 500, 1000] # evaluate each run at these steps (the budget is always added)
    seeds: [0, 1, 2]             # train.seed of the runs of each variant
    metrics: [label_preservation, fid_kid]  # optional (default: every metric that applies to the data)
    eval_limit: 500              # optional: translate and score at most this many test images per direction
    final_metrics: [fid_kid]     # optional: metrics evaluated at the last step only (e.g. the costly FID/KID)
    final_eval_limit: 200        # optional: eval_limit of the final_metrics
    set: ["train.log_every=100"] # optional: --set overrides for every variant
    grid: {train.lr: [1e-4, 2e-4]}  # optional: crosses every variant with these values
    variants:
      - name: nicegan
        config: digits           # a preset name or YAML file (relative to this file), as `nicegan train --config`
        set: ["model.encoder=independent"]
        grid: {train.batch_size: [8, 16]}  # optional, this variant only

A grid expands a variant into one variant per combination, named ``<name>_<key>=<value>_...`` (the key's last part,
e.g. ``nicegan_lr=1e-4_batch_size=8``). Parsing only needs PyYAML; :meth:`Sweep.resolve` resolves every variant's
config (importing the config module) so a bad override is reported before anything trains.
"""

from __future__ import annotations

import collections
import itertools
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nicegan.core.errors import ConfigError

SWEEP_KEYS = ("name", "description", "data", "steps", "eval_steps", "seeds", "metrics", "eval_limit", "final_metrics",
              "final_eval_limit", "set", "grid", "variants")
VARIANT_KEYS = ("name", "config", "set", "grid")
#: config fields the sweep itself sets for every run
OWNED_KEYS = {"data.root": "data", "train.seed": "seeds", "train.max_steps": "steps", "train.eval_every": "eval_steps"}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,99}")
MAX_SWEEP_BYTES = 1 << 20
#: the most runs (variants, grids expanded, times seeds) a sweep may hold: counted before any grid is expanded, so
#: a few lines asking for 10^6 combinations are refused at once instead of building them
MAX_RUNS = 10_000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Variant:
    """One line of the results: a config source and the overrides that make this variant."""

    name: str
    config: str
    overrides: tuple[str | tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Sweep:
    """A parsed, validated sweep (see the module docstring for the file format)."""

    name: str
    data: str
    steps: int
    eval_steps: tuple[int, ...]
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    metrics: tuple[str, ...] | None = None
    eval_limit: int | None = None
    final_metrics: tuple[str, ...] = ()
    final_eval_limit: int | None = None
    description: str = ""
    source: str = ""
    base_overrides: tuple[str, ...] = field(default=())

    @property
    def n_runs(self) -> int:
        return len(self.variants) * len(self.seeds)

    def with_changes(self, steps: int | None = None, eval_steps: list[int] | None = None,
                     seeds: list[int] | None = None, variants: list[str] | None = None,
                     metrics: list[str] | None = None, eval_limit: int | None = None,
                     final_metrics: list[str] | None = None) -> Sweep:
        """The sweep with command-line replacements (None: keep the file's value), validated again.

        A smaller ``steps`` without ``eval_steps`` keeps the file's eval steps below it (the budget is added); an
        empty ``final_metrics`` removes the file's.
        """
        new_steps = self.steps if steps is None else steps
        if eval_steps is not None:
            evals = list(eval_steps)
        else:
            evals = [s for s in self.eval_steps if s < new_steps] if steps is not None else list(self.eval_steps)
        chosen = self.variants
        if variants is not None:
            known = {v.name for v in self.variants}
            unknown = [v for v in variants if v not in known]
            if unknown:
                raise ConfigError(f"variants: no variant named {', '.join(map(repr, unknown))} in sweep "
                                  f"{self.name} (it has {', '.join(sorted(known))})", option="variants")
            chosen = tuple(v for v in self.variants if v.name in set(variants))
        where = f"sweep {self.name}"
        new_metrics = self.metrics if metrics is None else _metrics(metrics, where)
        return replace(
            self, steps=new_steps, eval_steps=_eval_steps(evals, new_steps, where),
            seeds=self.seeds if seeds is None else _seeds(seeds, where), variants=chosen,
            metrics=new_metrics,
            final_metrics=_final_metrics((self.final_metrics if final_metrics is None else final_metrics) or None,
                                         new_metrics, where),
            eval_limit=self.eval_limit if eval_limit is None else (eval_limit or None))

    def resolve(self, device: str | None = None) -> dict[str, dict[str, Any]]:
        """Every variant's run config (without its seed) as a plain dict; a bad config or override is a one-line
        :class:`~nicegan.core.errors.ConfigError` naming the variant."""
        from nicegan.configs.schema import resolve_config

        out = {}
        for v in self.variants:
            try:
                cfg = resolve_config(v.config, [*self.base_overrides, *v.overrides, *self.owned_overrides(device)])
            except ConfigError as e:
                raise ConfigError(f"{self.source or 'sweep'}: variant {v.name}: {e}") from None
            out[v.name] = cfg.to_dict()
        return out

    def owned_overrides(self, device: str | None) -> list[tuple[str, Any]]:
        """The fields the sweep sets for every run (after the variant's own overrides)."""
        owned: list[tuple[str, Any]] = [("data.root", self.data), ("train.max_steps", self.steps),
                                        ("train.eval_every", 0)]  # the sweep evaluates; the loop need not
        if device is not None:
            owned.append(("train.device", device))
        return owned


def _fail(where: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def _int(value: Any, where: str, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"{what} must be a whole number, got {value!r}"[:300])
    if value < minimum:
        raise _fail(where, f"{what} must be >= {minimum}, got {value}")
    return value


def _eval_steps(values: Any, steps: int, where: str) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)):
        raise _fail(where, f"eval_steps must be a list of steps, got {values!r}"[:300])
    evals = [_int(s, where, "each of eval_steps", 1) for s in values]
    beyond = [s for s in evals if s > steps]
    if beyond:
        raise _fail(where, f"eval_steps {beyond} lie beyond the step budget ({steps})")
    if len(set(evals)) != len(evals):
        raise _fail(where, f"eval_steps lists a step twice: {evals}")
    return tuple(sorted({*evals, steps}))  # the budget's end is always evaluated


def _seeds(values: Any, where: str) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or not values:
        raise _fail(where, f"seeds must be a non-empty list of whole numbers, got {values!r}"[:300])
    seeds = [_int(s, where, "each seed", 0) for s in values]
    if any(s > MAX_SEED for s in seeds):
        raise _fail(where, f"seeds must be at most {MAX_SEED}")
    if len(set(seeds)) != len(seeds):
        raise _fail(where, f"seeds lists a seed twice: {seeds}")
    return tuple(seeds)


def _metrics(values: Any, where: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not isinstance(values, (list, tuple)) or not values or not all(isinstance(m, str) and m for m in values):
        raise _fail(where, f"metrics must be a non-empty list of metric names, got {values!r}"[:300])
    if len(set(values)) != len(values):
        raise _fail(where, f"metrics lists a metric twice: {list(values)}")
    return tuple(values)


def _final_metrics(values: Any, metrics: tuple[str, ...] | None, where: str) -> tuple[str, ...]:
    final = _metrics(values, f"{where}: final_metrics") or ()
    if final and metrics is None:
        raise _fail(where, "final_metrics needs metrics (the ones evaluated at every step) to be listed too")
    both = sorted(set(final) & set(metrics or ()))
    if both:
        raise _fail(where, f"{', '.join(both)} is in both metrics (every step) and final_metrics (the last step)")
    return final


def _overrides(values: Any, where: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, (list, tuple)) or not all(isinstance(s, str) for s in values):
        raise _fail(where, f"set must be a list of 'section.key=value' strings, got {values!r}"[:300])
    for s in values:
        key = s.partition("=")[0].strip()
        if "=" not in s or key.count(".") != 1:
            raise _fail(where, f"override {s!r} must look like section.key=value (e.g. train.lr=2e-4)"[:300])
        _not_owned(key, where)
    return tuple(values)


def _not_owned(key: str, where: str) -> None:
    if key in OWNED_KEYS:
        raise _fail(where, f"{key} is set by the sweep itself (use the sweep's {OWNED_KEYS[key]!r} instead)")


def _grid(values: Any, where: str) -> dict[str, list[Any]]:
    if values is None:
        return {}
    if not isinstance(values, dict) or not values:
        raise _fail(where, f"grid must map section.key to a list of values, got {values!r}"[:300])
    out = {}
    for key, vals in values.items():
        if not isinstance(key, str) or key.count(".") != 1 or not all(key.split(".")):
            raise _fail(where, f"grid key {key!r} must look like section.key (e.g. train.lr)"[:300])
        _not_owned(key, where)
        if not isinstance(vals, list) or not vals:
            raise _fail(where, f"grid {key} must be a non-empty list of values, got {vals!r}"[:300])
        if len({repr(v) for v in vals}) != len(vals):
            raise _fail(where, f"grid {key} lists a value twice: {vals!r}"[:300])
        out[key] = vals
    return out


def _value_name(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "+".join(_value_name(x) for x in v)
    text = str(v).lower() if isinstance(v, bool) else str(v)  # YAML spells booleans true/false
    return re.sub(r"[^A-Za-z0-9.+-]", "-", text)


def _expand(name: str, config: str, overrides: tuple[str, ...], grid: dict[str, list[Any]],
            where: str) -> list[Variant]:
    if not grid:
        return [Variant(name, config, overrides)]
    keys = list(grid)
    shorts = [k.split(".")[1] for k in keys]
    if len(set(shorts)) != len(shorts):  # e.g. train.x and model.x: the full key keeps the names apart
        shorts = list(keys)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        suffix = "_".join(f"{s}={_value_name(v)}" for s, v in zip(shorts, combo, strict=True))
        out.append(Variant(f"{name}_{suffix}", config, (*overrides, *zip(keys, combo, strict=True))))
    return out


def _config_source(config: str, folder: Path | None) -> str:
    """A preset name stays a name; a file path is taken relative to the sweep file's folder when it exists there."""
    from importlib import resources

    if (resources.files("nicegan.configs.presets") / f"{config}.yaml").is_file() or folder is None:
        return config
    beside = folder / config
    return str(beside) if not Path(config).is_absolute() and beside.is_file() else config


def parse_sweep(d: Any, where: str, default_name: str = "sweep", folder: Path | None = None) -> Sweep:
    """A :class:`Sweep` from the mapping of a sweep file; one-line :class:`ConfigError` on anything wrong."""
    if not isinstance(d, dict):
        raise _fail(where, "a sweep file must hold a mapping (name, data, steps, eval_steps, seeds, variants)")
    unknown = [k for k in d if k not in SWEEP_KEYS]
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}; a sweep has {', '.join(SWEEP_KEYS)}")
    for key in ("data", "steps", "eval_steps", "seeds", "variants"):
        if key not in d:
            raise _fail(where, f"missing {key!r}")
    name = d.get("name", default_name)
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _fail(where, f"name must be letters, digits and . _ + = - (at most 100), got {name!r}"[:300])
    data = d["data"]
    if not isinstance(data, str) or not data:
        raise _fail(where, f"data must be a dataset folder or builtin:NAME, got {data!r}"[:300])
    steps = _int(d["steps"], where, "steps", 1)
    eval_steps = _eval_steps(d["eval_steps"], steps, where)
    seeds = _seeds(d["seeds"], where)
    metrics = _metrics(d.get("metrics"), where)
    limit = d.get("eval_limit")
    limit = None if limit is None else (_int(limit, where, "eval_limit", 0) or None)
    final = _final_metrics(d.get("final_metrics"), metrics, where)
    final_limit = d.get("final_eval_limit")
    final_limit = None if final_limit is None else (_int(final_limit, where, "final_eval_limit", 0) or None)
    description = d.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "description must be text")
    base = _overrides(d.get("set"), where)
    grid = _grid(d.get("grid"), where)
    raw = d["variants"]
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "variants must be a non-empty list of {name, config, set} mappings")
    variants: list[Variant] = []
    for i, v in enumerate(raw):
        vwhere = f"{where}: variant {i + 1}"
        if not isinstance(v, dict):
            raise _fail(vwhere, f"must be a mapping with name, config and set, got {v!r}"[:300])
        bad = [k for k in v if k not in VARIANT_KEYS]
        if bad:
            raise _fail(vwhere, f"unknown key(s) {', '.join(map(repr, bad))}; a variant has "
                        f"{', '.join(VARIANT_KEYS)}")
        vname = v.get("name")
        if not isinstance(vname, str) or not NAME_RE.fullmatch(vname):
            raise _fail(vwhere, f"name must be letters, digits and . _ + = - (at most 100), got {vname!r}"[:300])
        vwhere = f"{where}: variant {vname}"
        config = v.get("config")
        if not isinstance(config, str) or not config:
            raise _fail(vwhere, "config must name a preset or a YAML file (what `nicegan train --config` takes)")
        vgrid = _grid(v.get("grid"), vwhere)
        both = sorted(set(grid) & set(vgrid))
        if both:
            raise _fail(vwhere, f"grid key(s) {', '.join(both)} are also in the sweep's grid")
        combos = math.prod(len(vals) for vals in {**grid, **vgrid}.values())
        if (len(variants) + combos) * len(seeds) > MAX_RUNS:
            raise _fail(vwhere, f"the sweep would hold over {MAX_RUNS:,} runs (its grids expanded, times "
                        f"{len(seeds)} seed(s)); split it")
        variants += _expand(vname, _config_source(config, folder), _overrides(v.get("set"), vwhere),
                            {**grid, **vgrid}, vwhere)
    counts = collections.Counter(v.name for v in variants)
    dups = sorted(n for n, k in counts.items() if k > 1)
    if dups:
        raise _fail(where, f"duplicate variant name(s): {', '.join(dups)}")
    return Sweep(name=name, data=data, steps=steps, eval_steps=eval_steps, seeds=seeds, variants=tuple(variants),
                 metrics=metrics, eval_limit=limit, final_metrics=final, final_eval_limit=final_limit,
                 description=description, source=where, base_overrides=base)


def load_sweep(name_or_path: str) -> Sweep:
    """Parse a shipped sweep (by name, see :func:`nicegan.configs.sweeps.sweep_names`) or a sweep YAML file."""
    from nicegan.configs.sweeps import shipped_sweep, sweep_names

    shipped = shipped_sweep(name_or_path)
    if shipped is not None:
        text, where, folder, stem = shipped.read_text(encoding="utf-8"), f"sweep {name_or_path}", None, name_or_path
    else:
        path = Path(name_or_path).expanduser()
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"no shipped sweep or sweep file named {name_or_path!r} "
                              f"(shipped: {', '.join(sweep_names())})")
        from nicegan.configs.schema import read_user_text

        text = read_user_text(path, "sweep file", MAX_SWEEP_BYTES)
        if len(text) > MAX_SWEEP_BYTES:
            raise ConfigError(f"sweep file {path} is larger than {MAX_SWEEP_BYTES:,} characters")
        where, folder, stem = f"sweep file {path}", path.parent, path.stem
    from nicegan.configs.schema import parse_yaml

    d = parse_yaml(text, where)
    default_name = stem if NAME_RE.fullmatch(stem) else "sweep"
    return parse_sweep(d, where, default_name, folder)
