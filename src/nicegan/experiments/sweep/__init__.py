"""``nicegan sweep``: a grid of runs (variants x seeds) on one dataset with a step budget, each evaluated at fixed
steps, resumable, run in this process, in parallel local processes or on a Slurm cluster (submitit), and
aggregated into tables (mean, std, 95 % t-interval over seeds) and plots.

Modules: :mod:`~nicegan.experiments.sweep.spec` (the sweep file), :mod:`~nicegan.experiments.sweep.jobs` (one run
as a picklable job), :mod:`~nicegan.experiments.sweep.executors` (inline / local / slurm),
:mod:`~nicegan.experiments.sweep.runner` (planning, resuming, progress), :mod:`~nicegan.experiments.sweep.report`
(results.csv / .json / .md and plots).
"""

from nicegan.experiments.sweep.runner import SweepResult, plan, report, run_sweep
from nicegan.experiments.sweep.spec import Sweep, Variant, load_sweep, parse_sweep

__all__ = ["Sweep", "SweepResult", "Variant", "load_sweep", "parse_sweep", "plan", "report", "run_sweep"]
