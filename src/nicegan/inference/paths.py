"""Translate files: an image or a folder of images in, translated images (and heatmaps) written out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.core.files import describe_os_error, entry_problem, fit_name, writable_dir
from nicegan.core.progress import track
from nicegan.data.images import ImageDecodeError, list_files, load_rgb, warn_skipped
from nicegan.inference.batches import check_translation_memory
from nicegan.inference.images import translate_images
from nicegan.models.base import HeatmapModel, StyleModel, TranslationModel

log = logging.getLogger("nicegan")


OUTPUT_FORMATS = ("png", "jpg")


@dataclass
class TranslateReport:
    """Outcome of :func:`translate_paths`."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    diagnostics: dict[str, float] = field(default_factory=dict)  # image-weighted means of the model's diagnostics
    fits: dict[str, int] = field(default_factory=dict)  # how many inputs were fitted in each way (Translation.fit)


def _output_names(files: list[Path], root: Path | None, ext: str) -> list[Path]:
    """Relative output paths: the input's relative path with the new extension; clashing stems keep the old one."""
    rel = [f.relative_to(root) if root else Path(f.name) for f in files]
    stems = [r.with_suffix(f".{ext}") for r in rel]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [Path(f"{r}.{ext}") if s in clashes else s for r, s in zip(rel, stems, strict=True)]


def translate_paths(model: TranslationModel, input_path: Path, output_dir: Path, direction: str, size: int,
                    keep_size: bool = False, heatmap: bool = False, batch_size: int = 8, fmt: str = "png",
                    progress: bool | None = None, tile: int | None = None,
                    overlap: int | None = None, styles: Tensor | None = None) -> TranslateReport:
    """Translate an image file or every image below a folder into ``output_dir``, keeping relative names.

    Inputs are fitted to the network as :func:`translate_images` describes (aspect ratio kept; with
    ``keep_size`` at full resolution in tiles). With ``heatmap`` a ``<name>_heatmap.png`` overlay of the model's
    attention map on the input is written too (models with a CAM only).

    ``styles`` (multimodal models): a ``K x style_dim`` bank of style codes. With one code every input is
    translated with it under its own name; with K > 1 each input is translated K times, into ``NAME_s0`` ...
    ``NAME_s{K-1}`` (code k for every input's ``_sk``).
    """
    model.require_direction(direction)
    if fmt not in OUTPUT_FORMATS:
        raise NiceganError(f"fmt must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}", option="fmt")
    if batch_size < 1:
        raise NiceganError(f"batch_size must be >= 1, got {batch_size}", option="batch_size")
    files, root, not_files = input_files(input_path)
    output_dir = Path(output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise NiceganError(f"output_dir {output_dir} is an existing file; give a folder for the translations",
                           option="output_dir")
    names = _output_names(files, root, fmt)
    bank: list[Tensor | None] = [None]
    if styles is not None:
        if not isinstance(model, StyleModel):
            raise NiceganError(f"the {model.name} model has no style codes (multimodal models such as munit have them)")
        bank = list(styles.reshape(-1, styles.shape[-1]))
    passes = [names] if len(bank) == 1 else [[n.with_name(f"{n.stem}_s{k}{n.suffix}") for n in names]
                                             for k in range(len(bank))]
    outputs_by_pass = [[fit_name(output_dir / r) for r in rel] for rel in passes]
    inputs_resolved = {f.resolve() for f in files}
    for o in (o for outputs in outputs_by_pass for o in outputs):
        if o.resolve() in inputs_resolved:
            raise NiceganError(f"refusing to overwrite the input image {o}; choose another output_dir",
                               option="output_dir")
    if heatmap and not isinstance(model, HeatmapModel):
        raise NiceganError(f"heatmap: the {model.name} model has no attention heatmap", option="heatmap")

    model.check_input_size(size)
    if not keep_size:
        check_translation_memory(model, size, min(batch_size, len(files)), direction)
    writable_dir(output_dir, "output folder")
    report = TranslateReport(skipped=list(not_files))
    for k, (code, outputs) in enumerate(zip(bank, outputs_by_pass, strict=True)):
        desc = "translating" if len(bank) == 1 else f"translating, style {k + 1}/{len(bank)}"
        _translate_pass(model, files, outputs, direction, size, report, desc, first=k == 0, style=code,
                        keep_size=keep_size, tile=tile, overlap=overlap, heatmap=heatmap, batch_size=batch_size,
                        fmt=fmt, progress=progress)
    if not report.written:
        raise NiceganError(f"no usable images in {input_path} ({len(report.skipped)} file(s) could not be used)")
    if report.skipped:
        log.warning("skipped %d of %d files that are not usable images", len(report.skipped),
                    len(files) + len(not_files))
    log_fits(report.fits, size)
    return report


def _translate_pass(model: TranslationModel, files: list[Path], outputs: list[Path], direction: str, size: int,
                    report: TranslateReport, desc: str, first: bool, style: Tensor | None, keep_size: bool,
                    tile: int | None, overlap: int | None, heatmap: bool, batch_size: int, fmt: str,
                    progress: bool | None) -> None:
    """Translate every file once (with one style code, for multimodal models) into ``outputs``; ``first``: the
    first pass over the files, the one that reports unreadable files and counts fits."""
    destinations: list[Path] = []  # output paths of the images loaded and not yet written, in order

    def images() -> Iterator[Image.Image]:
        for src, dst in track(list(zip(files, outputs, strict=True)), desc=desc, unit="img",
                              progress=progress, quiet=len(files) < batch_size):
            try:
                img = load_rgb(src)
            except ImageDecodeError as e:
                if first:
                    warn_skipped([(src, str(e))])
                    report.skipped.append((src, str(e)))
                continue
            destinations.append(dst)
            yield img

    for t in translate_images(model, images(), direction, size, keep_size=keep_size, tile=tile, overlap=overlap,
                              heatmap=heatmap, batch_size=batch_size, progress=progress,
                              diagnostics=report.diagnostics if first else None, style=style):
        dst = destinations.pop(0)
        if t.fit and first:
            report.fits[t.fit] = report.fits.get(t.fit, 0) + 1
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            t.image.save(dst, **({"quality": 95} if fmt == "jpg" else {}))
            if t.heatmap is not None:
                t.heatmap.save(fit_name(dst.with_name(f"{dst.stem}_heatmap.png")))
        except OSError as e:
            raise NiceganError(f"{describe_os_error(e, 'cannot write a translation')}; "
                               f"{len(report.written)} image(s) were written before it") from None
        report.written.append(dst)


def log_fits(fits: dict[str, int], size: int) -> None:
    """Tell the user what happened to inputs that were not squares (or were tiled)."""
    if fits.get("aspect"):
        log.info("%d image(s) were not square: translated whole with their aspect ratio kept (shorter side %d px); "
                 "keep_size translates at full resolution", fits["aspect"], size, extra={"option": "keep_size"})
    if fits.get("cropped"):
        log.warning("%d image(s) were not square and this model translates only %d x %d squares: each was resized "
                    "(shorter side %d px) and only its centre square translated; keep_size covers the whole "
                    "image in tiles", fits["cropped"], size, size, size, extra={"option": "keep_size"})
    if fits.get("tiled"):
        log.info("%d image(s) translated at full resolution in overlapping tiles", fits["tiled"])


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
