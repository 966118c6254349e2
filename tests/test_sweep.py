"""nicegan sweep: the sweep file, running (submitit's local executor, inline), failure and exact resume, the results
tables and plots, one-line errors, the shipped sweeps, the Slurm executor's parameters."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import stat
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from nicegan.cli import main
from nicegan.configs.sweeps import sweep_names
from nicegan.core.errors import ConfigError, NiceganError
from nicegan.experiments.sweep import load_sweep, parse_sweep
from nicegan.formats import checkpoint
from tests.conftest import TINY

# a tiny NICE-GAN on builtin:digits scored by label preservation on 10 test digits per direction
TINY_SET = [s for s in TINY if s != "train.log_every=1"] + ["train.log_every=2", "train.sample_every=0"]


def write_sweep(folder: Path, **changes) -> Path:
    d = {"name": "tiny", "data": "builtin:digits", "steps": 4, "eval_steps": [2, 4], "seeds": [0, 1],
         "metrics": ["label_preservation"], "eval_limit": 10, "set": TINY_SET,
         "variants": [{"name": "base", "config": "digits"},
                      {"name": "slow", "config": "digits", "set": ["train.lr=1e-4"]}]}
    d.update(changes)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_local_executor_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # two one-step runs in two submitit subprocesses at once (the 2 x 2 grid with two eval steps runs inline below:
    # a job process costs seconds of imports alone)
    sweep = write_sweep(tmp_path, steps=1, eval_steps=[1], seeds=[0])
    out = tmp_path / "out"
    code, _, err = run_cli(["sweep", str(sweep), "--out", str(out), "--executor", "local", "--parallel", "2"], capsys)
    assert code == 0, err
    assert "[2/2] done" in err and "2 at a time" in err
    for variant in ("base", "slow"):
        run = out / "runs" / variant / "seed0"
        assert checkpoint.load(run).step == 1
        for step in (1,):
            rec = json.loads((run / "evals" / f"step_{step:07d}.json").read_text())
            assert rec["step"] == step and 0 <= rec["metrics"]["digits/a2b_accuracy"] <= 1
    assert len(list((out / "submitit").glob("*_log.err"))) == 2, "the runs ran as submitit local jobs"
    assert (out / "submitit" / "controllers.log").is_file(), "the job controllers' stderr goes to a file"
    assert yaml.safe_load((out / "runs" / "slow" / "seed0" / "config.yaml").read_text())["train"]["lr"] == 1e-4
    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 and {"digits/a2b_accuracy", "digits/b2a_baseline"} <= set(rows[0])


def straight_run_equals(run: Path, out: Path, variant: str, seed: int, where: Path) -> None:
    """The run's last checkpoint is bit for bit the one of the same config trained straight through."""
    from nicegan.configs.schema import resolve_config
    from nicegan.training.runs import start_run

    plan = json.loads((out / "sweep.json").read_text())
    cfg = resolve_config(next(r for r in plan["runs"] if (r["variant"], r["seed"]) == (variant, seed))["config"])
    start_run(cfg, where, progress=False, tensorboard=False)
    a, b = checkpoint.load(where), checkpoint.load(run)
    assert a.step == b.step == cfg.train.max_steps
    for net in a.nets:
        for k, v in a.nets[net].items():
            assert torch.equal(v, b.nets[net][k]), f"{variant} seed {seed}: {net}.{k}"


