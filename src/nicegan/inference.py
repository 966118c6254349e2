"""Inference: load a checkpoint's translation nets; translate batches, single images or whole folders without grads.

:func:`translate_batches` is the one batched-translation loop: ``translate``, the evaluation, the digits metrics,
the analyses and the demo all translate through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from nicegan import checkpoint
from nicegan.config import RunConfig, resolve_config
from nicegan.data.images import ImageDecodeError, list_files, load_rgb, warn_skipped
from nicegan.data.transforms import tensor_to_pil, test_transform
from nicegan.errors import CheckpointError, ConfigError, NiceganError
from nicegan.files import describe_os_error, entry_problem, fit_name, writable_dir
from nicegan.models import create_model
from nicegan.models.base import HeatmapModel, TranslationModel, check_direction
from nicegan.models.registry import physical_memory
from nicegan.progress import track
from nicegan.runtime import resolve_device
from nicegan.visual import heatmap_images

log = logging.getLogger("nicegan")

OUTPUT_FORMATS = ("png", "jpg")


def load_model(checkpoint_path: str | Path,
               device: str | torch.device = "cpu") -> tuple[TranslationModel, RunConfig, int]:
    """Rebuild the model recorded in a checkpoint (file or run folder) and load its translation nets.

    Returns ``(model in eval mode on device, run config, training step)``.
    """
    ck = checkpoint.load(checkpoint_path)
    try:
        cfg = resolve_config(ck.config)
    except ConfigError as e:
        raise CheckpointError(f"{ck.path} holds a config this nicegan cannot use ({e})") from None
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = create_model(cfg.model_name, cfg.model)
    checkpoint.load_nets(model.nets, ck.nets, names=model.translation_nets(), where=ck.path, model=cfg.model_name)
    return model.to(dev).eval(), cfg, ck.step


#: the largest network input side a translation accepts
MAX_SIZE = 16384


def check_translation_memory(model: TranslationModel, size: int, batch_size: int, direction: str = "a2b") -> None:
    """Refuse a translation whose activations would not fit in memory (e.g. ``--size 100000``), with the estimate.

    The estimate runs the model once on the ``meta`` device (shapes only, no memory) and takes the weights plus
    four times the largest activation of one batch (input, output, a skip connection and a temporary).
    """
    if size > MAX_SIZE:
        raise NiceganError(f"--size {size} is over the {MAX_SIZE:,} px this toolkit translates at (the networks see "
                           "size x size images; translate at the training size and use --keep-size)")
    largest = 0

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, Tensor):
                largest = max(largest, t.numel() * t.element_size())

    try:
        with torch.device("meta"):
            meta = type(model)(model.cfg)
        handles = [m.register_forward_hook(hook) for m in meta.modules()]
        with torch.no_grad():
            meta.eval().translate(torch.empty(batch_size, model.cfg.img_ch, size, size, device="meta"), direction)
        for h in handles:
            h.remove()
    except Exception:  # a model whose translation cannot run on meta tensors (e.g. an optimising inversion)
        return
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    need, have = weights + 4 * largest, physical_memory()
    if have and need > have:
        raise NiceganError(f"translating {batch_size} image(s) at {size}x{size} px needs about {need / 2**30:,.1f} GiB "
                           f"of memory (largest activation {largest / 2**30:,.1f} GiB), more than this machine's "
                           f"{have / 2**30:.1f} GiB; use a smaller --size or --batch-size")


def inference_context(model: TranslationModel) -> AbstractContextManager:
    """``inference_mode`` (fastest), or ``no_grad`` for models whose translation optimises (CoGAN's inversion)."""
    return torch.no_grad() if model.translation_needs_grad else torch.inference_mode()


def translate_batches(model: TranslationModel, batches: Iterable[Tensor], direction: str, *, heatmap: bool = False,
                      diagnostics: dict[str, float] | None = None) -> Iterator[tuple[Tensor, Tensor | None]]:
    """Translate each batch (N x C x S x S in [-1, 1], any device) on the model's device, in eval mode, without
    gradients; yields ``(translation clamped to [-1, 1], heatmap or None)`` per batch.

    ``heatmap`` also yields the model's attention maps (models with the heatmap capability). ``diagnostics``, if
    given, receives the image-weighted means of the model's ``translate_diagnostics`` (e.g. CoGAN's inversion
    error). The model's train/eval mode is restored afterwards.
    """
    check_direction(direction)
    if heatmap and not isinstance(model, HeatmapModel):
        raise NiceganError(f"the {model.name} model has no attention heatmap")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    done = 0
    try:
        for x in batches:
            x = x.to(device)
            with inference_context(model):
                y = model.translate(x, direction).clamp(-1, 1)
                h = model.heatmap(x, direction) if heatmap else None
            if diagnostics is not None:
                model.accumulate_diagnostics(diagnostics, done, len(x))
            done += len(x)
            yield y, h
    finally:
        model.train(was_training)


@dataclass
class TranslateReport:
    """Outcome of :func:`translate_paths`."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    diagnostics: dict[str, float] = field(default_factory=dict)  # image-weighted means of the model's diagnostics


def _output_names(files: list[Path], root: Path | None, ext: str) -> list[Path]:
    """Relative output paths: the input's relative path with the new extension; clashing stems keep the old one."""
    rel = [f.relative_to(root) if root else Path(f.name) for f in files]
    stems = [r.with_suffix(f".{ext}") for r in rel]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [Path(f"{r}.{ext}") if s in clashes else s for r, s in zip(rel, stems, strict=True)]


def translate_paths(model: TranslationModel, input_path: Path, output_dir: Path, direction: str, size: int,
                    keep_size: bool = False, heatmap: bool = False, batch_size: int = 8, fmt: str = "png",
                    progress: bool | None = None) -> TranslateReport:
    """Translate an image file or every image below a folder into ``output_dir``, keeping relative names.

    Inputs of any size are resized to ``size`` x ``size`` for the network; outputs are written at that size, or
    at each input's own size with ``keep_size``. With ``heatmap`` a ``<name>_heatmap.png`` overlay of the model's
    attention map on the input is written too (models with a CAM only).
    """
    check_direction(direction)
    if fmt not in OUTPUT_FORMATS:
        raise NiceganError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if batch_size < 1:
        raise NiceganError(f"--batch-size must be >= 1, got {batch_size}")
    files, root, not_files = input_files(input_path)
    output_dir = Path(output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise NiceganError(f"--output {output_dir} is an existing file; give a folder for the translations")
    outputs = [fit_name(output_dir / r) for r in _output_names(files, root, fmt)]
    inputs_resolved = {f.resolve() for f in files}
    for o in outputs:
        if o.resolve() in inputs_resolved:
            raise NiceganError(f"refusing to overwrite the input image {o}; choose another --output folder")
    if heatmap and not isinstance(model, HeatmapModel):
        raise NiceganError(f"the {model.name} model has no attention heatmap (--heatmap)")

    model.check_input_size(size)
    check_translation_memory(model, size, min(batch_size, len(files)), direction)
    writable_dir(output_dir, "output folder")
    report = TranslateReport(skipped=list(not_files))
    group: list[tuple[Path, Image.Image]] = []  # (output path, input image) of the batch being translated
    group_x = torch.empty(0)  # and its network input

    def batches() -> Iterator[Tensor]:
        # translate_batches pulls one batch, then yields its result: ``group`` is always that batch's images.
        nonlocal group, group_x
        pending: list[tuple[Path, Image.Image]] = []
        for src, dst in track(list(zip(files, outputs, strict=True)), desc="translating", unit="img",
                              progress=progress, quiet=len(files) < batch_size):
            try:
                pending.append((dst, load_rgb(src)))
            except ImageDecodeError as e:
                warn_skipped([(src, str(e))])
                report.skipped.append((src, str(e)))
            if len(pending) == batch_size or (pending and src == files[-1]):
                group, pending = pending, []
                group_x = torch.stack([test_transform(img, size) for _, img in group])
                yield group_x

    for y, h in translate_batches(model, batches(), direction, heatmap=heatmap, diagnostics=report.diagnostics):
        heat = heatmap_images(h, size, under=group_x.to(h.device)) if h is not None else None
        for k, (dst, img) in enumerate(group):
            out = tensor_to_pil(y[k])
            hm = tensor_to_pil(heat[k]) if heat is not None else None
            if keep_size and out.size != img.size:
                out = out.resize(img.size, Image.Resampling.BICUBIC)
                hm = hm.resize(img.size, Image.Resampling.BICUBIC) if hm is not None else None
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                out.save(dst, **({"quality": 95} if fmt == "jpg" else {}))
                if hm is not None:
                    hm.save(fit_name(dst.with_name(f"{dst.stem}_heatmap.png")))
            except OSError as e:
                raise NiceganError(f"{describe_os_error(e, 'cannot write a translation')}; "
                                   f"{len(report.written)} image(s) were written before it") from None
            report.written.append(dst)
    if not report.written:
        raise NiceganError(f"no usable images in {input_path} ({len(report.skipped)} file(s) could not be used)")
    if report.skipped:
        log.warning("skipped %d of %d files that are not usable images", len(report.skipped),
                    len(files) + len(not_files))
    return report


def input_files(input_path: str | Path) -> tuple[list[Path], Path | None, list[tuple[Path, str]]]:
    """The files an ``--input`` names: ``([file], None, [])`` for a file, else the regular files below the folder,
    the folder, and the entries left out with their reasons (each warned about)."""
    input_path = Path(input_path).expanduser()
    if input_path.is_dir():
        skipped: list[tuple[Path, str]] = []
        files = list_files(input_path, skipped)
        warn_skipped(skipped)
        if not files:
            raise NiceganError(f"no files in {input_path}" + (f" ({len(skipped)} entries are not regular files)"
                                                               if skipped else ""))
        return files, input_path, skipped
    problem = entry_problem(input_path)
    if problem == "file not found":
        raise NiceganError(f"input not found: {input_path}")
    if problem is not None:
        raise NiceganError(f"cannot read the input {input_path}: {problem}")
    return [input_path], None, []
