"""The command line end to end on tiny data: train -> resume -> translate -> demo, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from nicegan.cli import main
from nicegan.formats.checkpoint import load as load_checkpoint
from tests.conftest import TINY


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["-q", "train", "--data", str(tiny_data), "--run-dir", str(run), "--max-steps", "4", "--stop-at", "2",
                 "--no-progress", "--set", *TINY]) == 0
    assert load_checkpoint(run).step == 2
    assert main(["-q", "resume", str(run), "--no-progress"]) == 0
    return run


def test_train_then_resume_reaches_max_steps(trained_run: Path) -> None:
    ckpt = load_checkpoint(trained_run)
    assert ckpt.step == 4 and ckpt.model == "nicegan"
    cfg = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert cfg["model"]["ch"] == 4 and cfg["train"]["max_steps"] == 4
    steps = [json.loads(x)["step"] for x in (trained_run / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["event"] == "train"]
    assert steps == [1, 2, 3, 4], "the resumed run appends to the same log"


def test_translate_folder_keeps_names_and_sizes(trained_run: Path, tiny_data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(["translate", "--checkpoint", str(trained_run), "--input", str(tiny_data / "trainA"),
                            "--output", str(out), "--direction", "a2b", "--no-progress", "--batch-size", "3"], capsys)
    assert code == 0, err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    expected = sorted(p.relative_to(tiny_data / "trainA").with_suffix(".png").as_posix()
                      for p in (tiny_data / "trainA").rglob("*.png"))
    assert written == expected and "nested/deeper/img_00.png" in written
    # the 40 x 36 inputs keep their aspect ratio (the shorter side becomes the training size, 32), squares are 32
    assert {w: size_of(out / w) for w in written} == {w: (32, 32) if "nested" in w else (36, 32) for w in written}
    assert "were not square: translated whole with their aspect ratio kept (shorter side 32 px)" in err

    kept = tmp_path / "kept"
    code, _, err = run_cli(["translate", "--checkpoint", str(trained_run / "checkpoints" / "latest.pt"),
                            "--input", str(tiny_data / "trainB"), "--output", str(kept), "--direction", "b2a",
                            "--keep-size", "--heatmap", "--no-progress"], capsys)
    assert code == 0, err
    assert size_of(kept / "photo.png") == (44, 30), "--keep-size restores the input size"
    assert size_of(kept / "photo_heatmap.png") == (44, 30)
    assert len(list(kept.glob("*_heatmap.png"))) == 6


def test_translate_matches_the_model_in_memory(trained_run: Path, tiny_data: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    from nicegan.data.images import load_rgb
    from nicegan.data.transforms import tensor_to_uint8, test_transform
    from nicegan.inference import load_model

    src = tiny_data / "trainA" / "nested" / "deeper" / "img_01.png"  # a square (non-squares keep their aspect)
    assert run_cli(["translate", "--checkpoint", str(trained_run), "--input", str(src), "--output",
                    str(tmp_path), "--direction", "a2b", "--size", "16"], capsys)[0] == 0
    model, _, _ = load_model(trained_run)
    with torch.no_grad():
        y = model.translate(test_transform(load_rgb(src), 16)[None], "a2b").clamp(-1, 1)[0]
    with Image.open(tmp_path / "img_01.png") as im:
        saved = np.asarray(im)
    assert saved.shape == (16, 16, 3)
    assert np.abs(saved.astype(int) - tensor_to_uint8(y).astype(int)).max() == 0


@pytest.fixture(scope="module")
def stopped_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny demo run stopped by --stop-at at step 2 of 3 (its report is of step 2), and what it logged."""
    import contextlib
    import io

    run = tmp_path_factory.mktemp("demo") / "demo run"  # a space: suggested commands must quote it
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["demo", "--run-dir", str(run), "--max-steps", "3", "--stop-at", "2", "--no-progress", "--set",
                     "model.ch=4", "model.n_res=1", "train.batch_size=4", "train.log_every=1"])
    assert code == 0, err.getvalue()
    return run, err.getvalue()


