"""Evaluation of models: evaluate CLI, FID/KID during training with best checkpoints, the paper's analyses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.cli import main
from nicegan.configs.schema import resolve_config
from nicegan.evaluation import registry
from nicegan.evaluation.analysis import latent_analysis, mmd2
from nicegan.evaluation.fid import MetricResult
from nicegan.formats import checkpoint as ck
from nicegan.training.runs import resume_run, start_run
from tests.conftest import TINY
from tests.test_metrics import inception_weights  # noqa: F401  (session fixture)


@pytest.fixture(scope="module")
def evaluated_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory, inception_weights) -> Path:  # noqa: F811
    run = tmp_path_factory.mktemp("eval") / "run"
    cfg = resolve_config("nicegan-light", TINY + [f"data.root={tiny_data}", "train.max_steps=4", "train.eval_every=2",
                                                  "train.sample_every=0"])
    start_run(cfg, run, progress=False, tensorboard=False, stop_at=2)
    resume_run(run, progress=False, tensorboard=False)
    return run


def test_training_logs_fid_kid_and_keeps_best_checkpoints(evaluated_run: Path) -> None:
    recs = [json.loads(x) for x in (evaluated_run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in recs if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    for r in evals:
        for key in ("eval/fid_a2b", "eval/fid_b2a", "eval/kid_x100_a2b", "eval/kid_x100_b2a"):
            assert np.isfinite(r[key])
    latest = ck.load(evaluated_run)
    best = latest.extra["best"]
    for d in ("a2b", "b2a"):
        fids = {r["step"]: r[f"eval/fid_{d}"] for r in evals}
        best_step = min(fids, key=fids.get)
        assert best[d] == {"fid": fids[best_step], "step": best_step}, "best survives the resume at step 2"
        kept = ck.load(evaluated_run / "checkpoints" / f"best_{d}.pt")
        assert kept.step == best_step


def test_digits_evaluation_logs_label_preservation(monkeypatch: pytest.MonkeyPatch) -> None:
    from nicegan.training import loop

    cfg = resolve_config("digits", ["model.ch=4", "model.n_res=1"])
    ev = loop.Evaluator.__new__(loop.Evaluator)
    ev.cfg, ev.cache_dir, ev.ext = cfg, None, None
    fake = MetricResult(12.0, 0.01, 0.0, 100.0, 50, 100, 100, 100, "paper", "w")
    fid_kid = registry.get_metric("fid_kid")
    monkeypatch.setitem(registry._METRICS, "fid_kid", dataclasses.replace(
        fid_kid, compute=lambda ctx: {"results": {"a2b": fake, "b2a": fake}, "diagnostics": {}}))
    monkeypatch.setattr("nicegan.evaluation.digits.label_preservation", lambda m, **kw: {"digits/a2b_accuracy": 0.5})
    values, improved = ev.run(torch.nn.Module(), {}, step=3)
    assert values["digits/a2b_accuracy"] == 0.5 and values["eval/fid_a2b"] == 12.0 and improved == ["a2b", "b2a"]
    assert not any("adaptation" in k for k in values), "a plain translation model has no adaptation accuracy"

    class Adapting(torch.nn.Module):  # a model in domain-adaptation mode: labelled A, a classify(x, domain) head
        def classify(self, x: torch.Tensor, domain: str) -> torch.Tensor:
            return torch.zeros(1)

    monkeypatch.setattr("nicegan.evaluation.digits.adaptation_accuracy",
                        lambda m, **kw: {"digits/adaptation_accuracy_b": 0.7})
    values, _ = ev.run(Adapting(), {}, step=4)
    assert values["digits/adaptation_accuracy_b"] == 0.7 and values["digits/a2b_accuracy"] == 0.5


def test_evaluate_cli(evaluated_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", "--checkpoint", str(evaluated_run), "--json", "--no-progress", "--direction", "a2b"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["results"]["a2b"]
    assert out["step"] == 4 and r["n_real"] == 5 and r["n_fake"] == 5 and np.isfinite(r["fid"])
    assert r["kid_subset_size"] == 5 and r["protocol"] == "paper"
    last = json.loads((evaluated_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "evaluate", "the result is appended to the run's log"
    assert main(["evaluate", "--checkpoint", str(evaluated_run), "--protocol", "clean"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("a2b: FID") and "b2a: FID" in text and "protocol clean" in text


def test_heatmaps_and_interpolation(evaluated_run: Path, tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "heat.png"
    assert main(["-q", "heatmaps", "--checkpoint", str(evaluated_run), "--input", str(tiny_data / "testA"),
                 "--output", str(out), "-n", "3"]) == 0
    with Image.open(out) as im:  # 3 rows (real, overlay, translation) of 3 images of 32 px with 2 px padding
        assert im.size == (3 * 34 + 2, 3 * 34 + 2)
    a, b = sorted((tiny_data / "testB").glob("*.png"))[:2]
    out = tmp_path / "interp.png"
    assert main(["-q", "interpolate", "--checkpoint", str(evaluated_run), str(a), str(b), "--domain", "b",
                 "--steps", "5", "--output", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (7 * 34 + 2, 2 * 34 + 2)


def test_latents_cli(evaluated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tsne.png"
    assert main(["latents", "--checkpoint", str(evaluated_run), "--split", "test", "--output", str(out),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_a"] == 5 and res["n_b"] == 5 and res["mmd2_ab"] >= 0 and out.is_file()


def test_mmd_and_tsne_are_sane() -> None:
    rng = np.random.RandomState(0)
    x = rng.randn(40, 30)
    assert mmd2(x, x)[0] == pytest.approx(0.0, abs=1e-12), "MMD of a set with itself is 0"
    same = mmd2(x[:20], x[20:])[0]
    far = mmd2(x, x + 3.0)[0]
    assert 0 <= same < far, "a shifted distribution is farther than another sample of the same one"
    rep = latent_analysis(x, x + 3.0)
    assert rep.embedding.shape == (80, 2), "one t-SNE point per image"
    assert np.isfinite(rep.embedding).all() and rep.mmd2_ab > rep.mmd2_within_a


def test_a_newly_registered_metric_appears_in_evaluate_unasked(evaluated_run: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """evaluate's output is made by the registry: a metric registered anywhere shows up, with its default report
    (its scalars under its name), in the text, the JSON and the run's log, without touching the command."""
    from nicegan.evaluation import register_metric
    from nicegan.evaluation.registry import _METRICS

    @register_metric("test_brightness")
    def _brightness(ctx) -> dict[str, float]:
        return {"mean_weight": float(next(ctx.model.parameters()).detach().mean())}

    try:
        assert main(["evaluate", "--checkpoint", str(evaluated_run), "--json", "--no-progress"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert set(out["test_brightness"]) == {"mean_weight"} and "results" in out
        last = json.loads((evaluated_run / "metrics.jsonl").read_text().splitlines()[-1])
        assert last["test_brightness"] == out["test_brightness"]
        assert main(["evaluate", "--checkpoint", str(evaluated_run), "--no-progress"]) == 0
        text = capsys.readouterr().out
        assert text.startswith("a2b: FID") and "test_brightness mean_weight: " in text
    finally:
        del _METRICS["test_brightness"]
