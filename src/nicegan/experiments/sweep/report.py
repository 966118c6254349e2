"""A sweep's results: ``results.csv`` (one row per run and step), ``results.json`` and ``results.md`` (mean, std
and a 95 % t-interval over seeds per variant, step and metric), and one PNG plot per metric (metric vs step, one
line per variant: the mean over seeds, with the 95 % t-interval as a band).

Everything is read back from the run folders' evaluation files, so ``--report-only`` gives the same tables as the
end of a sweep, and a sweep still running can be reported on.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nicegan.core.limits import RECORD_BOUNDS, read_json_file
from nicegan.experiments.sweep.jobs import FAILED, RunSpec, read_eval

CONFIDENCE = 0.95


@dataclass
class Stat:
    """Mean, sample standard deviation and two-sided t-interval of the values over seeds."""

    n: int
    mean: float
    std: float | None  # None for n = 1
    lo: float | None  # the interval; None for n = 1
    hi: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": _finite(self.mean), "std": _finite(self.std),
                "ci95": None if self.lo is None else [_finite(self.lo), _finite(self.hi)]}

    def cell(self) -> str:
        if self.std is None:
            return f"{self.mean:.4g} (n=1)"
        return f"{self.mean:.4g} ± {self.std:.2g} [{self.lo:.4g}, {self.hi:.4g}]"


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def stat(values: list[float]) -> Stat:
    """:class:`Stat` of ``values`` (std with n - 1; interval mean +- t(0.975, n - 1) * std / sqrt(n))."""
    from scipy import stats

    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Stat(n, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * std / math.sqrt(n)
    return Stat(n, mean, std, mean - half, mean + half)


@dataclass
class Collected:
    """The evaluations found for a sweep's runs, and the state of each run."""

    rows: list[dict[str, Any]]  # variant, seed, step, then metric -> value
    metrics: list[str]
    runs: list[dict[str, Any]]  # variant, seed, status (done | failed | incomplete | not started), error


def collect(specs: list[RunSpec]) -> Collected:
    rows, runs, names = [], [], set()
    for spec in specs:
        done = 0
        for step in spec.eval_steps:
            rec = read_eval(spec.run_dir, step)
            if rec is None:
                continue
            done += 1
            values = {k: float(v) for k, v in rec["metrics"].items() if isinstance(v, (int, float))}
            names.update(values)
            rows.append({"variant": spec.variant, "seed": spec.seed, "step": step, **values})
        error = None
        with contextlib.suppress(OSError, ValueError, AttributeError):  # no failure recorded (or unreadable)
            error = read_json_file(Path(spec.run_dir) / FAILED, **RECORD_BOUNDS).get("error")
        status = ("failed" if error else "done" if done == len(spec.eval_steps) else
                  "incomplete" if done or Path(spec.run_dir).exists() else "not started")
        runs.append({"variant": spec.variant, "seed": spec.seed, "status": status, "evaluated_steps": done,
                     "error": error})
    return Collected(rows, sorted(names), runs)


def summarise(col: Collected, variants: list[str], steps: list[int]) -> dict[str, dict[int, dict[str, Stat]]]:
    """variant -> step -> metric -> :class:`Stat` over the seeds that have that value."""
    out: dict[str, dict[int, dict[str, Stat]]] = {}
    for v in variants:
        for s in steps:
            rows = [r for r in col.rows if r["variant"] == v and r["step"] == s]
            cells = {m: stat([r[m] for r in rows if m in r]) for m in col.metrics if any(m in r for r in rows)}
            if cells:
                out.setdefault(v, {})[s] = cells
    return out


