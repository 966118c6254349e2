"""The benchmark scripts run and, with ``--json``, end with one parseable JSON line (tiny settings, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

CASES = {
    "train_step.py": ["--img-size", "64", "--ch", "4", "--n-res", "1", "--n-dis", "6", "--steps", "1", "--warmup", "1"],
    "translate.py": ["--img-size", "64", "--images", "2", "--batch-size", "2"],
    "inception_features.py": ["--images", "2", "--batch-size", "2"],
    "ddp_step.py": ["--img-size", "64", "--steps", "6", "--ch", "4"],
}
EXPECTED = {"train_step.py": {"official", "official+malloc", "ours"},
            "translate.py": {"official", "ours", "ours_channels_last"}}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_json_line(script: str) -> None:
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *CASES[script], "--json"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert len(lines) > 2, "the table is still printed"
    out = json.loads(lines[-1])
    assert out["benchmark"] and out["machine"]["threads"] >= 1 and out["variants"]
    for name, figures in out["variants"].items():
        assert any(k in figures for k in ("s_per_iter", "images_per_s")), name
        assert all(v > 0 for k, v in figures.items() if k in ("s_per_iter", "images_per_s")), (name, figures)
    if script in EXPECTED:
        assert set(out["variants"]) == EXPECTED[script]
        assert out["peaks_gflop_s"]["fp32"] > 0 and out["peaks_gflop_s"]["bf16"] > 0
    if script == "train_step.py":
        ours = out["variants"]["ours"]
        assert ours["gflop_per_iter"] > 0 and ours["pct_of_peak"] > 0 and ours["peak_gib"] > 0
