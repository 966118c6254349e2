"""The benchmark scripts run and, with ``--json``, end with one parseable JSON line (tiny settings, CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

CASES = {
    "train_step.py": ["--img-size", "64", "--ch", "4", "--n-res", "1", "--n-dis", "6", "--steps", "1", "--warmup", "1"],
    "translate.py": ["--img-size", "64", "--images", "2", "--batch-size", "2", "--no-compile"],
    "inception_features.py": ["--images", "2", "--batch-size", "2"],
    "ddp_step.py": ["--img-size", "64", "--steps", "6", "--ch", "4"],
    "gpu_suite.py": ["--tiny", "--device", "cpu"],
    "fast_paths.py": ["--img-size", "64", "--ch", "4", "--n-res", "1", "--rounds", "1", "--warmup", "1",
                      "--no-compile"],
    "busy_machine.py": ["--rounds", "1", "--workloads", "translate"],
}
SUITE_ROWS = {f"{model}_{variant}" for model in ("light", "full")
              for variant in ("fp32", "tf32", "bf16", "bf16_channels_last", "bf16_fused_adam", "bf16_checkpointing",
                              "bf16_compile")} | {"translate_light_fp32", "translate_light_bf16"}
EXPECTED = {"train_step.py": {"official", "official+malloc", "ours", "ours_ckpt"},
            "translate.py": {"official", "ours", "ours_channels_last", "onnxruntime"}, "gpu_suite.py": SUITE_ROWS,
            "fast_paths.py": {"ours", "ours_channels_last", "ours_fused_adam", "ours_ckpt"}}


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
    cond = out["conditions"]  # load and threads at start and end, and whether ratios are to be trusted
    assert cond["start"]["torch_threads"] >= 1 and cond["end"]["loadavg"] and isinstance(cond["steady_load"], bool)
    assert cond["start"]["others_cpus"] >= 0 and cond["others_cpus_mean"] >= 0, "other processes' use is recorded"
    assert cond["steady_load"] or "WARNING: the machine's load changed" in res.stdout
    for name, figures in out["variants"].items():
        assert any(k in figures for k in ("s_per_iter", "images_per_s")), name
        if figures.get("status", "ok") == "ok":  # gpu_suite: skipped rows say why and have null figures
            assert all(v > 0 for k, v in figures.items() if k in ("s_per_iter", "images_per_s")), (name, figures)
    if script in EXPECTED:
        assert set(out["variants"]) == EXPECTED[script]
        assert out["peaks_gflop_s"]["fp32"] > 0 and out["peaks_gflop_s"]["bf16"] > 0
    if script == "train_step.py":
        ours = out["variants"]["ours"]
        assert ours["gflop_per_iter"] > 0 and ours["pct_of_peak"] > 0 and ours["peak_gib"] > 0
    if script == "gpu_suite.py":
        check_gpu_suite(out)
    if script == "busy_machine.py":  # auto and every fixed count, idle and beside the competing process it starts
        cpus = out["cpus"]
        assert set(out["variants"]) == {f"{c}_translate_{v}" for c in ("idle", "busy")
                                        for v in ("auto", *map(str, range(1, cpus + 1)))}
        assert set(out["summary"]) == {"idle.translate", "busy.translate"}


def check_gpu_suite(out: dict) -> None:
    """Every path that runs on a CPU ran (compile through aot_eager); TF32 and the missing option say why not."""
    rows = out["variants"]
    status = {name: r["status"] for name, r in rows.items()}
    for model in ("light", "full"):
        assert status.pop(f"{model}_tf32") == "skipped" and "CUDA" in rows[f"{model}_tf32"]["note"]
        assert rows[f"{model}_bf16_compile"]["compile_s"] >= 0
    assert set(status.values()) == {"ok"}, {n: rows[n]["note"] for n, s in status.items() if s != "ok"}
    for name in status:
        r = rows[name]
        assert r["peak_gib"] > 0 and r["gflop_per_iter"] > 0 and r["pct_of_peak"] > 0, (name, r)
    assert rows["light_fp32"]["gflop_per_iter"] == rows["light_bf16"]["gflop_per_iter"], "counted once per model"
    losses = out["loss_tracking"]
    assert losses["status"] == "ok" and losses["steps"] == 4 and losses["bf16_finite"]
    assert set(losses["mean_rel_diff"]) >= {"dis/total", "gen/total"}
    assert 0 <= losses["max_mean_rel_diff"] < 0.5 and losses["first_step_max_rel_diff"] < 0.1
    assert out["elapsed_s"] > 0 and out["config"]["tiny"]


def test_gpu_suite_budget_and_missing_gpu(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from benchmarks import gpu_suite

    gpu_suite.main(["--tiny", "--budget-s", "0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["variants"]) == SUITE_ROWS
    skipped = {n for n, r in out["variants"].items() if r["status"] == "skipped" and "budget" in r["note"]}
    assert skipped == {n for n in SUITE_ROWS if "tf32" not in n}
    assert out["loss_tracking"]["status"] == "skipped"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match=r"^gpu_suite: error: --device cuda asked for, but .* no CUDA GPU"):
        gpu_suite.main([])