def test_grid_interrupted_and_resumed(tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """2 variants x 2 seeds x 4 steps evaluated at 2 and 4, inline. First call: Ctrl-C in base/seed1's third step
    stops the sweep. Second: slow/seed1 fails in its third step, the others go on. Third: the finished runs are
    skipped, slow/seed1 resumes. Both resumed runs end bit for bit where a straight run ends."""
    from nicegan.training import loop

    torch.set_num_threads(1)  # the tiny nets gain nothing from more, and a busy machine slows them down a lot
    sweep = write_sweep(tmp_path)
    out = tmp_path / "out"
    real_step = loop.Trainer.train_step
    trouble = {}

    def troubled_step(self, batch):
        what = trouble.get(self.run_dir) if self.step == 3 else None
        if what == "fail":
            raise RuntimeError("boom")
        if what == "interrupt":
            trouble.clear()
            signal.raise_signal(signal.SIGINT)  # the trainer finishes the step, saves and stops
        return real_step(self, batch)

    monkeypatch.setattr(loop.Trainer, "train_step", troubled_step)
    runs = {(v, k): out / "runs" / v / f"seed{k}" for v in ("base", "slow") for k in (0, 1)}
    args = ["sweep", str(sweep), "--out", str(out), "--no-progress"]

    trouble[runs["base", 1]] = "interrupt"
    code, _, err = run_cli(args, capsys)
    assert code == 130 and err.strip().splitlines()[-1] == "nicegan: interrupted"
    assert checkpoint.load(runs["base", 1]).step == 3 and not runs["slow", 0].exists()

    trouble[runs["slow", 1]] = "fail"
    code, _, err = run_cli(args, capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("nicegan: error: 1 of 3 runs failed (slow seed 1: RuntimeError: boom)"), last
    assert "1 finished already, 3 to run" in err and "base seed 1 resumes at step 3" in err
    assert "[3/3] FAILED slow seed 1" in err
    failed = runs["slow", 1] / "failed.json"
    assert "boom" in json.loads(failed.read_text())["traceback"]
    assert "## Failed runs" in (out / "results.md").read_text()
    assert len(read_csv(out / "results.csv")) == 7, "three runs' two evaluations and the failed run's first"

    finished = [runs["base", 0], runs["base", 1], runs["slow", 0]]
    before = {p: p.stat().st_mtime_ns for run in finished for p in run.rglob("*") if p.is_file()}
    trouble.clear()
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert "3 finished already, 1 to run" in err and "slow seed 1 resumes at step 2" in err
    after = {p: p.stat().st_mtime_ns for run in finished for p in run.rglob("*") if p.is_file()}
    assert after == before, "the finished runs were not touched"
    assert not failed.exists()

    res = json.loads((out / "results.json").read_text())
    assert all(r["status"] == "done" for r in res["runs"]) and len(res["rows"]) == 8
    assert res["summary"]["slow"]["4"]["digits/a2b_accuracy"]["n"] == 2
    plots = sorted((out / "plots").glob("*.png"))
    assert plots
    with Image.open(plots[0]) as im:
        assert im.format == "PNG" and im.size[0] > 100

    straight_run_equals(runs["base", 1], out, "base", 1, tmp_path / "straight-base")
    straight_run_equals(runs["slow", 1], out, "slow", 1, tmp_path / "straight-slow")


def test_a_sweep_killed_with_sigkill_is_rerun_consistently(tmp_path: Path) -> None:
    """``kill -9`` of the sweep process while its second run trains (after the run's first evaluation): rerunning
    the same command keeps the finished run untouched, resumes the killed one from its last checkpoint, and the
    results hold each (run, step) once; no temporary file is left behind."""
    import subprocess
    import time

    sweep = write_sweep(tmp_path, steps=6, eval_steps=[2, 6], seeds=[0, 1], variants=[{"name": "base",
                                                                                     "config": "digits"}])
    out = tmp_path / "out"
    runs = [out / "runs" / "base" / f"seed{k}" for k in (0, 1)]
    cmd = [sys.executable, "-m", "nicegan", "sweep", str(sweep), "--out", str(out), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NICEGAN_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_eval = runs[1] / "evals" / "step_0000002.json"
    try:
        end = time.monotonic() + 120
        while not first_eval.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < end, "the sweep did not reach the second run"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (runs[1] / "evals" / "step_0000006.json").exists(), "killed too late: the second run had finished"
    finished = {p: p.stat().st_mtime_ns for p in runs[0].rglob("*") if p.is_file() and p.name != ".lock"}

    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 finished already, 1 to run" in res.stderr, res.stderr[-3000:]
    assert "base seed 1 resumes at step 2" in res.stderr, res.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in runs[0].rglob("*") if p.is_file() and p.name != ".lock"} == finished
    assert checkpoint.load(runs[1]).step == 6
    rows = read_csv(out / "results.csv")
    assert sorted((r["seed"], r["step"]) for r in rows) == [("0", "2"), ("0", "6"), ("1", "2"), ("1", "6")]
    result = json.loads((out / "results.json").read_text())
    assert [r["status"] for r in result["runs"]] == ["done", "done"] and len(result["rows"]) == 4
    steps = [json.loads(line)["step"] for line in (runs[1] / "metrics.jsonl").read_text().splitlines()
             if json.loads(line).get("event") == "train"]
    assert steps == sorted(set(steps)), "the resumed run logged some steps twice"
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith((".part", ".partial"))]
    assert not leftovers, leftovers


def fake_evals(out: Path, values: dict[tuple[str, int, int], float]) -> None:
    for (variant, seed, step), v in values.items():
        path = out / "runs" / variant / f"seed{seed}" / "evals" / f"step_{step:07d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"step": step, "metrics": {"acc": v, "fid": 100 * v},
                                    "settings": {"metrics": ["label_preservation"], "limit": 10}}))


