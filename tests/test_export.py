"""Inference bundles and export: round trips per model, no pickle, damage in one line, ONNX and TorchScript graphs
checked against PyTorch, one-direction bundles, and bundles wherever a command takes --checkpoint."""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.deploy.export import DEFAULT_OPSET, export
from nicegan.formats import checkpoint
from nicegan.formats.bundle import CONFIG, WEIGHTS, BundleError
from nicegan.formats.bundle import load as load_bundle
from nicegan.inference import inference_context, load_model
from nicegan.models import list_models
from tests.conftest import tiny_model


def save_checkpoint(name: str, path: Path, *extra: str, run: bool = False) -> Path:
    """A tiny model of ``name`` (seeded differently from a fresh build) saved as a checkpoint file, or as a run
    folder's latest.pt with ``run``."""
    model, cfg = tiny_model(name, *extra, seed=1)
    ck = checkpoint.Checkpoint(model=name, config=cfg.to_dict(), step=3,
                               nets={k: v.state_dict() for k, v in model.nets.items()})
    if run:
        return checkpoint.save(ck, path, numbered=False, keep_last=0).parent.parent
    return checkpoint.write(ck, path)


def translations(model: torch.nn.Module, x: torch.Tensor, direction: str) -> torch.Tensor:
    with inference_context(model), torch.random.fork_rng():
        torch.manual_seed(0)  # multimodal models draw their style codes from torch's generator: the same ones
        return model.translate(x, direction)


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nicegan: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def nicegan_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of a tiny NICE-GAN trained on tiny_data (its config records the dataset), with an evaluation
    of the checkpoint's step in metrics.jsonl."""
    run = save_checkpoint("nicegan", tmp_path_factory.mktemp("run") / "run", f"data.root={tiny_data}", run=True)
    records = [{"event": "train", "step": 3, "gen/total": 1.0},
               {"event": "eval", "step": 3, "fid_a2b": 123.25, "fid_b2a": 99.5, "kid_a2b": float("nan")}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


@pytest.fixture(scope="module")
def nicegan_bundle(nicegan_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "nicegan"
    export(nicegan_run, out)
    return out


@pytest.mark.parametrize("name", list_models())
def test_bundle_round_trip_is_bit_identical(name: str, tmp_path: Path) -> None:
    ckpt = save_checkpoint(name, tmp_path / "model.pt")
    report = export(ckpt, tmp_path / "bundle")
    assert sorted(report.files) == ["README.md", CONFIG, WEIGHTS]
    from_ckpt, cfg, step = load_model(ckpt)
    from_bundle, cfg2, step2 = load_model(tmp_path / "bundle")
    assert (cfg2, step2) == (cfg, step) and from_bundle.directions == ("a2b", "b2a")
    meta = json.loads((tmp_path / "bundle" / CONFIG).read_text())
    assert meta["nets"] == list(from_ckpt.translation_nets()), "no discriminator a translation does not run"
    assert meta["config"] == checkpoint.load(ckpt).config
    size = cfg.model.img_size
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for direction in ("a2b", "b2a"):
        assert torch.equal(translations(from_bundle, x, direction), translations(from_ckpt, x, direction))


def test_nicegan_bundle_keeps_the_encoders_not_the_heads(nicegan_bundle: Path, tiny_data: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    keys = {f"{n}.{k}" for n, state in load_bundle(nicegan_bundle).nets.items() for k in state}
    assert "dis_a.fc.weight_orig" in keys and "dis_b.lamda" in keys
    assert {k.split(".")[1] for k in keys if k.startswith("dis_")} == {"model", "fc", "conv1x1", "lamda"}, \
        "discriminator heads exported"
    model, cfg, _ = load_model(nicegan_bundle)
    x = torch.zeros(1, 3, cfg.model.img_size, cfg.model.img_size)
    with pytest.raises(NiceganError, match=r"no weights for dis_a\.Dis0_.*training checkpoint"):
        model.nets["dis_a"](x)  # the heads would judge with untrained weights
    # The encoders are what the heatmaps analysis runs: it takes the bundle.
    code, _, err = run_cli(["-q", "heatmaps", "--checkpoint", nicegan_bundle, "--input", tiny_data / "testA",
                            "--output", tmp_path / "h.png", "-n", "2"], capsys)
    assert code == 0, err
    assert (tmp_path / "h.png").is_file()


def test_bundles_load_without_pickle(nicegan_bundle: Path, nicegan_run: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    expected, cfg, _ = load_model(nicegan_run)

    def no_pickle(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    for module, attr in ((pickle, "Unpickler"), (pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, attr, no_pickle)
    with pytest.raises(NiceganError, match="pickle used"):
        load_model(nicegan_run)  # the patch bites: checkpoints are torch pickles (the reader wraps the error)
    model, _, _ = load_model(nicegan_bundle)
    x = torch.rand(1, 3, cfg.model.img_size, cfg.model.img_size) * 2 - 1
    assert torch.equal(translations(model, x, "b2a"), translations(expected, x, "b2a"))
    by_file, _, _ = load_model(nicegan_bundle / WEIGHTS)  # a user pointing at the weights file means the bundle
    assert torch.equal(translations(by_file, x, "a2b"), translations(expected, x, "a2b"))


def _flip_weights(b: Path) -> None:
    data = bytearray((b / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0x01
    (b / WEIGHTS).write_bytes(bytes(data))


def _edit_config(**changes: object):
    def edit(b: Path) -> None:
        meta = json.loads((b / CONFIG).read_text())
        meta.update(changes)
        (b / CONFIG).write_text(json.dumps(meta))
    return edit


def _truncate_and_rehash(b: Path) -> None:
    from nicegan.formats.bundle import sha256_file

    data = (b / WEIGHTS).read_bytes()
    (b / WEIGHTS).write_bytes(data[: len(data) // 3])
    meta = json.loads((b / CONFIG).read_text())
    meta["weights"]["sha256"] = sha256_file(b / WEIGHTS)
    (b / CONFIG).write_text(json.dumps(meta))


DAMAGE = {
    "flipped bit": (_flip_weights, "model.safetensors does not match the SHA-256"),
    "no weights": (lambda b: (b / WEIGHTS).unlink(), "incomplete: model.safetensors is missing"),
    "no config": (lambda b: (b / CONFIG).unlink(), "incomplete: config.json is missing"),
    "bad json": (lambda b: (b / CONFIG).write_text('{"format": "nicegan-bundle", '), "config.json is not valid JSON"),
    "foreign json": (lambda b: (b / CONFIG).write_text('{"architectures": ["Bert"]}'), "is not a nicegan bundle"),
    "newer format": (_edit_config(format_version=99), "reads bundle formats up to 1: upgrade nicegan"),
    "no directions": (_edit_config(directions=["sideways"]), "has no valid directions"),
    "nets mismatch": (_edit_config(nets=["gen_a2b"]), "belongs to no net listed in config.json"),
    "truncated, rehashed": (_truncate_and_rehash, "model.safetensors is not a readable safetensors file"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_bundles_fail_in_one_line(damage: str, nicegan_bundle: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(nicegan_bundle, broken)
    hurt, message = DAMAGE[damage]
    hurt(broken)
    code, _, err = run_cli(["translate", "--checkpoint", broken, "--input", tmp_path, "--output", tmp_path / "out",
                            "--direction", "a2b", "--device", "cpu"], capsys)
    assert code == 2
    assert message in one_line_error(err)
    with pytest.raises(BundleError):
        load_bundle(broken)


def test_translate_with_a_one_direction_bundle(nicegan_run: Path, tiny_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    bundle = tmp_path / "a2b"
    code, out, err = run_cli(["export", nicegan_run, "--out", bundle, "--direction", "a2b"], capsys)
    assert code == 0, err
    assert "a2b," in out and "model.safetensors" in out
    meta = json.loads((bundle / CONFIG).read_text())
    assert meta["directions"] == ["a2b"] and meta["nets"] == ["gen_a2b", "dis_a"]
    # translate end to end: the same PNG bytes as the checkpoint's
    outputs = {}
    for name, source in (("ckpt", nicegan_run), ("bundle", bundle)):
        code, _, err = run_cli(["-q", "translate", "--checkpoint", source, "--input", tiny_data / "testA",
                                "--output", tmp_path / name, "--direction", "a2b", "--device", "cpu",
                                "--no-progress"], capsys)
        assert code == 0, err
        outputs[name] = {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*.png")}
    assert outputs["bundle"] and outputs["bundle"] == outputs["ckpt"]
    # the other direction: one line, before or during translation, and from the model object
    code, _, err = run_cli(["translate", "--checkpoint", bundle, "--input", tiny_data / "testB", "--output",
                            tmp_path / "b2a", "--direction", "b2a", "--device", "cpu", "--no-progress"], capsys)
    assert code == 2 and "exported for a2b only" in one_line_error(err)
    model, _, _ = load_model(bundle)
    assert model.directions == ("a2b",)
    assert model.require_direction("a2b") == "a2b"
    with pytest.raises(NiceganError, match="exported for a2b only and cannot translate b2a"):
        model.require_direction("b2a")
    with pytest.raises(NiceganError, match=r"no weights for dis_b \(needed for b2a\)"):
        model.encode(torch.zeros(1, 3, 32, 32), "b")
    code, _, err = run_cli(["export", bundle, "--out", tmp_path / "both"], capsys)
    assert code == 2 and "exported for a2b only; it cannot be exported for b2a" in one_line_error(err)


def test_onnx_export_checked_against_pytorch(nicegan_bundle: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    import onnx
    import onnxruntime as ort

    out = tmp_path / "onnx"
    code, printed, err = run_cli(["export", nicegan_bundle, "--out", out, "--format", "onnx", "--direction", "a2b"],
                                 capsys)
    assert code == 0, err
    assert f"onnx opset {DEFAULT_OPSET}; dynamic axes: batch, height, width" in printed
    assert "check a2b real image" in printed and "testA/img_00.png" in printed, "the run's test image is used"
    assert printed.count("max abs difference") == 3 and "model_a2b.onnx" in printed
    meta = json.loads((out / CONFIG).read_text())
    entry = meta["exports"]["model_a2b.onnx"]
    assert entry["opset"] == DEFAULT_OPSET and max(c["max_abs_diff"] for c in entry["checks"]) <= 1e-4
    graph = onnx.load(str(out / "model_a2b.onnx"))
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    # Independently of the export's own checks: another batch and a non-square size than any it used.
    model, _, _ = load_model(out)
    x = torch.rand(3, 3, 40, 56, generator=torch.Generator().manual_seed(5)) * 2 - 1
    session = ort.InferenceSession(str(out / "model_a2b.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["output"], {"input": x.numpy()})[0]
    expected = translations(model, x, "a2b").clamp(-1, 1).numpy()
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
    assert "model_a2b.onnx" in (out / "README.md").read_text()


def test_fixed_size_models_export_a_dynamic_batch_only(tmp_path: Path) -> None:
    # The full U-GAT-IT generator flattens its training-size feature map into a fully connected layer.
    ckpt = save_checkpoint("ugatit", tmp_path / "full.pt", "model.light=false")
    report = export(ckpt, tmp_path / "out", direction="b2a", fmt="onnx")
    assert not report.dynamic_size and report.opset == DEFAULT_OPSET
    assert [c.shape for c in report.checks] == [(2, 3, 32, 32), (1, 3, 32, 32), (3, 3, 32, 32)]
    assert "synthetic smooth image" in report.checks[1].what, "no dataset recorded: a synthetic image is used"
    assert max(c.max_abs_diff for c in report.checks) <= 1e-4
    assert "height and width fixed at the training size" in "\n".join(report.summary_lines())


def test_torchscript_export_is_verified(tmp_path: Path) -> None:
    ckpt = save_checkpoint("cyclegan", tmp_path / "c.pt")
    report = export(ckpt, tmp_path / "ts", direction="a2b", fmt="torchscript")
    assert "model_a2b.pt" in report.files and report.dynamic_size
    assert len(report.checks) == 3 and max(c.max_abs_diff for c in report.checks) <= 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        graph = torch.jit.load(str(tmp_path / "ts" / "model_a2b.pt"))
    model, _, _ = load_model(ckpt)
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(graph(x), translations(model, x, "a2b").clamp(-1, 1), atol=1e-5)


def test_a_graph_over_the_tolerance_fails_the_export(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = save_checkpoint("cyclegan", tmp_path / "c.pt")
    code, _, err = run_cli(["-q", "export", ckpt, "--out", tmp_path / "out", "--format", "onnx", "--direction", "b2a",
                            "--tolerance", "1e-12"], capsys)
    assert code == 2
    assert "the onnx graph of b2a differs from PyTorch by" in one_line_error(err)
    assert "over the tolerance 1e-12); nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_cogan_is_refused_as_a_graph(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt = save_checkpoint("cogan", tmp_path / "cogan.pt")
    code, _, err = run_cli(["export", ckpt, "--out", tmp_path / "out", "--format", "onnx"], capsys)
    assert code == 2
    assert "optimising a latent code for each image" in one_line_error(err)
    assert not (tmp_path / "out").exists()


def test_export_replaces_bundles_only(nicegan_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    code, _, err = run_cli(["export", nicegan_bundle, "--out", taken], capsys)
    assert code == 2 and "refusing to overwrite" in one_line_error(err)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    code, _, err = run_cli(["export", nicegan_bundle, "--out", nicegan_bundle], capsys)
    assert code == 2 and "would replace the model being exported" in one_line_error(err)
    again = tmp_path / "again"
    assert run_cli(["export", nicegan_bundle, "--out", again, "--direction", "b2a"], capsys)[0] == 0
    (again / "model_b2a.onnx").write_text("a file of the earlier export")
    assert run_cli(["export", nicegan_bundle, "--out", again, "--direction", "a2b"], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "taken"], "no temporary folder left"
    assert sorted(p.name for p in again.iterdir()) == ["README.md", CONFIG, WEIGHTS], "the old bundle was replaced"
    assert load_bundle(again).directions == ("a2b",)


def test_the_card_says_what_the_model_is(nicegan_bundle: Path, nicegan_run: Path, tiny_data: Path) -> None:
    card = (nicegan_bundle / "README.md").read_text()
    for expected in ("`nicegan`", str(tiny_data), "3 of", "32 px", "fid_a2b 123.2", "fid_b2a 99.5",
                     "nicegan translate --checkpoint BUNDLE", "Translator.load"):
        assert expected in card, expected
    meta = json.loads((nicegan_bundle / CONFIG).read_text())
    assert meta["metrics"]["eval"] == {"step": 3, "fid_a2b": 123.25, "fid_b2a": 99.5}, "NaN left out"
    ck = checkpoint.load(nicegan_run)
    assert meta["source"]["content_sha256"] == ck.to_payload()[checkpoint.HASH_KEY]
    assert meta["source"]["checkpoint"] == str(checkpoint.latest_checkpoint(nicegan_run))


def test_commands_needing_training_state_refuse_bundles(nicegan_bundle: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(["resume", nicegan_bundle], capsys)
    assert code == 2 and "is an inference bundle" in one_line_error(err)
