"""The digits evaluation: shipped checksummed classifiers, the validation pair, per-class scores, the latent MMD
metric and the demo report's pieces."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.cli import main
from nicegan.configs.schema import resolve_config
from nicegan.core.errors import DataError, NiceganError
from nicegan.data import open_domain
from nicegan.data.digits import DIGITS, DIGITS_VAL, load_builtin, load_digits_pair
from nicegan.evaluation import EvalContext, applicable, evaluate, needs_extractor
from nicegan.evaluation import digits as D
from nicegan.inference import load_model
from nicegan.training.runs import start_run
from tests.conftest import TINY, tiny_model


def _fingerprints(images: np.ndarray) -> set[bytes]:
    return {im.tobytes() for im in images}


def test_shipped_classifiers_reproduce_their_recorded_test_accuracy() -> None:
    pair = load_digits_pair()
    for dom in "AB":
        path = D.classifier_file(dom)
        assert path.stat().st_size < 300_000, "the shipped weights stay small"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == D.CLASSIFIER_SHA256[dom]
        test = pair.split("test", dom)
        acc = D.accuracy(D.digit_classifier(dom), D.source_tensor(test), test.labels)
        # one image of either split is 0.1 % (A) or 0.28 % (B): other CPUs may flip at most a borderline one
        assert acc == pytest.approx(D.CLASSIFIER_TEST_ACCURACY[dom], abs=0.003)
    assert D.digit_classifier("A") is D.digit_classifier("A"), "loaded once per process"


def test_a_damaged_or_missing_classifier_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = tmp_path / "digits_a.safetensors"
    shutil.copyfile(D.classifier_file("A"), damaged)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: the file still parses, the checksum must catch it
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(D, "CLASSIFIER_DIR", tmp_path)
    D.digit_classifier.cache_clear()
    try:
        with pytest.raises(NiceganError, match=r"digits_a.safetensors is damaged \(SHA-256 .*reinstall nicegan"):
            D.digit_classifier("A")
        with pytest.raises(NiceganError, match="digits_b.safetensors cannot be read"):
            D.digit_classifier("B")
    finally:
        D.digit_classifier.cache_clear()  # later tests load the real files again
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(NiceganError, match="does not fit"):
        D.load_classifier(garbage, hashlib.sha256(garbage.read_bytes()).hexdigest())


def test_the_validation_pair_is_carved_from_the_training_data() -> None:
    full, val = load_digits_pair(), load_builtin(DIGITS_VAL)
    for dom in "AB":
        train, held = val.split("train", dom), val.split("test", dom)
        counts = np.bincount(held.labels, minlength=10)
        assert counts.min() >= 14 and counts.max() - counts.min() <= 1, "10 % of every class"
        full_train = full.split("train", dom)
        assert len(train) + len(held) == len(full_train)
        train_fp, held_fp = _fingerprints(train.images), _fingerprints(held.images)
        assert not train_fp & held_fp, "tuning's train and test splits are disjoint"
        assert train_fp | held_fp == _fingerprints(full_train.images), "both come from builtin:digits' train split"
        assert not held_fp & _fingerprints(full.split("test", dom).images), "the real test split is never used"
        assert open_domain(DIGITS_VAL, "test", dom) is held, "the data pipeline opens it like builtin:digits"
    assert len(val.split("test", "A")) == 400 and load_builtin(DIGITS_VAL) is val
    with pytest.raises(DataError, match="available: builtin:digits, builtin:digits-val"):
        open_domain("builtin:nope", "train", "A")


def test_label_preservation_on_the_validation_pair_scores_the_held_out_part(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = tiny_model("nicegan")
    seen: dict[str, torch.Tensor] = {}
    translate = D.translate_all

    def spy(m: torch.nn.Module, images: torch.Tensor, direction: str, batch: int = 200) -> torch.Tensor:
        seen[direction] = images
        return translate(m, images, direction, batch)

    monkeypatch.setattr(D, "translate_all", spy)
    out = evaluate(EvalContext(model, DIGITS_VAL, limit=30), ["label_preservation"])["label_preservation"]
    val = load_builtin(DIGITS_VAL)
    for direction, dom in (("a2b", "A"), ("b2a", "B")):
        held = val.split("test", dom)
        pick = torch.linspace(0, len(held) - 1, 30).round().long()
        assert torch.equal(seen[direction], D.source_tensor(held)[pick]), "the held-out part, not the test split"
    assert set(out) == {f"digits/{d}_{k}" for d in ("a2b", "b2a") for k in ("accuracy", "baseline")} | {
        "digits/classifier_a_test_accuracy", "digits/classifier_b_test_accuracy"}, "the metric's keys are unchanged"


def test_per_class_scores_and_confusion_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = tiny_model("nicegan")
    # an identity "translation": every translated image is its input, so it must score exactly the baseline
    monkeypatch.setattr(model, "translate", lambda x, direction: x)
    scores = D.score_directions(model, limit=50)
    assert set(scores) == {"a2b", "b2a"}
    assert (scores["a2b"].confusion().sum(1) == 5).all(), "A's test split is class-sorted: 5 of each digit"
    for sc in scores.values():
        cm, count = sc.confusion(), np.bincount(sc.labels, minlength=10)
        assert cm.shape == (10, 10) and cm.sum() == 50 and (cm.sum(1) == count).all()
        assert (cm == sc.confusion(untranslated=True)).all() and sc.accuracy == sc.baseline
        assert np.allclose(sc.per_class(), np.diag(cm) / count) and sc.accuracy == pytest.approx(np.trace(cm) / 50)
        d = sc.to_dict()
        assert len(d["per_class_accuracy"]) == 10 and d["confusion"] == cm.tolist() and d["count"] == count.tolist()
        json.dumps(d)
    assert D.accuracies(scores) == D.label_preservation(model, limit=50)


def test_latent_mmd_metric_applies_to_latent_models_only() -> None:
    model, _ = tiny_model("nicegan")
    model.train()
    out = evaluate(EvalContext(model, DIGITS, limit=12), ["latent_mmd"])["latent_mmd"]
    assert set(out) == {"latent/mmd2_ab", "latent/mmd2_within_a", "latent/mmd2_within_b"}
    assert all(np.isfinite(v) and v >= 0 for v in out.values())
    assert model.training, "evaluation leaves the model's mode as it was"
    cyclegan, _ = tiny_model("cyclegan")
    assert "latent_mmd" not in evaluate(EvalContext(cyclegan, DIGITS, limit=4), ["label_preservation"])
    with pytest.raises(NiceganError, match="does not apply"):
        evaluate(EvalContext(cyclegan, DIGITS), ["latent_mmd"])
    # a sweep mixing models asks every run for latent_mmd: skipped where it does not apply, unknown names still fail
    ctx = EvalContext(cyclegan, DIGITS, limit=4)
    assert applicable(ctx, ["latent_mmd", "label_preservation"]) == ["label_preservation"]
    assert set(evaluate(ctx, applicable(ctx, ["latent_mmd", "label_preservation"]))) == {"label_preservation"}
    with pytest.raises(NiceganError, match="unknown metric"):
        applicable(ctx, ["latent_mmd", "no_such_metric"])


def test_metrics_declare_whether_they_need_the_inception_extractor() -> None:
    assert needs_extractor(["fid_kid"]) and needs_extractor(["label_preservation", "diversity"])
    assert not needs_extractor(["label_preservation", "latent_mmd", "adaptation_accuracy"]) and not needs_extractor([])
    assert needs_extractor(None), "every metric includes fid_kid"
    with pytest.raises(NiceganError, match="unknown metric"):
        needs_extractor(["no_such_metric"])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("digits") / "run"
    cfg = resolve_config("nicegan-light", TINY + [f"data.root={DIGITS_VAL}", "train.max_steps=1",
                                                  "train.sample_every=0", "train.eval_every=0"])
    start_run(cfg, run, progress=False, tensorboard=False)
    return run


def test_latents_cli_colours_by_class_on_digits(digits_run: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tsne.png"
    assert main(["latents", "--checkpoint", str(digits_run), "-n", "20", "--output", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["coloured_by"] == "class" and res["n_a"] == 20 and res["mmd2_within_b"] >= 0
    with Image.open(out) as im:
        assert im.size == (600, 600)
    model, _, _ = load_model(digits_run)  # the metric on as many images reports the command's numbers
    metric = evaluate(EvalContext(model, DIGITS_VAL, limit=20), ["latent_mmd"])["latent_mmd"]
    assert metric == {f"latent/{k}": pytest.approx(res[k]) for k in ("mmd2_ab", "mmd2_within_a", "mmd2_within_b")}


def test_loss_curves_from_the_training_log(digits_run: Path, tmp_path: Path) -> None:
    from nicegan.experiments.demo import read_train_log, save_loss_curves

    log = tmp_path / "metrics.jsonl"
    log.write_text((digits_run / "metrics.jsonl").read_text() + '{"event": "train", "step": 2, "dis/tot')  # torn
    series = read_train_log(log)
    assert series and all(k.split("/")[0] in {"dis", "gen"} for k in series)
    assert [s for s, _ in series["gen/total"]] == [1]
    assert save_loss_curves(log, tmp_path / "curves.png").stat().st_size > 1000
    assert save_loss_curves(tmp_path / "missing.jsonl", tmp_path / "none.png") is None
