"""Export a trained model: an inference bundle, optionally with ONNX or TorchScript graphs checked against PyTorch.

:func:`export` reads a checkpoint file, a run folder or a bundle and writes a bundle (:mod:`nicegan.formats.bundle`:
``config.json``, ``model.safetensors`` with the nets the exported direction(s) need, a ``README.md`` card). With
``fmt="onnx"`` it adds ``model_<direction>.onnx`` per direction, with ``fmt="torchscript"`` ``model_<direction>.pt``.

A graph file maps images to translations: input ``input``, float32 N x 3 x H x W, RGB in [-1, 1]; output
``output``, the same shape, in [-1, 1] (the translation clamped, as ``nicegan translate`` does). The batch size is
always free; height and width are free when the model translates at sizes other than its training size (light
NICE-GAN and U-GAT-IT, CycleGAN, UNIT; the full NICE-GAN and U-GAT-IT generators flatten a map of the training size
into a fully connected layer). CoGAN cannot be exported as a graph: it translates by optimising a latent code for
each image (gradient steps through its generator at inference time), which a feed-forward graph cannot express.

Every graph is checked after it is written, by running the file (onnxruntime, or ``torch.jit.load``) against the
PyTorch model on a random batch, on a real image (the first test image of the run's recorded dataset, or a smooth
synthetic image when that is not available) and on a batch of another size; an export whose largest absolute
difference is over ``tolerance`` fails and leaves nothing behind.

The ONNX files come from PyTorch's TorchScript-based exporter (``dynamo=False``): it needs no package beyond
``onnx``, keeps symbolic batch/height/width axes, and works on every supported torch version.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nicegan.configs.schema import RunConfig
from nicegan.core.errors import ConfigError, NiceganError
from nicegan.core.version import __version__
from nicegan.formats import bundle, checkpoint
from nicegan.formats.run_folder import RunFolder
from nicegan.inference import model_from_weights
from nicegan.models.base import DIRECTIONS, TranslationModel

log = logging.getLogger("nicegan")

FORMATS = ("safetensors", "onnx", "torchscript")
DEFAULT_OPSET = 17
#: opsets the TorchScript-based ONNX exporter writes that hold every operator these models use
OPSETS = range(13, 21)
#: largest absolute difference (fp32, images in [-1, 1]) between a graph and PyTorch that an export accepts
DEFAULT_TOLERANCE = 1e-4
GRAPH_FILE = {"onnx": "model_{}.onnx", "torchscript": "model_{}.pt"}


@dataclass
class Check:
    """One comparison of a written graph with PyTorch."""

    direction: str
    what: str  # "random", "real image (...)", "synthetic smooth image", "random, other batch/size"
    shape: tuple[int, ...]
    max_abs_diff: float


@dataclass
class ExportReport:
    """What :func:`export` wrote and measured."""

    out_dir: Path
    model: str
    step: int
    directions: tuple[str, ...]
    fmt: str
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    checks: list[Check] = field(default_factory=list)
    opset: int | None = None
    dynamic_size: bool = False  # height and width free in the graphs (the batch always is)
    parameters: int = 0
    seconds: float = 0.0
    tolerance: float = DEFAULT_TOLERANCE

    def summary_lines(self) -> list[str]:
        """Human-readable lines: files with sizes, checks, graph facts."""
        lines = [f"wrote {self.out_dir}: {self.model} step {self.step}, {' and '.join(self.directions)}, "
                 f"{self.parameters:,} parameters, {self.seconds:.1f} s"]
        lines += [f"  {name:<20} {_size(n)}" for name, n in self.files.items()]
        if self.fmt != "safetensors":
            axes = ("batch, height, width" if self.dynamic_size
                    else "batch (height and width fixed at the training size)")
            lines.append(f"  {self.fmt}" + (f" opset {self.opset}" if self.opset else "") + f"; dynamic axes: {axes}")
            for c in self.checks:
                lines.append(f"  check {c.direction} {c.what} {'x'.join(map(str, c.shape))}: max abs difference "
                             f"{c.max_abs_diff:.3g} (tolerance {self.tolerance:g})")
        return lines


def _size(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.1f} KiB"


@dataclass
class _Source:
    model: str
    config: dict[str, Any]
    step: int
    nets: dict[str, dict[str, Tensor]]
    directions: tuple[str, ...]
    where: str
    source: dict[str, Any]
    metrics: dict[str, Any]


def _read_source(path: str | Path) -> _Source:
    """The record behind a checkpoint file, run folder or bundle, with where it came from and known metrics."""
    if bundle.is_bundle(path):
        b = bundle.load(path)
        source = {**b.source, "bundle": b.path} if b.source else {"bundle": b.path}
        return _Source(b.model, b.config, b.step, b.nets, b.directions, b.path, source, b.metrics)
    ck = checkpoint.load(path)
    source = {"checkpoint": ck.path, "content_sha256": ck.to_payload()[checkpoint.HASH_KEY],
              "toolkit_version": ck.toolkit_version}
    metrics = _run_metrics(RunFolder.of(ck.path), ck.step)
    best = ck.extra.get("best")
    if isinstance(best, dict):
        fids = {d: v for d, v in best.items() if isinstance(v, dict) and _finite(v.get("fid"))}
        if fids:
            metrics["best_fid"] = fids
    return _Source(ck.model, ck.config, ck.step, ck.nets, DIRECTIONS, ck.path, source, metrics)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


#: metrics.jsonl is read from its end: the evaluations of the exported step are near it
_METRICS_TAIL = 4 << 20


def _run_metrics(run: RunFolder | None, step: int) -> dict[str, Any]:
    """Scores of the run's metrics.jsonl: the last periodic evaluation at or before ``step`` and the last
    ``nicegan evaluate`` of ``step`` (non-finite values and non-numbers left out)."""
    out: dict[str, Any] = {}
    if run is None:
        return out
    for rec in run.records(tail_bytes=_METRICS_TAIL):
        if not isinstance(rec.get("step"), int) or rec["step"] > step:
            continue
        if rec.get("event") == "eval":
            values = {k: v for k, v in rec.items() if k not in ("event", "step") and _finite(v)}
            if values:
                out["eval"] = {"step": rec["step"], **values}
        elif rec.get("event") == "evaluate" and rec["step"] == step and isinstance(rec.get("results"), dict):
            scores = {d: {k: v for k, v in r.items() if k in ("fid", "kid_mean", "kid_std", "n_fake") and _finite(v)}
                      for d, r in rec["results"].items() if isinstance(r, dict)}
            out["evaluate"] = {"step": step, "protocol": str(rec.get("protocol", "")), "results": scores}
    return out


# --- the export ----------------------------------------------------------------------------------------------------


def export(path: str | Path, out_dir: str | Path, direction: str = "both", fmt: str = "safetensors",
           opset: int | None = None, tolerance: float | None = None,
           progress: Callable[[str], None] | None = None) -> ExportReport:
    """Export the model of a checkpoint file, run folder or bundle ``path`` into the bundle folder ``out_dir``.

    ``direction``: ``"a2b"``, ``"b2a"`` or ``"both"`` (the weights of the nets those directions need, and one graph
    file per direction). ``fmt``: ``"safetensors"`` (the bundle alone), ``"onnx"`` (``opset``, default
    :data:`DEFAULT_OPSET`) or ``"torchscript"``. Graphs are checked against PyTorch and the export fails (writing
    nothing) when a difference is over ``tolerance`` (default :data:`DEFAULT_TOLERANCE`).
    ``progress`` receives a line per stage. ``out_dir`` may be new, empty, or an earlier bundle (replaced).
    """
    started = time.perf_counter()
    say = progress or log.info
    opset = DEFAULT_OPSET if opset is None else opset
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    if fmt not in FORMATS:
        raise NiceganError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}", option="fmt")
    if direction not in (*DIRECTIONS, "both"):
        raise NiceganError(f"direction must be a2b, b2a or both, got {direction!r}", option="direction")
    if fmt == "onnx" and opset not in OPSETS:
        raise NiceganError(f"opset must be between {OPSETS.start} and {OPSETS.stop - 1}, got {opset}", option="opset")
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise NiceganError(f"tolerance must be a positive number, got {tolerance}", option="tolerance")
    if fmt == "onnx":
        _require_onnx()
    out = bundle.check_target(out_dir)
    src_path = Path(path).expanduser()
    if src_path.resolve() == out.resolve() or out.resolve() in src_path.resolve().parents:
        raise NiceganError(f"out_dir {out} would replace the model being exported; choose another folder",
                           option="out_dir")

    src = _read_source(src_path)
    directions = DIRECTIONS if direction == "both" else (direction,)
    lacking = [d for d in directions if d not in src.directions]
    if lacking:
        raise NiceganError(f"{src.where} was exported for {' and '.join(src.directions)} only; it cannot be "
                           f"exported for {' and '.join(lacking)}")
    model, cfg, step = model_from_weights(src.config, src.nets, src.step, src.where, "cpu", src.directions,
                                          src.model)
    if fmt != "safetensors" and model.translation_needs_grad:
        raise NiceganError(f"the {cfg.model_name} model cannot be exported as {fmt}: it translates by optimising a "
                           "latent code for each image (gradient steps through its generator at inference time), "
                           "which a feed-forward graph cannot express; export with fmt=safetensors and translate "
                           "with nicegan", option="fmt")
    names = [n for n in model.translation_nets() if any(n in model.direction_nets(d) for d in directions)]
    nets = {n: model.inference_state(n) for n in names}
    counts = {n: sum(p.numel() for k, p in model.nets[n].named_parameters() if k in nets[n]) for n in names}
    report = ExportReport(out, cfg.model_name, step, directions, fmt, tolerance=tolerance,
                          parameters=sum(counts.values()))
    with bundle.staging(out) as tmp:
        exports: dict[str, Any] = {}
        if fmt != "safetensors":
            report.opset = opset if fmt == "onnx" else None
            other = _other_size(model, cfg.model.img_size)
            report.dynamic_size = other is not None
            for d in directions:
                file = tmp / GRAPH_FILE[fmt].format(d)
                say(f"exporting {d} as {fmt} ...")
                checks = _write_graph(model, cfg, d, fmt, file, opset, other)
                report.checks += checks
                bad = max(checks, key=lambda c: c.max_abs_diff if math.isfinite(c.max_abs_diff) else math.inf)
                if not bad.max_abs_diff <= tolerance:  # NaN too
                    raise NiceganError(f"the {fmt} graph of {d} differs from PyTorch by {bad.max_abs_diff:.3g} on "
                                       f"{bad.what} (over the tolerance {tolerance:g}); nothing was written")
                exports[file.name] = {
                    "format": fmt, "direction": d, **({"opset": opset} if fmt == "onnx" else {}),
                    "input": "input: float32 N x 3 x H x W, RGB in [-1, 1]", "output": "output: same shape, in [-1, 1]",
                    "dynamic_axes": ["batch", "height", "width"] if other else ["batch"],
                    "bytes": file.stat().st_size, "sha256": bundle.sha256_file(file),
                    "checks": [{"input": c.what, "shape": list(c.shape), "max_abs_diff": c.max_abs_diff}
                               for c in checks],
                }
        say("writing the bundle ...")
        card = model_card(cfg, step, directions, counts, src, exports)
        bundle.write(tmp, model=cfg.model_name, config=src.config, step=step, directions=directions, nets=nets,
                     source=src.source, card=card, metrics=src.metrics, exports=exports)
        report.files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
    report.seconds = time.perf_counter() - started
    return report


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise NiceganError(f"ONNX export needs the onnx and onnxruntime packages ({e.name} is missing): "
                           "pip install \"nicegan[onnx]\"") from None


def _other_size(model: TranslationModel, size: int) -> int | None:
    """A size other than the training size the model translates at, or None if it only takes its own."""
    for candidate in (size + size // 2, size + 16, size * 2, size + 8):
        try:
            model.check_input_size(candidate)
        except ConfigError:
            continue
        return candidate
    return None


class _Translate(nn.Module):
    """The graph that is exported: one direction's translation, clamped to [-1, 1] as ``nicegan translate`` does."""

    def __init__(self, model: TranslationModel, direction: str) -> None:
        super().__init__()
        self.model, self.direction = model, direction

    def forward(self, x: Tensor) -> Tensor:
        return self.model.translate(x, self.direction).clamp(-1, 1)


