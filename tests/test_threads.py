"""Threads: --threads and NICEGAN_THREADS reach torch in every long command; the automatic choice follows load."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nicegan.cli import build_parser, main
from nicegan.core.process import ThreadGovernor, ThreadPolicy, choose_threads, free_cpus, others_busy, usable_cpus
from tests.conftest import TINY

#: each long command with arguments that parse but fail at once inside the command (a path that does not exist)
LONG = {
    "train": ["train", "--data", "NOPE", "--run-dir", "NOPE_RUN"],
    "resume": ["resume", "NOPE_RUN"],
    "translate": ["translate", "--checkpoint", "NOPE", "--input", "NOPE", "--output", "o", "--direction", "a2b"],
    "export": ["export", "NOPE", "--out", "NOPE_B"],
    "demo": ["demo", "--run-dir", "A_FILE/run"],
    "sweep": ["sweep", "NOPE.yaml", "--out", "NOPE_S"],
    "eval-folders": ["eval-folders", "NOPE_A", "NOPE_B"],
    "evaluate": ["evaluate", "--checkpoint", "NOPE"],
    "heatmaps": ["heatmaps", "--checkpoint", "NOPE", "--input", "NOPE", "--output", "o.png"],
    "latents": ["latents", "--checkpoint", "NOPE", "--output", "o.png"],
    "interpolate": ["interpolate", "--checkpoint", "NOPE", "NOPE", "NOPE", "--output", "o.png"],
    "serve": ["serve", "--checkpoint", "NOPE", "--port", "1"],
}


def _subcommands_with_threads() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name, p in sub.choices.items() if any(a.dest == "threads" for a in p._actions)}


def test_every_long_command_takes_threads() -> None:
    assert _subcommands_with_threads() == set(LONG)


@pytest.mark.parametrize("name", sorted(LONG))
def test_threads_flag_and_variable_reach_torch(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "A_FILE").write_text("a file, so no run folder can be made below it")
    argv = LONG[name]
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"the test's arguments for {name} do not parse: {argv}")
    torch.set_num_threads(2)
    main(["-q", *argv, "--threads", "1"])  # fails at the missing path, after the threads are settled
    assert torch.get_num_threads() == 1
    torch.set_num_threads(1)
    monkeypatch.setenv("NICEGAN_THREADS", "2")
    main(["-q", *argv])
    assert torch.get_num_threads() == 2


def test_a_bad_thread_variable_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("NICEGAN_THREADS", "many")
    assert main(["evaluate", "--checkpoint", "NOPE"]) == 2
    assert "NICEGAN_THREADS must be a whole number" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own one-line usage error
        main(["evaluate", "--checkpoint", "NOPE", "--threads", "0"])


def test_the_choice_is_printed_when_work_starts(tmp_path: Path, tiny_data: Path, capsys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NICEGAN_THREADS", raising=False)
    assert main(["evaluate", "--checkpoint", "NOPE", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nicegan: error:") and "threads:" not in err, "a mistake's error comes first and alone"
    assert main(["train", "--data", str(tiny_data), "--run-dir", str(tmp_path / "r"), "--max-steps", "1",
                 "--no-progress", "--threads", "1", "--set", *TINY]) == 0
    assert "threads: 1 thread (--threads)" in capsys.readouterr().err


def test_free_cpus_leaves_cores_other_processes_use() -> None:
    assert free_cpus(2, 0.0) == 2
    assert free_cpus(2, 0.2) == 2  # a little background noise keeps both
    assert free_cpus(2, 0.5) == 1  # a core a process half-uses is taken: sharing it stalls every parallel region
    assert free_cpus(2, 1.0) == 1
    assert free_cpus(2, 3.0) == 1  # never 0
    assert free_cpus(8, 2.0) == 6
    assert free_cpus(4, None) == 4  # no /proc: all usable CPUs


def test_a_user_openmp_setting_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NICEGAN_THREADS", raising=False)
    monkeypatch.delenv("_NICEGAN_SET_OMP", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert choose_threads().source == "OMP_NUM_THREADS"
    monkeypatch.setenv("_NICEGAN_SET_OMP", "1")  # set by a parent nicegan process: choose again
    assert choose_threads().source == "auto"


def _busy() -> subprocess.Popen:
    code = "import time\nt = time.time()\nwhile time.time() - t < 30:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


@pytest.mark.skipif(usable_cpus() < 2 or not os.path.exists("/proc/stat"), reason="needs 2 CPUs and /proc")
def test_a_competing_process_is_seen_and_the_governor_follows_it() -> None:
    proc = _busy()
    try:
        time.sleep(0.3)
        busy = others_busy(0.5)
        assert busy is not None and busy >= 0.6, busy
        torch.set_num_threads(usable_cpus())
        gov = ThreadGovernor(ThreadPolicy(usable_cpus(), usable_cpus(), "auto", 0.0), every=0.0)
        time.sleep(0.5)
        n = gov.tick()
        assert n is not None and 1 <= n <= usable_cpus() - 1, n
        assert torch.get_num_threads() == n
    finally:
        proc.kill()
        proc.wait()
    fixed = ThreadGovernor(ThreadPolicy(1, usable_cpus(), "--threads"), every=0.0)
    assert fixed.tick() is None, "a fixed count is never changed"
