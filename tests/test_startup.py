"""Start-up: a wrong path or config name is reported before torch is loaded, and --help never loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: a command line with a path that does not exist -> the start of its one-line error
CASES = {
    "train-data": (["train", "--data", "NOPE", "--run-dir", "R"], "data folder not found: NOPE"),
    "train-config": (["train", "--data", "builtin:digits", "--run-dir", "R", "--config", "NOPE.yaml"],
                     "no preset or config file named 'NOPE.yaml'"),
    "resume": (["resume", "NOPE_RUN"], "run folder not found: NOPE_RUN"),
    "translate": (["translate", "--checkpoint", "NOPE", "--input", "x", "--output", "o", "--direction", "a2b"],
                  "checkpoint not found: NOPE"),
    "translate-input": (["translate", "--checkpoint", ".", "--input", "NOPE", "--output", "o", "--direction", "a2b"],
                        "input not found: NOPE"),
    "export": (["export", "NOPE", "--out", "B"], "checkpoint not found: NOPE"),
    "evaluate": (["evaluate", "--checkpoint", "NOPE"], "checkpoint not found: NOPE"),
    "eval-folders": (["eval-folders", "NOPE_A", "."], "folder not found: NOPE_A"),
    "heatmaps": (["heatmaps", "--checkpoint", "NOPE", "--input", "x", "--output", "o.png"],
                 "checkpoint not found: NOPE"),
    "latents": (["latents", "--checkpoint", "NOPE", "--output", "o.png"], "checkpoint not found: NOPE"),
    "interpolate": (["interpolate", "--checkpoint", "NOPE", "a", "b", "--output", "o.png"],
                    "checkpoint not found: NOPE"),
    "serve": (["serve", "--checkpoint", "NOPE"], "checkpoint not found: NOPE"),
    "import-official": (["import-official", "NOPE.pt", "--out", "o"], "official checkpoint not found: NOPE.pt"),
    "data-check": (["data", "check", "NOPE"], "data folder not found: NOPE"),
    "user-study": (["user-study", "serve", "--sources", "NOPE", "--methods", "A=x", "B=y", "--db", "v.sqlite"],
                   "--sources folder not found: NOPE"),
    "sweep": (["sweep", "NOPE.yaml"], "no shipped sweep or sweep file named 'NOPE.yaml'"),
}
PROBE = "import sys; from nicegan.cli import main; rc = main(sys.argv[1:]); print(rc, 'torch' in sys.modules)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wrong_path_fails_before_torch_is_imported(name: str, tmp_path: Path) -> None:
    argv, message = CASES[name]
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert out.stdout.split() == ["2", "False"], (out.stdout, out.stderr[-2000:])
    err = out.stderr.strip()
    assert err.startswith(f"nicegan: error: {message}") and "\n" not in err, err


def test_help_never_loads_torch(tmp_path: Path) -> None:
    code = ("import sys\nfrom nicegan.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for cmd in ('train', 'translate', 'import-official', 'serve'):\n    try:\n        main([cmd, '--help'])\n"
            "    except SystemExit:\n        pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
