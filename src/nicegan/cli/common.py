"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nicegan.core.process import cpu_compiler

if TYPE_CHECKING:  # the training loop is imported only by the commands that train
    from nicegan.training.loop import TrainResult

log = logging.getLogger("nicegan")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, got {value}")
    return value


def add_listen(p: argparse.ArgumentParser, port: int) -> None:
    """``--host`` (default 127.0.0.1: this machine only) and ``--port`` of a command that serves a web page."""
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 for the network, "
                   "where anyone who can reach it may use the page: there is no login)")
    p.add_argument("--port", type=port_number, default=port, help="port (default: %(default)s)")


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads N`` of a long-running command (the command line applies it before torch loads)."""
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for torch (default: the usable CPUs other processes leave free, re-checked "
                   "while training; also NICEGAN_THREADS)")


def add_device(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--device`` and ``--threads``: where a long-running command computes."""
    p.add_argument("--device", default=default, metavar="cpu|cuda",
                   help="cpu, cuda or cuda:N (default: cuda when available)")
    add_threads(p)


def add_checkpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint file, run folder or bundle")


def png_output(path: str) -> Path:
    """An ``--output`` that must be a new or existing PNG file (not a folder, not another format)."""
    from nicegan.core.errors import NiceganError

    p = Path(path).expanduser()
    if p.is_dir():
        raise NiceganError(f"--output {p} is a folder; give a file name ending in .png, e.g. {p / 'out.png'}")
    if p.suffix.lower() != ".png":
        raise NiceganError(f"--output {p} must end in .png (the picture is written as PNG)")
    return p


def dataset_root(data: str | None, recorded: str | None) -> str:
    """The dataset to use: ``--data`` if given, else the one recorded in the checkpoint's config."""
    from nicegan.core.errors import NiceganError

    root = data or recorded
    if not root:
        raise NiceganError("the checkpoint records no dataset: pass --data DIR")
    return root


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                   help="plain log lines instead of a progress bar")


FAST_PATH_FLAGS = ("amp", "channels_last", "compile", "fused_adam", "cudnn_benchmark", "checkpoint_activations")

#: what ``--fast`` turns on: the combination ``benchmarks/fast_paths.py`` measured fastest on the project's CPU
#: (2-core AVX-512 VM, NICE-GAN light): torch.compile with fused Adam, 0.77x the default's time at 64 px and 0.89x at
#: 128 px after a first step that compiles (126-139 s the first time, about 10 s once the kernels are cached);
#: channels_last and checkpointing were slower (docs/performance.md). bf16 is not in it: its speed depends on the
#: CPU (emulated without avx512_bf16) and on a GPU it is unmeasured. Without a C++ compiler ``--fast`` leaves compile
#: out, as it does beside ``--checkpoint-activations``.
FAST_PRESET: dict[str, Any] = {"fused_adam": True, "compile": True}


def add_fast_paths(p: argparse.ArgumentParser) -> None:
    """Opt-in speed flags (shortcuts for train.amp etc.; off by default, so default runs reproduce official floats)
    and the memory option ``--checkpoint-activations``."""
    g = p.add_argument_group("fast paths (opt-in)")
    g.add_argument("--fast", action="store_true", help="the combination measured fastest on a CPU here: "
                   + ", ".join(f"train.{k}={str(v).lower()}" for k, v in FAST_PRESET.items())
                   + " (docs/performance.md); flags given beside it win")
    g.add_argument("--amp", choices=["none", "bf16", "fp16"], help="mixed-precision autocast (fp16 adds gradient "
                   "scaling)")
    g.add_argument("--channels-last", action="store_const", const=True, help="NHWC memory format")
    g.add_argument("--compile", action="store_const", const=True, help="torch.compile every network (the first "
                   "step compiles: about 2 min on a CPU, seconds once the kernels are cached)")
    g.add_argument("--no-compile", dest="compile", action="store_const", const=False, help="leave torch.compile out "
                   "(of --fast)")
    g.add_argument("--fused-adam", action="store_const", const=True, help="fused Adam kernels")
    g.add_argument("--cudnn-benchmark", action="store_const", const=True, help="cuDNN autotuning (GPU)")
    m = p.add_argument_group("memory (opt-in)")
    m.add_argument("--checkpoint-activations", action="store_const", const=True,
                   help="recompute the networks' block activations in the backward pass instead of keeping them: "
                   "the same gradients bit for bit, a lower memory peak, slower steps (measured: docs/performance.md)")


def fast_path_values(args: argparse.Namespace) -> dict[str, Any]:
    """The fast-path and memory flags given on the command line, as ``train.*`` config values (``--fast`` first, so
    an explicit flag beside it wins)."""
    values = {f"train.{k}": v for k, v in FAST_PRESET.items()} if getattr(args, "fast", False) else {}
    if values.get("train.compile") and getattr(args, "compile", None) is None:
        if getattr(args, "checkpoint_activations", None):
            values.pop("train.compile")  # the two cannot be combined; the explicit memory flag wins
        elif cpu_compiler() is None:
            values.pop("train.compile")
            log.warning("--fast: no C++ compiler (g++ or clang++) found, so it leaves out compile; install one for "
                        "the compiled speed-up")
    values.update({f"train.{k}": getattr(args, k) for k in FAST_PATH_FLAGS if getattr(args, k, None) is not None})
    return values


def report_training(result: TrainResult) -> None:
    """Summarise a finished (or stopped) training call for the user."""
    if result.interrupted:
        log.info("checkpoint %s", result.checkpoint)
        log.info("%s", result.stopped_line())
    else:
        log.info("done: step %d, checkpoint %s", result.step, result.checkpoint)
        log.info("samples: %s/samples   logs: %s/metrics.jsonl", result.run_dir, result.run_dir)
