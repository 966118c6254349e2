"""GPU suite: NICE-GAN's training step and translation on one GPU, every fast path, in one table (about 8 minutes).

    python benchmarks/gpu_suite.py                      # 256 px, light and full, on cuda (H200-class: < 8 min)
    python benchmarks/gpu_suite.py --json               # ... and one JSON line at the end
    python benchmarks/gpu_suite.py --tiny               # the same code paths on a tiny model, CPU, seconds
    python benchmarks/gpu_suite.py --tiny --device cuda # a smoke test of the GPU paths before the real run

Training rows: nicegan's own step (nicegan.training.step.train_step, the loop's function) on the paper's setting
(256 px, batch 1, official widths, Adam 1e-4 / (0.5, 0.999) / 1e-4) for the light and the full generator, seeded
weights and synthetic seeded inputs. Each row: warm-up steps (excluded; for compile they hold the compile time,
reported), then timed steps with a device sync after each; s/iter is the median. Peak memory is
torch.cuda.max_memory_allocated (reset per row; on CPU the process's peak RSS). FLOPs of one iteration are counted
once per model with torch.utils.flop_counter; % peak is against a matmul measured in the row's precision.

  fp32                 TF32 off for matmuls and cuDNN convolutions (the reference)
  tf32                 TF32 on for both (CUDA only)
  bf16                 torch.autocast bf16 (the loop's train.amp=bf16), TF32 off
  bf16_channels_last   bf16 + NHWC nets and inputs (train.channels_last)
  bf16_fused_adam      bf16 + fused Adam kernels (train.fused_adam)
  bf16_checkpointing   bf16 + activation checkpointing of the nets' blocks (train.checkpoint_activations)
  bf16_compile         bf16 + torch.compile of every net (train.compile); run last, after a time check

Translation rows: the light model's batched a2b translation under inference_mode (network only), fp32 and bf16,
images/s. Loss tracking: N steps (default 300) in fp32 and in bf16 from the same weights on the same seeded stream
of smooth synthetic images; per loss term, the mean relative difference of the window-averaged losses over the last
half, and the largest. A row that fails (out of memory, compile unavailable) shows its error and the suite goes on;
``--budget-s`` skips what would start after the time is spent.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from nicegan.configs.schema import TrainConfig
from nicegan.models.nicegan import NiceGAN, NiceGANConfig
from nicegan.nn.compiled import compile_nets
from nicegan.nn.recompute import checkpoint_blocks
from nicegan.training.optim import build_optimizers
from nicegan.training.step import train_step

try:
    from common import add_json_flag, emit, matmul_gflops, matmul_peaks
    from train_step import rss_peak_gib, rss_peak_reset
except ImportError:  # imported from the repository root
    from benchmarks.common import add_json_flag, emit, matmul_gflops, matmul_peaks
    from benchmarks.train_step import rss_peak_gib, rss_peak_reset

BF16 = torch.bfloat16


@dataclass(frozen=True)
class Variant:
    """One training row: which fast paths are on. A new option is one more entry in :data:`VARIANTS`."""

    name: str
    amp: torch.dtype | None = None  # autocast dtype
    tf32: bool = False
    channels_last: bool = False
    fused_adam: bool = False
    compile: bool = False
    prepare: Callable[[NiceGAN], None] | None = None  # switches a model option on after the build
    not_implemented: str = ""  # why the row has no figures yet
    base: str = "fp32"  # the row its speed-up is measured against

    @property
    def peak_key(self) -> str:
        return "bf16" if self.amp == BF16 else "tf32" if self.tf32 else "fp32"


VARIANTS = (
    Variant("fp32"),
    Variant("tf32", tf32=True),
    Variant("bf16", amp=BF16),
    Variant("bf16_channels_last", amp=BF16, channels_last=True, base="bf16"),
    Variant("bf16_fused_adam", amp=BF16, fused_adam=True, base="bf16"),
    Variant("bf16_checkpointing", amp=BF16, base="bf16", prepare=lambda model: checkpoint_blocks(model.nets)),
    Variant("bf16_compile", amp=BF16, compile=True, base="bf16"),
)
FIGURES = ("s_per_iter", "peak_gib", "gflop_per_iter", "pct_of_peak")  # null in a row without figures
TRANSLATE_FIGURES = ("images_per_s", "peak_gib", "gflop_per_iter", "pct_of_peak")


# --- device helpers -----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def tf32(on: bool) -> Iterator[None]:
    """TF32 on or off for CUDA matmuls *and* cuDNN convolutions (PyTorch's cuDNN default is on), then restored."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9: mixing this API with allow_tf32 is an error
        conv = torch.backends.cudnn.conv
        saved = matmul.fp32_precision, conv.fp32_precision
        matmul.fp32_precision = conv.fp32_precision = "tf32" if on else "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = saved
    else:
        saved = matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
        try:
            yield
        finally:
            matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    """Give a finished row's memory back (on CPU also to the OS) and start the next peak from here."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        rss_peak_reset()  # collects, trims the heap, resets VmHWM


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else rss_peak_gib()


def one_line(e: BaseException, limit: int = 240) -> str:
    text = " ".join(str(e).split()) or "(no message)"
    return f"{type(e).__name__}: {text}"[:limit]


def measured_peaks(device: torch.device, tiny: bool = False) -> dict[str, float]:
    """fp32 (TF32 off) and bf16 matmul peaks, plus TF32's on CUDA, GFLOP/s (``tiny``: small, quick, rough)."""
    n = 256 if tiny else 8192 if device.type == "cuda" else 2048  # a 2048^2 product is too short to load an H200
    with tf32(False):
        peaks = matmul_peaks(str(device), n=n)
    if device.type == "cuda":
        with tf32(True):
            peaks["tf32"] = matmul_gflops(torch.float32, n, device=str(device))
    return peaks


# --- inputs and models ----------------------------------------------------------------------------------------------

def noise_batches(n: int, size: int, device: torch.device, fmt: torch.memory_format, seed: int = 1) -> list[dict]:
    """``n`` unpaired batch-1 batches of uniform noise in [-1, 1] (timing only: the content does not matter)."""
    g = torch.Generator().manual_seed(seed)
    return [{k: (torch.rand(1, 3, size, size, generator=g) * 2 - 1).to(device).contiguous(memory_format=fmt)
             for k in ("a", "b")} for _ in range(n)]


def smooth_batch(g: torch.Generator, size: int, device: torch.device) -> dict[str, Tensor]:
    """One unpaired batch of smooth random images (up-sampled low-resolution noise): structure to learn, so the
    reconstruction losses fall as in real training rather than staying at the noise floor."""
    def image() -> Tensor:
        low = torch.rand(1, 3, max(2, size // 16), max(2, size // 16), generator=g) * 2 - 1
        return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return {"a": image().to(device), "b": image().to(device)}


def build(cfg: NiceGANConfig, device: torch.device, fmt: torch.memory_format = torch.contiguous_format) -> NiceGAN:
    torch.manual_seed(0)  # every row and both loss-tracking runs start from the same weights
    with device:  # initialised where it runs: the full generators' 268M-weight layers take seconds on a CPU
        model = NiceGAN(cfg)
    return model.to(device, memory_format=fmt)


def row(status: str, note: str = "", keys: tuple[str, ...] = FIGURES, **figures: Any) -> dict[str, Any]:
    """A table row: ``keys`` (null unless given), the other figures, ``status`` (ok, skipped, error, not
    implemented) and a note."""
    return {**dict.fromkeys(keys), **figures, "status": status, "note": note}


# --- the rows -------------------------------------------------------------------------------------------------------

class Suite:
    """Runs the rows in priority order against one clock, keeps their results and the FLOP counts per model."""

    def __init__(self, args: argparse.Namespace, device: torch.device, peaks: dict[str, float]) -> None:
        self.args, self.device, self.peaks = args, device, peaks
        self.start = time.perf_counter()
        self.rows: dict[str, dict[str, Any]] = {}
        self.gflop: dict[str, float] = {}  # per model ("light"/"full"): one training iteration

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def over_budget(self, need_s: float = 0.0) -> str:
        left = self.args.budget_s - self.elapsed()
        if left <= need_s:
            return f"skipped: {self.elapsed():.0f} s of the {self.args.budget_s:.0f} s budget used" + (
                f" (this row needs about {need_s:.0f} s)" if need_s else "")
        return ""

    def pct(self, gflop: float | None, per_s: float, key: str) -> float | None:
        peak = self.peaks.get(key)
        return 100 * gflop * per_s / peak if gflop and peak else None

    def training(self, model_name: str, cfg: NiceGANConfig, v: Variant) -> None:
        name = f"{model_name}_{v.name}"
        cuda = self.device.type == "cuda"
        if v.not_implemented:
            self.rows[name] = row("not implemented", v.not_implemented)
            return
        if v.tf32 and not cuda:
            self.rows[name] = row("skipped", "skipped: TF32 is a CUDA tensor-core mode")
            return
        need = self.args.compile_reserve_s if v.compile and cuda and not self.args.tiny else 0.0
        if skip := self.over_budget(need):
            self.rows[name] = row("skipped", skip)
            return
        try:
            self.rows[name] = self._train_row(model_name, cfg, v)
        except Exception as e:  # out of memory, compile failures: the row reports it, the suite goes on
            self.rows[name] = row("error", one_line(e))
        finally:
            if v.compile:
                torch._dynamo.reset()
            free(self.device)
        print(f"  {name}: {self.rows[name]['status']} ({self.elapsed():.0f} s)", file=sys.stderr, flush=True)

    def _train_row(self, model_name: str, cfg: NiceGANConfig, v: Variant) -> dict[str, Any]:
        args, device = self.args, self.device
        fmt = torch.channels_last if v.channels_last else torch.contiguous_format
        model = build(cfg, device, fmt)
        if v.prepare is not None:
            v.prepare(model)
        optimizers = build_optimizers(model, TrainConfig(), fused=True if v.fused_adam else None)
        if v.compile:  # the path `--compile` takes (nicegan.nn.compiled)
            compile_nets(model.nets.values(), device, backend=args.compile_backend)
        batches = noise_batches(args.warmup + args.steps + 1, cfg.img_size, device, fmt)

        def autocast() -> contextlib.AbstractContextManager:
            return torch.autocast(device.type, dtype=v.amp) if v.amp else contextlib.nullcontext()

        def step(batch: dict[str, Tensor]) -> dict[str, Tensor]:
            return train_step(model, optimizers, batch, autocast=autocast)

        with tf32(v.tf32):
            t = time.perf_counter()
            for batch in batches[:args.warmup]:
                step(batch)
            sync(device)
            warmup_s = time.perf_counter() - t
            times = []
            for batch in batches[args.warmup:-1]:
                t = time.perf_counter()
                logs = step(batch)
                sync(device)
                times.append(time.perf_counter() - t)
            peak = peak_gib(device)
            finite = bool(torch.isfinite(torch.stack([x.float() for x in logs.values()])).all())
            if model_name not in self.gflop and not v.compile:
                with FlopCounterMode(display=False) as fc:
                    step(batches[-1])
                self.gflop[model_name] = fc.get_total_flops() / 1e9
        med = statistics.median(times)
        gflop = self.gflop.get(model_name)
        notes = [] if finite else ["non-finite losses"]
        extra: dict[str, Any] = {"s_per_iter_min": min(times), "warmup_s": warmup_s, "steps": len(times)}
        if v.compile:
            extra["compile_s"] = max(0.0, warmup_s - args.warmup * med)
            extra["compile_backend"] = args.compile_backend
            notes.append(f"compile {extra['compile_s']:.1f} s ({args.compile_backend})")
        return row("ok", ", ".join(notes), s_per_iter=med, peak_gib=peak, gflop_per_iter=gflop,
                   pct_of_peak=self.pct(gflop, 1 / med, v.peak_key), peak_key=v.peak_key, **extra)

    def translate(self, cfg: NiceGANConfig, amp: torch.dtype | None) -> None:
        name = f"translate_light_{'bf16' if amp else 'fp32'}"
        if skip := self.over_budget():
            self.rows[name] = row("skipped", skip, TRANSLATE_FIGURES)
            return
        try:
            self.rows[name] = self._translate_row(cfg, amp)
        except Exception as e:  # see training()
            self.rows[name] = row("error", one_line(e), TRANSLATE_FIGURES)
        finally:
            free(self.device)

    def _translate_row(self, cfg: NiceGANConfig, amp: torch.dtype | None) -> dict[str, Any]:
        args, device = self.args, self.device
        model = build(cfg, device).eval()
        g = torch.Generator().manual_seed(3)
        bs = args.translate_batch
        x = (torch.rand(args.translate_images, 3, cfg.img_size, cfg.img_size, generator=g) * 2 - 1).to(device)
        ctx = (lambda: torch.autocast(device.type, dtype=amp)) if amp else contextlib.nullcontext

        def one_pass() -> float:
            sync(device)
            t = time.perf_counter()
            for k in range(0, len(x), bs):
                model.translate(x[k:k + bs], "a2b")
            sync(device)
            return time.perf_counter() - t

        with tf32(False), torch.inference_mode(), ctx():
            one_pass()  # warm-up (cuDNN plans, allocator)
            seconds = statistics.median(one_pass() for _ in range(args.translate_repeats))
            peak = peak_gib(device)
            with FlopCounterMode(display=False) as fc:
                model.translate(x[:bs], "a2b")
        per_s = len(x) / seconds
        gflop = fc.get_total_flops() / 1e9  # one batch
        return row("ok", f"batch {bs}", TRANSLATE_FIGURES, images_per_s=per_s, peak_gib=peak, gflop_per_iter=gflop,
                   pct_of_peak=self.pct(gflop, per_s / bs, "bf16" if amp else "fp32"), batch_size=bs,
                   peak_key="bf16" if amp else "fp32")

    def loss_tracking(self, cfg: NiceGANConfig) -> dict[str, Any]:
        """fp32 and bf16 from the same weights on the same batch stream; how far apart their loss curves run."""
        steps, device = self.args.loss_steps, self.device
        runs: dict[str, Tensor] = {}
        names: list[str] = []
        seconds: dict[str, float] = {}
        if note := self.over_budget():
            return {"status": "skipped", "note": note}
        # The fp32 run may use half the budget left; the bf16 run then takes as many steps as fp32 got.
        fp32_until = time.perf_counter() + (self.args.budget_s - self.elapsed()) / 2
        for label, amp in (("fp32", None), ("bf16", BF16)):
            try:
                model = build(cfg, device)
                optimizers = build_optimizers(model, TrainConfig())
                g = torch.Generator().manual_seed(2)
                ctx = (lambda amp=amp: torch.autocast(device.type, dtype=amp)) if amp else contextlib.nullcontext
                logs: list[Tensor] = []
                t = time.perf_counter()
                with tf32(False):
                    for i in range(steps if label == "fp32" else len(runs["fp32"])):
                        out = train_step(model, optimizers, smooth_batch(g, cfg.img_size, device), autocast=ctx)
                        names = list(out)
                        logs.append(torch.stack([v.float() for v in out.values()]))
                        if label == "fp32" and i + 1 < steps and time.perf_counter() > fp32_until:
                            sync(device)
                            note = f"stopped after {i + 1} of {steps} steps: time budget"
                            break
                sync(device)
                seconds[label] = (time.perf_counter() - t) / max(1, len(logs))
                runs[label] = torch.stack(logs).cpu()
                del model, optimizers
            except Exception as e:  # see training()
                note = one_line(e)
                break
            finally:
                free(device)
        if len(runs) < 2:
            return {"status": "error", "note": note}
        return {"status": "ok", "note": note, **compare_losses(runs["fp32"], runs["bf16"], names),
                "s_per_step_fp32": seconds["fp32"], "s_per_step_bf16": seconds["bf16"]}


def compare_losses(fp32: Tensor, bf16: Tensor, names: list[str]) -> dict[str, Any]:
    """Window-averaged loss curves (window: a twentieth of the run), relative difference bf16 vs fp32 averaged
    over the last half of the steps, per loss term; plus the largest term and the first step's (same weights, so
    pure arithmetic) largest difference."""
    steps = len(fp32)
    window = max(1, steps // 20)

    def smooth(x: Tensor) -> Tensor:  # trailing mean over `window` steps
        c = torch.cat([torch.zeros(1, x.shape[1], dtype=torch.float64), x.double().cumsum(0)])
        idx = torch.arange(1, steps + 1)
        return (c[idx] - c[(idx - window).clamp(min=0)]) / (idx - (idx - window).clamp(min=0)).unsqueeze(1)

    sf, sb = smooth(fp32), smooth(bf16)
    last = slice(steps // 2, steps)
    rel = ((sb[last] - sf[last]).abs() / sf[last].abs().clamp(min=1e-6)).mean(0)
    first = ((bf16[0] - fp32[0]).abs() / fp32[0].abs().clamp(min=1e-6)).max()
    worst = int(rel.argmax())
    return {"steps": steps, "window": window, "compared_steps": f"{steps // 2 + 1}-{steps}",
            "bf16_finite": bool(torch.isfinite(bf16).all()),
            "mean_rel_diff": {n: float(r) for n, r in zip(names, rel, strict=True)},
            "max_mean_rel_diff": float(rel.max()), "worst_term": names[worst], "first_step_max_rel_diff": float(first),
            "final_smoothed": {n: [float(sf[-1, i]), float(sb[-1, i])] for i, n in enumerate(names)}}


# --- output --------------------------------------------------------------------------------------------------------

def print_table(rows: dict[str, dict[str, Any]], losses: dict[str, Any], loss_label: str) -> None:
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    print(f"{'row':<27}{'s/iter':>9}{'img/s':>9}{'speed-up':>9}{'peak GiB':>9}{'GFLOP/it':>10}{'% peak':>8}  note")
    for name, r in rows.items():
        key = "images_per_s" if "images_per_s" in r else "s_per_iter"
        base, own = rows.get(_base_row(name), {}).get(key), r[key]
        speed = "-" if not (base and own) else f"{own / base if key == 'images_per_s' else base / own:.2f}x"
        print(f"{name:<27}{fmt(r.get('s_per_iter'), '.4f'):>9}{fmt(r.get('images_per_s'), '.1f'):>9}{speed:>9}"
              f"{fmt(r['peak_gib'], '.2f'):>9}{fmt(r['gflop_per_iter'], '.2f'):>10}{fmt(r['pct_of_peak'], '.1f'):>8}"
              f"  {r['note']}")
    if losses.get("status") == "ok":
        note = (f"{losses['steps']} steps, window {losses['window']}: smoothed losses differ by "
                f"{100 * statistics.mean(losses['mean_rel_diff'].values()):.2f}% on average over steps "
                f"{losses['compared_steps']}, at most {100 * losses['max_mean_rel_diff']:.2f}% "
                f"({losses['worst_term']}); step 1 at most {100 * losses['first_step_max_rel_diff']:.3f}%"
                + ("" if losses["bf16_finite"] else "; bf16 NON-FINITE") + (f"; {losses['note']}" if losses["note"]
                                                                              else ""))
    else:
        note = f"{losses.get('status')}: {losses.get('note')}"
    print(f"{'loss_tracking ' + loss_label:<27}{'':>63}  {note}")


def _base_row(name: str) -> str:
    if name.startswith("translate_"):
        return name.rsplit("_", 1)[0] + "_fp32"
    model, variant = name.split("_", 1)
    return f"{model}_{next((v.base for v in VARIANTS if v.name == variant), 'fp32')}"


def configs(tiny: bool) -> dict[str, NiceGANConfig]:
    """The paper's light and full NICE-GAN at 256 px (official widths), or the tests' tiny model at 32 px."""
    base = NiceGANConfig(**NiceGANConfig.tiny) if tiny else NiceGANConfig(img_size=256, ch=64, n_res=6, n_dis=7)
    return {"light": replace(base, light=True), "full": replace(base, light=False)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", help="cuda (default), cuda:N or cpu; with --tiny the default is cpu")
    p.add_argument("--tiny", action="store_true", help="tiny model at 32 px, few steps: checks every code path")
    p.add_argument("--warmup", type=int, help="warm-up steps per training row (default 3; --tiny 1)")
    p.add_argument("--steps", type=int, help="timed steps per training row (default 10; --tiny 2)")
    p.add_argument("--loss-steps", type=int, help="steps of each loss-tracking run (default 300; --tiny 4)")
    p.add_argument("--translate-images", type=int, help="images per translation pass (default 128; --tiny 4)")
    p.add_argument("--translate-batch", type=int, help="translation batch size (default 16; --tiny 2)")
    p.add_argument("--translate-repeats", type=int, default=3, help="timed passes, median taken (default 3)")
    p.add_argument("--budget-s", type=float, default=450.0,
                   help="rows that would start later than this many seconds are skipped with a note (default 450)")
    p.add_argument("--compile-reserve-s", type=float, default=150.0,
                   help="on CUDA a compile row starts only with this much budget left (default 150)")
    p.add_argument("--compile-backend", help="torch.compile backend (default inductor; with --tiny eager, i.e. "
                                             "Dynamo's tracing alone: Inductor's C++ code generation takes minutes "
                                             "on a small CPU and aot_eager ~30 s per model on 2 cores)")
    p.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN pick algorithms (train.cudnn_benchmark)")
    add_json_flag(p)
    args = p.parse_args(argv)
    tiny = args.tiny
    args.device = args.device or ("cpu" if tiny else "cuda")
    for key, full, small in (("warmup", 3, 1), ("steps", 10, 2), ("loss_steps", 300, 4), ("translate_images", 128, 4),
                             ("translate_batch", 16, 2)):
        if getattr(args, key) is None:
            setattr(args, key, small if tiny else full)
        if getattr(args, key) < (0 if key == "warmup" else 1):
            p.error(f"--{key.replace('_', '-')} must be at least {0 if key == 'warmup' else 1}")
    if args.compile_backend is None:
        args.compile_backend = "eager" if tiny else "inductor"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"gpu_suite: error: --device {args.device} asked for, but this torch {torch.__version__} sees no "
                 "CUDA GPU (use --device cpu, e.g. with --tiny)")
    device = torch.device(args.device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device.index >= torch.cuda.device_count():
            sys.exit(f"gpu_suite: error: --device {args.device}: this machine has {torch.cuda.device_count()} "
                     "CUDA GPU(s)")
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = args.cudnn_benchmark
    t0 = time.perf_counter()
    peaks = measured_peaks(device, args.tiny)
    free(device)  # the peak matmuls' memory is not the first row's
    suite = Suite(args, device, peaks)
    suite.start = t0  # the budget counts the peak measurement too
    cfgs = configs(args.tiny)
    what = "tiny (--tiny)" if args.tiny else "the paper's"
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"NICE-GAN GPU suite on {device} ({gpu}), torch {torch.__version__}; {what} light and full models at "
          f"{cfgs['light'].img_size} px, batch 1; {args.warmup} warm-up + {args.steps} timed steps per row")
    print("matmul peaks, GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items() if not k.endswith("_n"))
          + "; peak memory = " + ("torch.cuda.max_memory_allocated" if device.type == "cuda" else "process peak RSS"))

    # Priority order: the plain rows of both models, translation, loss tracking, then the compile rows (the
    # longest and least certain) so a tight budget drops those first.
    for model_name, cfg in cfgs.items():
        for v in VARIANTS:
            if not v.compile:
                suite.training(model_name, cfg, v)
    for amp in (None, BF16):
        suite.translate(cfgs["light"], amp)
    print("  loss tracking ...", file=sys.stderr, flush=True)
    losses = suite.loss_tracking(cfgs["light"])
    for model_name, cfg in cfgs.items():
        for v in VARIANTS:
            if v.compile:
                suite.training(model_name, cfg, v)

    order = [f"{m}_{v.name}" for m in cfgs for v in VARIANTS] + ["translate_light_fp32", "translate_light_bf16"]
    rows = {k: suite.rows[k] for k in order if k in suite.rows}
    print_table(rows, losses, "light")
    elapsed = suite.elapsed()
    print(f"elapsed {elapsed:.1f} s (budget {args.budget_s:.0f} s)")
    if args.json:
        emit("gpu_suite", rows, peaks, loss_tracking=losses, elapsed_s=elapsed,
             config={"tiny": args.tiny, "device": str(device), "img_size": cfgs["light"].img_size, "batch_size": 1,
                     "ch": cfgs["light"].ch, "n_res": cfgs["light"].n_res, "n_dis": cfgs["light"].n_dis,
                     "warmup": args.warmup, "steps": args.steps, "loss_steps": args.loss_steps,
                     "translate_images": args.translate_images, "translate_batch": args.translate_batch,
                     "compile_backend": args.compile_backend, "cudnn_benchmark": args.cudnn_benchmark})


if __name__ == "__main__":
    main()