def _inputs(cfg: RunConfig, direction: str, other: int | None) -> list[tuple[str, Tensor]]:
    """Check inputs: a random batch at the training size, a real (or synthetic) image, another batch/size."""
    size = cfg.model.img_size
    g = torch.Generator().manual_seed(0)
    rand = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    what, image = _real_image(cfg, direction)
    other_size = other or size
    more = torch.rand(3, 3, other_size, other_size, generator=g) * 2 - 1
    return [("random", rand), (what, image), ("random, other batch" + (" and size" if other else ""), more)]


def _real_image(cfg: RunConfig, direction: str) -> tuple[str, Tensor]:
    """The first test image of the source domain of the run's recorded dataset, or a smooth synthetic image."""
    from nicegan.data import is_builtin, open_domain
    from nicegan.data.images import ImageDecodeError, list_files, load_rgb
    from nicegan.data.transforms import test_transform

    size, domain, root = cfg.model.img_size, "A" if direction == "a2b" else "B", cfg.data.root
    try:
        if is_builtin(root):
            src = open_domain(root, "test", domain)
            return f"real image ({root} test{domain} #0)", test_transform(src.load(0), size)[None]
        folder = Path(root).expanduser() / f"test{domain}"
        for file in list_files(folder, [])[:20] if root and folder.is_dir() else []:
            try:  # the first decodable file (a test folder may hold a stray text file)
                image = load_rgb(file)
            except ImageDecodeError:
                continue
            return f"real image ({file})", test_transform(image, size)[None]
    except (NiceganError, OSError):
        pass  # the dataset moved or was never recorded: the synthetic image still checks the graph
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    smooth = torch.stack([0.8 * torch.sin(3 * xx + 1), 0.8 * torch.cos(2 * yy - xx), 0.9 * xx * yy])
    return "synthetic smooth image (the run's test images are not available)", smooth[None]


