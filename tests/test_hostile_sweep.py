"""Hostile sweep files (issue 25): a grid of 10^6 combinations in a few lines is refused at once, before it is
expanded (it took over 20 s and growing memory before; the duplicate-name check was quadratic). Duplicate names,
unknown presets and a sweep killed mid-run and run again are pinned in tests/test_sweep.py."""

from __future__ import annotations

import time

import pytest

from nicegan.core.errors import ConfigError
from nicegan.experiments.sweep.spec import MAX_RUNS, parse_sweep
from tests.hostile import deadline


def sweep(grid: dict, seeds: list[int] | None = None, variants: list | None = None) -> dict:
    return {"data": "builtin:digits", "steps": 10, "eval_steps": [10], "seeds": seeds or [0], "grid": grid,
            "variants": variants or [{"name": "a", "config": "nicegan"}]}


@pytest.mark.parametrize(("label", "d"), [
    ("10^6 grid", sweep({f"train.k{i}": list(range(10)) for i in range(6)})),
    ("10^12 grid", sweep({f"train.k{i}": list(range(100)) for i in range(6)})),
    ("10^4 grid x 2 seeds", sweep({f"train.k{i}": list(range(10)) for i in range(4)}, seeds=[0, 1])),
    ("5,001 variants x 2 seeds", sweep({"train.lr": [1]}, seeds=[0, 1],
                                       variants=[{"name": f"v{i}", "config": "nicegan"} for i in range(5_001)])),
])
def test_sweeps_over_the_run_bound_are_refused_before_expanding(label: str, d: dict) -> None:
    t0 = time.monotonic()
    with deadline(10), pytest.raises(ConfigError, match=f"over {MAX_RUNS:,} runs"):
        parse_sweep(d, "hostile.yaml")
    assert time.monotonic() - t0 < 2


def test_a_sweep_at_the_bound_is_read_quickly() -> None:
    t0 = time.monotonic()
    with deadline(10):
        s = parse_sweep(sweep({f"train.k{i}": list(range(10)) for i in range(4)}), "big.yaml")
    assert len(s.variants) == MAX_RUNS and time.monotonic() - t0 < 3
    dup = sweep({"train.lr": [1, 2]}, variants=[{"name": "a", "config": "nicegan"}] * 2)
    with pytest.raises(ConfigError, match="duplicate variant name"):
        parse_sweep(dup, "dup.yaml")