def write_csv(col: Collected, path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variant", "seed", "step", *col.metrics])
        for r in col.rows:
            w.writerow([r["variant"], r["seed"], r["step"], *(repr(r[m]) if m in r else "" for m in col.metrics)])


def _md_table(summary: dict[str, dict[int, dict[str, Stat]]], variants: list[str], metrics: list[str],
              step: int) -> list[str]:
    lines = ["| variant | n | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for v in variants:
        cells = summary.get(v, {}).get(step)
        if not cells:
            lines.append(f"| {v} | 0 | " + " | ".join("" for _ in metrics) + " |")
            continue
        n = max(c.n for c in cells.values())
        text = [cells[m].cell() + (f" (n={cells[m].n})" if cells[m].n != n and cells[m].n > 1 else "")
                if m in cells else "" for m in metrics]
        lines.append(f"| {v} | {n} | " + " | ".join(text) + " |")
    return lines


def write_markdown(meta: dict[str, Any], col: Collected, summary: dict[str, dict[int, dict[str, Stat]]],
                   variants: list[str], steps: list[int], plots: dict[str, str], path: Path) -> None:
    lines = [f"# Sweep {meta['name']}", ""]
    if meta.get("description"):
        lines += [meta["description"].strip(), ""]
    seeds = ", ".join(map(str, meta["seeds"]))
    metrics = ", ".join(meta["metrics"]) if meta["metrics"] else "every one that applies"
    limit = f" (at most {meta['eval_limit']} test images per direction)" if meta["eval_limit"] else ""
    final = meta.get("final_metrics") or []
    if final:
        flimit = meta.get("final_eval_limit")
        limit += (f"; at the last step also {', '.join(final)}"
                  + (f" (at most {flimit} test images per direction)" if flimit else ""))
    lines += [f"Data `{meta['data']}`, {meta['steps']} steps per run, evaluated at steps "
              f"{', '.join(map(str, steps))}; seeds {seeds}; metrics: {metrics}{limit}.",
              "",
              "Each cell: mean ± standard deviation over seeds [95 % t-interval of the mean: mean ± t(0.975, n-1) "
              "· std / √n]; n is the number of seeds evaluated at that step (a cell with another n says so).", ""]
    for k, step in enumerate(reversed(steps)):
        lines += [f"## Step {step}{' (final)' if k == 0 else ''}", "", *_md_table(summary, variants, col.metrics,
                                                                                    step), ""]
    if plots:
        lines += ["## Plots", "", "Metric vs step, one line per variant (the mean over seeds), the band the 95 % "
                  "t-interval over seeds (none where only one seed was evaluated).", ""]
        lines += [f"- {m}: [{p}]({p})" for m, p in plots.items()] + [""]
    failed = [r for r in col.runs if r["status"] == "failed"]
    open_runs = [r for r in col.runs if r["status"] in ("incomplete", "not started")]
    if failed:
        lines += ["## Failed runs", ""] + [f"- {r['variant']} seed {r['seed']}: {r['error']}" for r in failed] + [""]
    if open_runs:
        lines += ["## Unfinished runs", ""]
        lines += [f"- {r['variant']} seed {r['seed']}: {r['status']} ({r['evaluated_steps']} of {len(steps)} "
                  "evaluations)" for r in open_runs] + [""]
    path.write_text("\n".join(lines))


def _file_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric).strip("_") or "metric"


def write_plots(summary: dict[str, dict[int, dict[str, Stat]]], variants: list[str], metrics: list[str],
                folder: Path, title: str) -> dict[str, str]:
    """One PNG per metric; returns metric -> path relative to the sweep folder."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: the process's matplotlib backend stays as it was

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for m in metrics:
        fig = Figure(figsize=(7, 4.2), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for v in variants:
            points = sorted((s, c[m]) for s, c in summary.get(v, {}).items() if m in c)
            if not points:
                continue
            xs = [s for s, _ in points]
            line = ax.plot(xs, [c.mean for _, c in points], marker="o", label=v)[0]
            band = [(s, c.lo, c.hi) for s, c in points if c.lo is not None]
            if band:
                ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                                color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel("step")
        ax.set_ylabel(m)
        ax.set_title(f"{title}: {m} (band: 95 % t-interval over seeds)", fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        name = f"{_file_name(m)}.png"
        fig.savefig(folder / name)
        out[m] = f"{folder.name}/{name}"
    return out


def write_report(meta: dict[str, Any], specs: list[RunSpec], out: Path) -> Collected:
    """Write results.csv / .json / .md and plots/ into ``out``; returns what was found."""
    variants = list(dict.fromkeys(s.variant for s in specs))
    steps = list(meta["eval_steps"])
    col = collect(specs)
    summary = summarise(col, variants, steps)
    write_csv(col, out / "results.csv")
    plots = write_plots(summary, variants, col.metrics, out / "plots", meta["name"]) if col.rows else {}
    rows = [{k: _finite(v) if isinstance(v, float) else v for k, v in r.items()} for r in col.rows]
    payload = {"sweep": meta, "confidence": CONFIDENCE, "runs": col.runs, "rows": rows,
               "summary": {v: {str(s): {m: c.to_dict() for m, c in cells.items()} for s, cells in by_step.items()}
                           for v, by_step in summary.items()},
               "plots": plots}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=_json_default,
                                                 allow_nan=False) + "\n")
    write_markdown(meta, col, summary, variants, steps, plots, out / "results.md")
    return col


def _json_default(x: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