def test_report_numbers_match_a_hand_computation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = write_sweep(tmp_path, seeds=[0, 1, 2])
    out = tmp_path / "out"
    values = {("base", 0, 4): 0.5, ("base", 1, 4): 0.7, ("base", 2, 4): 0.6, ("slow", 0, 4): 0.2,
              ("base", 0, 2): 0.1, ("base", 1, 2): 0.3, ("slow", 0, 2): 0.4, ("slow", 1, 2): 0.4}
    fake_evals(out, values)
    code, _, err = run_cli(["sweep", str(sweep), "--out", str(out), "--report-only"], capsys)
    assert code == 0, err
    rows = read_csv(out / "results.csv")
    assert len(rows) == len(values)
    assert {(r["variant"], int(r["seed"]), int(r["step"])): float(r["acc"]) for r in rows} == values
    # base at step 4: mean 0.6, std 0.1 (n - 1), t(0.975, 2) = 4.302652729911275
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    s = json.loads((out / "results.json").read_text())["summary"]
    cell = s["base"]["4"]["acc"]
    assert cell["n"] == 3 and cell["mean"] == pytest.approx(0.6) and cell["std"] == pytest.approx(0.1)
    assert cell["ci95"] == pytest.approx([0.6 - half, 0.6 + half])
    assert s["base"]["4"]["fid"]["ci95"] == pytest.approx([60 - 100 * half, 60 + 100 * half])
    # two seeds: t(0.975, 1) = 12.706204736174698; a constant metric has a zero-width interval
    assert s["base"]["2"]["acc"]["ci95"] == pytest.approx([0.2 - 12.706204736174698 * 0.1, 0.2 + 1.27062047361747])
    assert s["slow"]["2"]["acc"] == {"n": 2, "mean": pytest.approx(0.4), "std": pytest.approx(0.0),
                                      "ci95": pytest.approx([0.4, 0.4])}
    assert s["slow"]["4"]["acc"] == {"n": 1, "mean": 0.2, "std": None, "ci95": None}
    md = (out / "results.md").read_text()
    assert f"0.6 ± 0.1 [{0.6 - half:.4g}, {0.6 + half:.4g}]" in md
    assert "| slow | 1 | 0.2 (n=1)" in md
    assert md.index("## Step 4 (final)") < md.index("## Step 2")
    assert "- slow seed 1: incomplete (1 of 2 evaluations)" in md and "- slow seed 2: not started" in md
    for name in ("acc", "fid"):
        with Image.open(out / "plots" / f"{name}.png") as im:
            im.verify()


