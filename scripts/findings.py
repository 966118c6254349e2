"""The "paper's findings" tables of docs/results.md and the decoupled-training plot, from the results.json of
the shipped sweeps.

    nicegan sweep digits-tuning --out sweeps/tuning --parallel 2
    nicegan sweep digits-main --out sweeps/main --parallel 2
    nicegan sweep digits-ablation --out sweeps/ablation --parallel 2
    python scripts/findings.py --tuning sweeps/tuning --main sweeps/main --ablation sweeps/ablation \
        --plot docs/findings/decoupled.png

Prints markdown tables (each cell: mean ± std over seeds, the 95 % t-interval below in the JSON) and writes the plot
of the decoupled-training analysis: label preservation and latent MMD vs step for encoder_updates decoupled /
generator / both, the band being the 95 % t-interval over seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

A2B, B2A = "digits/a2b_accuracy", "digits/b2a_accuracy"
MMD, WITHIN_A, WITHIN_B = "latent/mmd2_ab", "latent/mmd2_within_a", "latent/mmd2_within_b"
DECOUPLED = {"default": "decoupled (the paper)", "encoder-updates-generator": "generator",
             "encoder-updates-both": "both"}


def load(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


def final(res: dict[str, Any]) -> str:
    return str(res["sweep"]["eval_steps"][-1])


def cell(res: dict[str, Any], variant: str, metric: str, step: str | None = None, pct: bool = False,
         digits: int = 3) -> str:
    c = res["summary"].get(variant, {}).get(step or final(res), {}).get(metric)
    if c is None:
        return "-"
    k = 100 if pct else 1
    if c["std"] is None:
        return f"{k * c['mean']:.{1 if pct else digits}f} (n=1)"
    if pct:
        return f"{k * c['mean']:.1f} ± {k * c['std']:.1f}"
    return f"{c['mean']:.{digits}g} ± {c['std']:.2g}"


def mean(res: dict[str, Any], variant: str, metric: str, step: str | None = None) -> float | None:
    c = res["summary"].get(variant, {}).get(step or final(res), {}).get(metric)
    return None if c is None else c["mean"]


def tuning_table(res: dict[str, Any]) -> list[str]:
    variants = res["sweep"]["variants"]
    models = list(dict.fromkeys(v.split("_lr=")[0] for v in variants))
    lrs = list(dict.fromkeys(v.split("_lr=")[1] for v in variants))
    lines = ["| model | " + " | ".join(f"lr {lr}: A->B / B->A" for lr in lrs) + " | chosen lr |",
             "|---|" + "---|" * (len(lrs) + 1)]
    for m in models:
        scores = {}
        cells = []
        for lr in lrs:
            a, b = mean(res, f"{m}_lr={lr}", A2B), mean(res, f"{m}_lr={lr}", B2A)
            if a is None or b is None:
                cells.append("-")
                continue
            scores[lr] = (a + b) / 2
            cells.append(f"{100 * a:.1f} / {100 * b:.1f}")
        best = max(scores, key=scores.get) if scores else "-"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {best} |")
    return lines


def main_table(res: dict[str, Any]) -> list[str]:
    lines = ["| model | A->B % | B->A % | FID A->B | FID B->A | KID x100 A->B | KID x100 B->A | latent MMD^2 A vs B "
             "(within A / B) | diversity A->B / B->A |", "|---|---|---|---|---|---|---|---|---|"]
    for v in res["sweep"]["variants"]:
        mmd = cell(res, v, MMD)
        if mmd != "-":
            mmd += f" ({cell(res, v, WITHIN_A, digits=2)} / {cell(res, v, WITHIN_B, digits=2)})"
        diversity = cell(res, v, "eval/diversity_a2b")
        if diversity != "-":
            diversity += f" / {cell(res, v, 'eval/diversity_b2a')}"
        lines.append(f"| {v} | {cell(res, v, A2B, pct=True)} | {cell(res, v, B2A, pct=True)} | "
                     f"{cell(res, v, 'eval/fid_a2b', digits=4)} | {cell(res, v, 'eval/fid_b2a', digits=4)} | "
                     f"{cell(res, v, 'eval/kid_x100_a2b')} | {cell(res, v, 'eval/kid_x100_b2a')} | {mmd} | "
                     f"{diversity} |")
    first = res["sweep"]["variants"][0]
    base_a, base_b = mean(res, first, "digits/a2b_baseline"), mean(res, first, "digits/b2a_baseline")
    if base_a is not None and base_b is not None:
        lines.append(f"| untranslated test images (the domain gap) | {100 * base_a:.1f} | {100 * base_b:.1f} | "
                     "| | | | | |")
    return lines


def ablation_table(res: dict[str, Any]) -> list[str]:
    steps = [str(s) for s in res["sweep"]["eval_steps"]]
    lines = ["| variant | " + " | ".join(f"A->B % @{s}" for s in steps) + " | "
             + " | ".join(f"B->A % @{s}" for s in steps) + " | latent MMD^2 A vs B (within A / B) |",
             "|---|" + "---|" * (2 * len(steps) + 1)]
    for v in res["sweep"]["variants"]:
        a = " | ".join(cell(res, v, A2B, s, pct=True) for s in steps)
        b = " | ".join(cell(res, v, B2A, s, pct=True) for s in steps)
        mmd = cell(res, v, MMD)
        if mmd != "-":
            mmd += f" ({cell(res, v, WITHIN_A, digits=2)} / {cell(res, v, WITHIN_B, digits=2)})"
        lines.append(f"| {v} | {a} | {b} | {mmd} |")
    return lines


def decoupled_plot(res: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for k, (metric, label) in enumerate([(A2B, "A->B label preservation"), (B2A, "B->A label preservation"),
                                         (MMD, "latent MMD^2, A vs B codes")]):
        ax = fig.add_subplot(1, 3, k + 1)
        for v, name in DECOUPLED.items():
            by_step = res["summary"].get(v, {})
            pts = sorted((int(s), c[metric]) for s, c in by_step.items() if metric in c)
            if not pts:
                continue
            xs = [s for s, _ in pts]
            line = ax.plot(xs, [c["mean"] for _, c in pts], marker="o", label=name)[0]
            band = [(s, c["ci95"]) for s, c in pts if c["ci95"] is not None]
            if band:
                ax.fill_between([s for s, _ in band], [ci[0] for _, ci in band], [ci[1] for _, ci in band],
                                color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_xlabel("step")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(title="encoder updates", fontsize=8, title_fontsize=8)
    seeds = ", ".join(map(str, res["sweep"]["seeds"]))
    fig.suptitle(f"Decoupled training on builtin:digits (NICE-GAN digits preset, seeds {seeds}; band: 95 % "
                 "t-interval)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tuning", type=Path)
    p.add_argument("--main", type=Path)
    p.add_argument("--ablation", type=Path)
    p.add_argument("--plot", type=Path, help="where to write the decoupled-training plot (PNG)")
    args = p.parse_args()
    for title, folder, table in (("Tuning (builtin:digits-val)", args.tuning, tuning_table),
                                 ("Main table (builtin:digits test split)", args.main, main_table),
                                 ("Ablation (builtin:digits test split)", args.ablation, ablation_table)):
        if folder is None:
            continue
        res = load(folder)
        print(f"## {title}, step {final(res)}\n")
        print("\n".join(table(res)) + "\n")
    if args.plot and args.ablation:
        decoupled_plot(load(args.ablation), args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
