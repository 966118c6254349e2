"""Inference: load a checkpoint's generators and translate single images or whole folders, batched, without grads."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from nicegan.config import RunConfig
from nicegan.data.images import ImageDecodeError, list_files, load_rgb
from nicegan.data.transforms import tensor_to_pil, test_transform
from nicegan.errors import CheckpointError, ConfigError, NiceganError
from nicegan.models.base import TranslationModel, check_direction
from nicegan.registry import create_model
from nicegan.training.checkpoint import load_checkpoint
from nicegan.training.state import load_nets, resolve_device
from nicegan.visual import heatmap_images

log = logging.getLogger("nicegan")

OUTPUT_FORMATS = ("png", "jpg")


def load_model(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[TranslationModel, RunConfig, int]:
    """Rebuild the model recorded in a checkpoint (file or run folder) and load its translation nets.

    Returns ``(model in eval mode on device, run config, training step)``.
    """
    ck = load_checkpoint(checkpoint)
    try:
        cfg = RunConfig.from_dict(ck["config"])
    except ConfigError as e:
        raise CheckpointError(f"{ck['path']} holds a config this nicegan cannot use ({e})") from None
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    model = create_model(cfg.model_name, cfg.model)
    load_nets(model, ck["nets"], names=model.generator_names, where=ck["path"])
    return model.to(dev).eval(), cfg, int(ck["step"])


def no_grad_context(model: TranslationModel) -> AbstractContextManager:
    """``inference_mode`` (fastest), or ``no_grad`` for models whose translation optimises (CoGAN's inversion)."""
    return torch.no_grad() if model.translation_needs_grad else torch.inference_mode()


def translate_tensor(model: TranslationModel, x: Tensor, direction: str) -> Tensor:
    """Translate a batch in [-1, 1] (any device handling is the caller's); output clamped to [-1, 1]."""
    with no_grad_context(model):
        return model.translate(x, check_direction(direction)).clamp(-1, 1)


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
                    device: torch.device | None = None, progress: bool | None = None) -> TranslateReport:
    """Translate an image file or every image below a folder into ``output_dir``, keeping relative names.

    Inputs of any size are resized to ``size`` x ``size`` for the network; outputs are written at that size, or
    at each input's own size with ``keep_size``. With ``heatmap`` a ``<name>_heatmap.png`` overlay of the model's
    attention map on the input is written too (models with a CAM only).
    """
    from tqdm import tqdm

    check_direction(direction)
    if fmt not in OUTPUT_FORMATS:
        raise NiceganError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    if batch_size < 1:
        raise NiceganError(f"--batch-size must be >= 1, got {batch_size}")
    input_path = Path(input_path).expanduser()
    if not input_path.exists():
        raise NiceganError(f"input not found: {input_path}")
    files, root = ([input_path], None) if input_path.is_file() else (list_files(input_path), input_path)
    if not files:
        raise NiceganError(f"no files in {input_path}")
    device = device or next(model.parameters()).device
    output_dir = Path(output_dir).expanduser()
    outputs = [output_dir / r for r in _output_names(files, root, fmt)]
    inputs_resolved = {f.resolve() for f in files}
    for o in outputs:
        if o.resolve() in inputs_resolved:
            raise NiceganError(f"refusing to overwrite the input image {o}; choose another --output folder")
    if heatmap and not model.has_heatmap:
        raise NiceganError(f"the {model.name} model has no attention heatmap (--heatmap)")

    report = TranslateReport()
    pending: list[tuple[Path, Path, Image.Image]] = []

    def flush() -> None:
        if not pending:
            return
        x = torch.stack([test_transform(img, size) for _, _, img in pending]).to(device)
        with no_grad_context(model):
            y = model.translate(x, direction).clamp(-1, 1)
            heat = heatmap_images(model.heatmap(x, direction), size, under=x) if heatmap else None
        model.accumulate_diagnostics(report.diagnostics, len(report.written), len(pending))
        for k, (_, dst, img) in enumerate(pending):
            out = tensor_to_pil(y[k])
            if keep_size and out.size != img.size:
                out = out.resize(img.size, Image.Resampling.BICUBIC)
            dst.parent.mkdir(parents=True, exist_ok=True)
            out.save(dst, **({"quality": 95} if fmt == "jpg" else {}))
            report.written.append(dst)
            if heat is not None:
                hm = tensor_to_pil(heat[k])
                if keep_size and hm.size != img.size:
                    hm = hm.resize(img.size, Image.Resampling.BICUBIC)
                hm.save(dst.with_name(f"{dst.stem}_heatmap.png"))
        pending.clear()

    model.check_input_size(size)
    bar_off = None if progress is None else not progress  # None: automatic (only on a terminal)
    for src, dst in tqdm(list(zip(files, outputs, strict=True)), desc="translating", unit="img", disable=bar_off):
        try:
            img = load_rgb(src)
        except ImageDecodeError as e:
            log.warning("skipping %s: %s", src, e)
            report.skipped.append((src, str(e)))
            continue
        pending.append((src, dst, img))
        if len(pending) == batch_size:
            flush()
    flush()
    if not report.written:
        raise NiceganError(f"no usable images in {input_path} ({len(report.skipped)} file(s) could not be decoded)")
    if report.skipped:
        log.warning("skipped %d of %d files that are not usable images", len(report.skipped), len(files))
    return report