@pytest.mark.parametrize(("changes", "message"), [
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"eval_steps": [2, 8]}, "eval_steps [8] lie beyond the step budget (4)"),
    ({"colour": "red"}, "unknown key(s) 'colour'"),
    ({"variants": [{"name": "a", "config": "digits"}, {"name": "a", "config": "digits"}]},
     "duplicate variant name(s): a"),
    ({"variants": [{"name": "a", "config": "digits", "set": ["model.no_such_field=1"]}]}, "variant a:"),
    ({"variants": [{"name": "a", "config": "digits", "set": ["train.seed=3"]}]},
     "train.seed is set by the sweep itself"),
    ({"variants": [{"name": "a", "config": "no-such-preset"}]}, "no preset or config file named"),
    ({"variants": [{"name": "a b", "config": "digits"}]}, "name must be letters"),
    ({"steps": "many"}, "steps must be a whole number"),
])
def test_bad_sweep_files_give_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture, changes: dict,
                                              message: str) -> None:
    sweep = write_sweep(tmp_path, **changes)
    code, out, err = run_cli(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("nicegan: error: "), err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_unreadable_and_unknown_sweeps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["sweep", "no-such-sweep", "--dry-run"], capsys)
    assert code == 2 and "no shipped sweep or sweep file named 'no-such-sweep' (shipped: digits-ablation" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants: [a, : b")
    code, _, err = run_cli(["sweep", str(bad), "--dry-run"], capsys)
    assert code == 2 and "is not valid YAML" in err and len(err.strip().splitlines()) == 1


def test_grid_expansion_and_command_line_changes(tmp_path: Path) -> None:
    sweep = parse_sweep({"data": "builtin:digits", "steps": 1000, "eval_steps": [250, 500], "seeds": [0],
                         "grid": {"train.lr": ["1e-4", 2.0e-4]},
                         "variants": [{"name": "m", "config": "digits", "grid": {"train.batch_size": [8, 16]}}]},
                        "test")
    assert [v.name for v in sweep.variants] == ["m_lr=1e-4_batch_size=8", "m_lr=1e-4_batch_size=16",
                                                "m_lr=0.0002_batch_size=8", "m_lr=0.0002_batch_size=16"]
    assert sweep.eval_steps == (250, 500, 1000), "the budget is always evaluated"
    cfgs = sweep.resolve()
    assert cfgs["m_lr=1e-4_batch_size=16"]["train"]["lr"] == 1e-4
    assert cfgs["m_lr=1e-4_batch_size=16"]["train"]["batch_size"] == 16
    assert cfgs["m_lr=1e-4_batch_size=16"]["train"]["eval_every"] == 0
    quick = sweep.with_changes(steps=300, seeds=[3, 4], variants=["m_lr=1e-4_batch_size=8"])
    assert quick.eval_steps == (250, 300) and quick.seeds == (3, 4) and len(quick.variants) == 1
    with pytest.raises(ConfigError, match="no variant named 'x'"):
        sweep.with_changes(variants=["x"])
    with pytest.raises(ConfigError, match="lie beyond the step budget"):
        sweep.with_changes(steps=100, eval_steps=[200])


def test_final_metrics_only_at_the_last_step(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """final_metrics are evaluated at the budget's end only, on their own image limit; a finished sweep is skipped,
    and dropping them from the command line is another evaluation setting of the last step only."""
    torch.set_num_threads(1)
    sweep = write_sweep(tmp_path, variants=[{"name": "base", "config": "digits"}], seeds=[0],
                        final_metrics=["latent_mmd"], final_eval_limit=12)
    out = tmp_path / "out"
    args = ["sweep", str(sweep), "--out", str(out), "--no-progress"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    evals = out / "runs" / "base" / "seed0" / "evals"
    first, last = (json.loads((evals / f"step_{s:07d}.json").read_text()) for s in (2, 4))
    assert not any(k.startswith("latent") for k in first["metrics"]) and "digits/a2b_accuracy" in first["metrics"]
    assert any(k.startswith("latent") for k in last["metrics"]) and "digits/a2b_accuracy" in last["metrics"]
    assert first["settings"] == {"metrics": ["label_preservation"], "limit": 10}
    assert last["settings"] == {"metrics": ["label_preservation"], "limit": 10, "final_metrics": ["latent_mmd"],
                                "final_limit": 12}
    assert "at the last step also latent_mmd (at most 12 test images per direction)" in \
        (out / "results.md").read_text()
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "1 finished already, 0 to run" in err
    assert json.loads((out / "sweep.json").read_text())["final_metrics"] == ["latent_mmd"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"final_metrics": ["label_preservation"]}, "label_preservation is in both metrics (every step) and "
                                                "final_metrics (the last step)"),
    ({"final_metrics": ["fid_kid"], "metrics": None}, "final_metrics needs metrics"),
    ({"final_metrics": "fid_kid"}, "final_metrics: metrics must be a non-empty list"),
    ({"final_eval_limit": -1}, "final_eval_limit must be >= 0"),
])
def test_bad_final_metrics(tmp_path: Path, capsys: pytest.CaptureFixture, changes: dict, message: str) -> None:
    sweep = write_sweep(tmp_path, **changes)
    code, out, err = run_cli(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--dry-run"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert message in err, err


def test_final_metrics_from_the_command_line() -> None:
    sweep = load_sweep("digits-main")
    assert sweep.with_changes(final_metrics=[]).final_metrics == ()
    assert sweep.with_changes(final_metrics=["diversity"]).final_metrics == ("diversity",)
    with pytest.raises(ConfigError, match="is in both metrics"):
        sweep.with_changes(metrics=["label_preservation", "fid_kid"])


def test_changed_settings_do_not_mix_with_an_existing_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sweep = write_sweep(tmp_path, variants=[{"name": "base", "config": "digits"}], seeds=[0])
    run = tmp_path / "out" / "runs" / "base" / "seed0"
    run.mkdir(parents=True)
    cfg = load_sweep(str(sweep)).resolve()["base"]
    cfg["train"]["seed"] = 0
    cfg["train"]["max_steps"] = 1000
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = run_cli(["sweep", str(sweep), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "was trained with another config (train.max_steps 1000 -> 4)" in err


@pytest.mark.parametrize("name", sweep_names())
def test_shipped_sweeps_parse_and_resolve(name: str) -> None:
    sweep = load_sweep(name)
    budget = 1000 if name == "digits-da" else 300  # the DA comparison runs longer (docs/results.md)
    assert sweep.name == name and sweep.steps == budget and sweep.eval_steps[-1] == budget
    assert len(sweep.eval_steps) >= 2
    configs = sweep.resolve()
    assert len(configs) == len(sweep.variants) >= 2
    for cfg in configs.values():
        assert cfg["data"]["root"] == sweep.data and cfg["train"]["max_steps"] == budget


def test_shipped_sweeps_cover_the_issue() -> None:
    assert sweep_names() == ["digits-ablation", "digits-da", "digits-main", "digits-tuning"]
    main_cfgs = load_sweep("digits-main").resolve()
    from nicegan.models import list_models

    assert {c["model"]["name"] for c in main_cfgs.values()} == set(list_models()), "every registered model"
    main_sweep = load_sweep("digits-main")
    assert main_sweep.seeds == (0, 1, 2) and main_sweep.final_metrics == ("fid_kid", "diversity")
    ablation = load_sweep("digits-ablation")
    assert {v.name for v in ablation.variants} >= {"default", "independent-encoder", "no-residual-attention",
                                                   "encoder-updates-generator", "encoder-updates-both"}
    tuning = load_sweep("digits-tuning")
    assert tuning.data == "builtin:digits-val"
    assert {f"{m}_lr={lr}" for m in ("nicegan", "drit") for lr in ("2e-4", "4e-4")} <= \
        {v.name for v in tuning.variants}
    da = load_sweep("digits-da").resolve()
    assert {(c["model"]["name"], c["model"]["arch"]) for c in da.values()} == {("unit", "da32"), ("cogan", "digits")}
    assert all(c["model"]["cls_weight"] > 0 and c["train"]["batch_size"] == 32 for c in da.values())


def fake_srun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``srun`` on PATH: submitit's Slurm executor checks for it when it is built (nothing is submitted)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_slurm_executor_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nicegan.experiments.sweep.executors import SlurmOptions, make_executor

    fake_srun(tmp_path, monkeypatch)
    opts = SlurmOptions(partition="gpu", gpus=1, cpus=8, mem_gb=32, time_min=120, params={"account": "proj"},
                        setup=["source ~/venv/bin/activate"])
    ex = make_executor("slurm", tmp_path / "submitit", "tiny", parallel=4, slurm=opts)
    p = ex._executor.parameters
    assert (p["partition"], p["gpus_per_node"], p["cpus_per_task"], p["time"], p["array_parallelism"]) == \
        ("gpu", 1, 8, 120, 4)
    assert p["mem"] == "32GB" and p["job_name"] == "nicegan-tiny"
    assert p["additional_parameters"] == {"account": "proj"}
    text = ex._executor._make_submission_file_text("python -m job", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --time=120", "#SBATCH --account=proj", "source ~/venv/bin/activate"):
        assert line in text


def test_slurm_needs_a_cluster_and_submitit(tmp_path: Path, capsys: pytest.CaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from nicegan.experiments.sweep.executors import make_executor

    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    with pytest.raises(NiceganError, match="executor=slurm needs a Slurm cluster"):
        make_executor("slurm", tmp_path / "s", "tiny")
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if the extra were not installed
    with pytest.raises(NiceganError, match=r'pip install "nicegan\[sweep\]"'):
        make_executor("local", tmp_path / "s", "tiny")


def test_parser_imports_no_torch() -> None:
    import subprocess

    code = ("import sys; from nicegan.cli import build_parser; build_parser().parse_args(['sweep', 'digits-main']); "
            "assert 'torch' not in sys.modules and 'nicegan.experiments.sweep' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
