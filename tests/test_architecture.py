"""The architecture is enforced: import-linter's contracts (pyproject.toml) hold, and they do catch a violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{env.get('PYTHONPATH', '')}"
    cmd = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
           str(REPO / "pyproject.toml"), "--no-cache"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    res = _lint()
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_an_upward_import_breaks_the_contracts(tmp_path: Path) -> None:
    """A model importing the training loop (and thereby a cycle through config) must be reported."""
    shutil.copytree(REPO / "src" / "nicegan", tmp_path / "nicegan")
    base = tmp_path / "nicegan" / "models" / "base.py"
    base.write_text(base.read_text() + "\n\ndef _upward() -> None:\n    from nicegan.training import loop  # noqa\n")
    res = _lint(tmp_path)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and "nicegan.models.base -> nicegan.training.loop" in res.stdout


def test_the_shared_gan_losses_have_one_owner() -> None:
    """LSGAN / BCE / CE against a constant target live in nicegan.nn.losses; a model file must not grow its own copy
    (they were copied into four model files before)."""
    import re

    models = Path(__file__).resolve().parents[1] / "src" / "nicegan" / "models"
    copy = re.compile(r"(mse_loss|binary_cross_entropy_with_logits|cross_entropy)\([^)]*"
                      r"(full_like|new_full|torch\.full\()")
    offenders = [f"{p.name}:{i + 1}" for p in sorted(models.glob("*.py"))
                 for i, line in enumerate(p.read_text().splitlines()) if copy.search(line)]
    assert not offenders, f"use nicegan.nn.losses instead of a local copy: {offenders}"


def test_the_run_folder_layout_has_one_owner() -> None:
    """The names inside a run folder are spelled once, in nicegan.formats.run_folder; a module that writes
    ``run_dir / "metrics.jsonl"`` again would let the layouts drift apart."""
    import re

    src = Path(__file__).resolve().parents[1] / "src" / "nicegan"
    spelled = re.compile(r"""["'](metrics\\.jsonl|config\\.yaml|checkpoints|samples)["']|/ ["'](cache|report|tb)["']""")
    offenders = [f"{p.relative_to(src)}:{i + 1}" for p in sorted(src.rglob("*.py")) if p.name != "run_folder.py"
                 for i, line in enumerate(p.read_text().splitlines())
                 if spelled.search(line) and not line.lstrip().startswith("#")]
    assert not offenders, f"ask RunFolder (nicegan.formats.run_folder) for these paths: {offenders}"


def test_the_fid_extractor_has_one_factory() -> None:
    """Every caller builds the Inception feature extractor through evaluation.fid.make_extractor (it was built in
    four places, each resolving protocol and weights its own way)."""
    src = Path(__file__).resolve().parents[1] / "src" / "nicegan"
    sites = [f"{p.relative_to(src)}:{i + 1}" for p in sorted(src.rglob("*.py"))
             for i, line in enumerate(p.read_text().splitlines()) if "FeatureExtractor(" in line
             and not line.lstrip().startswith(("class ", "#"))]
    assert len(sites) == 1 and sites[0].startswith("evaluation/fid/__init__.py:"), sites