def _write_graph(model: TranslationModel, cfg: RunConfig, direction: str, fmt: str, file: Path, opset: int,
                 other: int | None) -> list[Check]:
    """Write one direction's graph and compare it with PyTorch on the check inputs."""
    net = _Translate(model, direction).eval()
    inputs = _inputs(cfg, direction, other)
    example = inputs[0][1]
    with warnings.catch_warnings(), torch.no_grad():
        # The exporters' deprecation and tracer warnings: the graphs are checked numerically below instead.
        warnings.simplefilter("ignore")
        if fmt == "onnx":
            axes = {0: "batch", 2: "height", 3: "width"} if other else {0: "batch"}
            # No constant folding: the exporter's folding drops initialisers still in use (U-GAT-IT's clipped
            # ILN rho, used as rho and 1 - rho); onnxruntime folds constants itself when it loads the graph.
            torch.onnx.export(net, (example,), str(file), dynamo=False, opset_version=opset, input_names=["input"],
                              output_names=["output"], dynamic_axes={"input": axes, "output": axes},
                              do_constant_folding=False)
            run = _onnx_runner(file)
        else:
            # Frozen: the weights the graph uses become constants, the rest of the model (the other direction,
            # discriminator heads) is left out of the file.
            traced = torch.jit.freeze(torch.jit.trace(net, example, check_trace=False))
            torch.jit.save(traced, str(file))
            loaded = torch.jit.load(str(file), map_location="cpu").eval()

            def run(x: Tensor) -> np.ndarray:
                # Plain interpretation: the profiling executor would spend seconds optimising for each new shape.
                with torch.inference_mode(), torch.jit.optimized_execution(False):
                    return loaded(x).numpy()
    checks = []
    for what, x in inputs:
        with torch.inference_mode():
            expected = net(x).numpy()
        try:
            got = run(x)
            diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else math.inf
        except Exception as e:  # a graph that cannot run this input (a baked-in size) fails the check
            log.warning("the %s graph of %s failed on %s: %s", fmt, direction, what, " ".join(str(e).split())[:200])
            diff = math.inf
        checks.append(Check(direction, what, tuple(x.shape), diff))
    return checks