def test_demo_with_a_step_cap(stopped_demo: tuple[Path, str]) -> None:
    from nicegan.experiments.demo import IMAGE_SCALE

    run, err = stopped_demo
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["step"] == 2
    m = report["metrics"]
    for key in ("a2b_accuracy", "a2b_baseline", "b2a_accuracy", "b2a_baseline"):
        assert 0.0 <= m[f"digits/{key}"] <= 1.0
    assert m["digits/classifier_a_test_accuracy"] > 0.9 and m["digits/classifier_b_test_accuracy"] > 0.85
    for name in ("translations_a2b", "translations_b2a", "heatmaps_a2b", "heatmaps_b2a", "confusion_a2b",
                 "confusion_b2a", "classes_a2b", "classes_b2a", "loss_curves"):
        assert size_of(run / "report" / f"{name}.png")[0] > 100
        assert report["images"][name] == f"report/{name}.png"
    # the grids' 32 px digits are shown at 96 px (nearest-neighbour upscaling): readable without zooming
    assert IMAGE_SCALE * 32 >= 96
    grid_px = lambda cols, rows: (IMAGE_SCALE * (cols * 34 + 2), IMAGE_SCALE * (rows * 34 + 2))  # 32 px + 2 px pad
    assert size_of(run / "report" / "classes_a2b.png") == grid_px(8, 10), "a row per digit, 4 (input, output) pairs"
    assert size_of(run / "report" / "translations_b2a.png") == grid_px(16, 2)
    assert size_of(run / "report" / "heatmaps_a2b.png") == grid_px(8, 5)
    for direction, n in (("a2b", 1000), ("b2a", 359)):
        per = report["per_class"][direction]
        assert len(per["per_class_accuracy"]) == 10 and np.asarray(per["confusion"]).sum() == n
    assert report["latent"]["mmd2_ab"] >= 0 and report["latent"]["mmd2_within_a"] >= 0
    md = (run / "report" / "report.md").read_text()
    assert "Label preservation" in md and "translations_a2b.png" in md
    assert "chance level, 10 %" in md and "### Per class" in md and "confusion_b2a.png" in md
    assert "loss_curves.png" in md and "MMD^2" in md
    threads = report["torch_threads"]
    assert f"({threads} thread{'s' if threads != 1 else ''})." in md
    assert str(run / "report" / "report.md") in err


def test_demo_report_pluralises_one_thread() -> None:
    from nicegan.experiments.demo import _markdown

    p = {"metrics": {f"digits/{d}_{k}": 0.5 for d in ("a2b", "b2a") for k in ("accuracy", "baseline")},
         "step": 1000, "train_seconds": 60.0, "device": "cpu", "torch_threads": 1, "images": {}, "max_steps": 1000}
    md = _markdown(p, {}, Path("run"))
    assert "1,000 steps in 60 s on cpu (1 thread)." in md and "stopped" not in md


def test_demo_stopped_early_says_where_and_how_to_continue(stopped_demo: tuple[Path, str]) -> None:
    import shlex

    run, err = stopped_demo
    last = err.strip().splitlines()[-1]
    assert last == f"stopped at step 2 of 3; continue with: nicegan resume {shlex.quote(str(run))}", err
    report = json.loads((run / "report" / "report.json").read_text())
    assert report["stopped"] == last and report["max_steps"] == 3
    md = (run / "report" / "report.md").read_text()
    assert "**Training was stopped early**, at step 2 of 3: this report is of that step." in md


def test_demo_report_commands_run_as_written(stopped_demo: tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    """Every `nicegan ...` command the report suggests parses as written; the cheap ones run (resume last: it
    changes the run)."""
    import re
    import shlex

    from nicegan.cli import build_parser

    run, _ = stopped_demo
    md = (run / "report" / "report.md").read_text()
    commands = [shlex.split(c) for c in re.findall(r"`(nicegan [^`]+)`", md.replace("\n", " "))]
    names = {c[1] for c in commands}
    assert {"latents", "resume"} <= names, commands
    for c in commands:
        build_parser().parse_args(c[1:])  # SystemExit (a failing test) on any usage error
    for c in sorted(commands, key=lambda c: c[1] == "resume"):
        code, _, err = run_cli(c[1:] + (["--no-progress"] if c[1] == "resume" else []), capsys)
        assert code == 0, (c, err)
    assert (run / "report" / "latents.png").is_file()
    assert load_checkpoint(run).step == 3, "resume continued the stopped demo run to its max_steps"


def test_train_stopped_early_says_where_and_how_to_continue(tiny_data: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", str(tiny_data), "--run-dir", str(run), "--max-steps", "3",
                            "--stop-at", "1", "--no-progress", "--set", *TINY], capsys)
    assert code == 0, err
    assert err.strip().splitlines()[-1] == f"stopped at step 1 of 3; continue with: nicegan resume {run}", err