def _onnx_runner(file: Path) -> Callable[[Tensor], np.ndarray]:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(file))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

    def run(x: Tensor) -> np.ndarray:
        return session.run(["output"], {"input": x.numpy()})[0]

    return run


# --- the card ------------------------------------------------------------------------------------------------------


def model_card(cfg: RunConfig, step: int, directions: tuple[str, ...], counts: dict[str, int], src: _Source,
               exports: dict[str, Any]) -> str:
    """The bundle's README.md: what the model is, where it came from, how well it did, how to use it.

    ``counts``: parameters per exported net (of the parts a bundle keeps)."""
    arch = {k: v for k, v in src.config.get("model", {}).items() if k != "name"}
    data = cfg.data.root or "(not recorded)"
    params = ", ".join(f"{n} {c:,}" for n, c in counts.items())
    rows = [
        ("model", f"`{cfg.model_name}`"),
        ("directions", ", ".join(f"{d} ({'A to B' if d == 'a2b' else 'B to A'})" for d in directions)),
        ("training data", f"`{data}`" + ("" if data.startswith("builtin:") or data == "(not recorded)"
                                         else " (trainA = domain A, trainB = domain B)")),
        ("training step", f"{step:,} of {cfg.train.max_steps:,}"),
        ("image size", f"{cfg.model.img_size} px (the training size)"),
        ("parameters", f"{sum(counts.values()):,} ({params})"),
        ("source", f"`{src.source.get('checkpoint') or src.source.get('bundle') or src.where}`"),
        ("exported by", f"nicegan {__version__}"),
    ]
    lines = [f"# {cfg.model_name} translation model (nicegan bundle)", "",
             "An inference bundle written by `nicegan export`: the weights translation needs, without pickle.", "",
             "| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows), "",
             f"Architecture: `{json.dumps(arch, separators=(', ', ': '))}`", "", "## Metrics", ""]
    lines += _metric_lines(src.metrics) or ["No evaluation of this step was recorded in the run (`nicegan evaluate "
                                            "--checkpoint BUNDLE` measures FID/KID)."]
    d = directions[0]
    lines += ["", "## Use", "", "```sh", f"nicegan translate --checkpoint BUNDLE --input photo.jpg --output out/ "
              f"--direction {d}", "```", "", "```python", "from nicegan import Translator", "",
              "translator = Translator.load(\"BUNDLE\")", f"image = translator(\"photo.jpg\", \"{d}\")", "```", ""]
    if exports:
        lines += ["## Graph files", "", "Input `input`: float32 N x 3 x H x W, RGB scaled to [-1, 1]; output "
                  "`output`: the translation, same shape, in [-1, 1].", ""]
        for name, e in exports.items():
            worst = max(c["max_abs_diff"] for c in e["checks"])
            lines.append(f"- `{name}`: {e['format']}" + (f" opset {e['opset']}" if "opset" in e else "")
                         + f", {e['direction']}, dynamic axes {', '.join(e['dynamic_axes'])}; largest difference "
                         f"from PyTorch {worst:.2g}")
        lines.append("")
        if any(e["format"] == "onnx" for e in exports.values()):
            lines += ["```python", "import numpy as np, onnxruntime as ort", "",
                      f"session = ort.InferenceSession(\"BUNDLE/model_{d}.onnx\")",
                      f"x = np.zeros((1, 3, {cfg.model.img_size}, {cfg.model.img_size}), np.float32)  "
                      "# RGB in [-1, 1]", "y = session.run([\"output\"], {\"input\": x})[0]", "```", ""]
    return "\n".join(lines)


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    lines = []
    ev = metrics.get("evaluate")
    if isinstance(ev, dict):
        for d, r in ev.get("results", {}).items():
            shown = ", ".join(f"{k} {v:.4g}" for k, v in r.items())
            lines.append(f"- `nicegan evaluate` at step {ev.get('step')} ({ev.get('protocol')} protocol), {d}: {shown}")
    periodic = metrics.get("eval")
    if isinstance(periodic, dict):
        shown = ", ".join(f"{k} {v:.4g}" for k, v in periodic.items() if k != "step")
        lines.append(f"- periodic evaluation during training at step {periodic.get('step')}: {shown}")
    best = metrics.get("best_fid")
    if isinstance(best, dict):
        shown = ", ".join(f"{d} {v['fid']:.4g} (step {v.get('step')})" for d, v in best.items())
        lines.append(f"- best FID during training: {shown}")
    return lines