def test_dry_run_prints_the_resolved_config(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--data", "builtin:digits", "--dry-run", "--set", "model.ch=8"], capsys)
    assert code == 0
    cfg = yaml.safe_load(out)
    assert cfg["model"]["ch"] == 8 and cfg["model"]["img_size"] == 32 and cfg["data"]["root"] == "builtin:digits"
    code, out, _ = run_cli(["train", "--data", "/some/where", "--dry-run", "--max-steps", "7", "--seed", "3"], capsys)
    cfg = yaml.safe_load(out)
    assert cfg["model"]["img_size"] == 256 and cfg["train"]["max_steps"] == 7 and cfg["train"]["seed"] == 3


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "/no/such/folder", "--run-dir", "{tmp}/r"], "data folder not found: /no/such/folder"),
    (["train", "--data", "builtin:digits", "--run-dir", "{tmp}/r", "--set", "model.ch=zero"],
     "model.ch must be an integer"),
    (["train", "--data", "builtin:digits"], "--run-dir is required"),
    (["train", "--data", "{tmp}", "--run-dir", "{tmp}/r", "--config", "nosuch"], "no preset or config file"),
    (["train", "--data", "{tmp}", "--run-dir", "{tmp}/r"], "domain folder missing"),
    (["resume", "{tmp}/nothing"], "run folder not found"),
    (["translate", "--checkpoint", "{tmp}/none.pt", "--input", "{tmp}", "--output", "{tmp}/o", "--direction", "a2b"],
     "checkpoint not found"),
    (["translate", "--checkpoint", "{tmp}/text.pt", "--input", "{tmp}", "--output", "{tmp}/o", "--direction", "a2b"],
     "not a PyTorch checkpoint"),
    (["import-official", "{tmp}/text.pt", "--out", "{tmp}/x.pt"], "not a PyTorch checkpoint"),
])
def test_user_errors_are_one_line(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "text.pt").write_text("hello")
    code, out, err = run_cli([a.replace("{tmp}", str(tmp_path)) for a in args], capsys)
    assert code == 2
    lines = [x for x in err.strip().splitlines() if x.startswith("nicegan: error")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_translate_errors(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_bytes(b"")
    code, _, err = run_cli(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "in"),
                            "--output", str(tmp_path / "o"), "--direction", "a2b"], capsys)
    assert code == 2 and "no usable images" in err and "skipping" in err
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    code, _, err = run_cli(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "in"),
                            "--output", str(tmp_path / "in"), "--direction", "a2b"], capsys)
    assert code == 2 and "refusing to overwrite the input image" in err
    assert (tmp_path / "in" / "a.png").stat().st_size > 0
    code, _, err = run_cli(["translate", "--checkpoint", str(trained_run), "--input", str(tmp_path / "in"),
                            "--output", str(tmp_path / "o"), "--direction", "a2b", "--size", "30"], capsys)
    assert code == 2 and "multiple of 4" in err


def test_console_script_and_module_entry_points() -> None:
    r = subprocess.run([sys.executable, "-m", "nicegan", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("nicegan ")
    script = Path(sys.executable).with_name("nicegan")
    if script.exists():
        r = subprocess.run([str(script), "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "translate" in r.stdout


def test_models_command(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["models", "--json"], capsys)
    rows = {r["model"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"nicegan", "ugatit", "cyclegan", "unit", "cogan", "munit", "drit"}
    assert rows["nicegan"]["total"] == 109_958_146 and "nicegan-light" in rows["nicegan"]["presets"]
    assert rows["munit"]["total"] == 46_594_716 and rows["drit"]["total"] == 65_039_315
    assert rows["ugatit"]["parameters"]["gen_a2b"] == 10_589_888
    code, out, _ = run_cli(["models", "--img-size", "128", "--full", "--json"], capsys)
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows["nicegan"]["total"] == 244_044_802  # official count, full generator at 128 px
    assert rows["ugatit"]["parameters"]["gen_a2b"] == 77_633_216
    code, out, _ = run_cli(["models", "--img-size", "64"], capsys)
    assert code == 0 and "not buildable at this size" in out, "n_dis 7 cannot run at 64 px, as in the official code"


def test_fast_path_flags_reach_the_config(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["train", "--data", "builtin:digits", "--dry-run", "--amp", "bf16", "--channels-last",
                            "--fused-adam", "--compile", "--cudnn-benchmark"], capsys)
    t = yaml.safe_load(out)["train"]
    assert code == 0 and t["amp"] == "bf16" and t["channels_last"] and t["fused_adam"] and t["compile"]
    assert t["cudnn_benchmark"]
    code, out, _ = run_cli(["train", "--data", "builtin:digits", "--dry-run"], capsys)
    t = yaml.safe_load(out)["train"]
    assert t["amp"] == "none" and not t["channels_last"], "off by default"
