"""``nicegan translate``: translate an image or a folder with a checkpoint."""

from __future__ import annotations

import argparse
import logging

from nicegan.cli.common import add_checkpoint, add_device, add_progress, non_negative_int, positive_int

log = logging.getLogger("nicegan")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate images", description="Translate one image, every image below "
                       "a folder (recursively) or a video. Output files keep the input names (PNG by default); a video "
                       "input (.mp4, .mov, .mkv, .webm, .avi) gives a video --output file.")
    add_checkpoint(p)
    p.add_argument("--input", required=True, metavar="FILE_OR_DIR")
    p.add_argument("--output", required=True, metavar="DIR_OR_VIDEO", help="folder for translated images, or "
                   "the output video file for a video input")
    p.add_argument("--direction", required=True, choices=["a2b", "b2a"])
    p.add_argument("--size", type=positive_int, help="the shorter side the network sees (default: the training "
                   "size); the aspect ratio is kept (fixed-size models translate the centre square)")
    p.add_argument("--keep-size", action="store_true", help="translate at each input's full resolution in "
                   "overlapping tiles, blended without seams, and write it at its own size")
    p.add_argument("--tile", type=positive_int, help="tile side for --keep-size (default: the training size)")
    p.add_argument("--overlap", type=non_negative_int, help="overlap of neighbouring tiles in px (default: a "
                   "quarter tile)")
    p.add_argument("--heatmap", action="store_true", help="also write <name>_heatmap.png (attention over the input)")
    p.add_argument("--styles", type=positive_int, metavar="K", help="multimodal models: translate each input with K "
                   "random style codes of the target domain, written as NAME_s0.png ... NAME_s{K-1}.png (style k is "
                   "the same for every input)")
    p.add_argument("--style-seed", type=non_negative_int, metavar="S", help="multimodal models: seed of the random "
                   "style codes (default 0; the same seed gives the same styles)")
    p.add_argument("--style-from", metavar="IMAGE", help="multimodal models: example-guided translation with the "
                   "style code of IMAGE, a reference image of the target domain")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--format", default="png", choices=["png", "jpg"], help="output format (default png, lossless)")
    p.add_argument("--video-size", metavar="WxH|H", help="video input: output size, e.g. 1280x720, or a height "
                   "(width from the aspect ratio); default the input's size")
    p.add_argument("--crf", type=non_negative_int, default=18, help="video input: encoder quality, lower is better "
                   "(H.264 0-51, VP9 0-63; default 18)")
    p.add_argument("--compile", action="store_true", help="torch.compile the translation: the first batch of each "
                   "input size compiles (minutes on a CPU; the kernels are cached for later runs), later batches run "
                   "faster where the compiler helps (docs/performance.md)")
    add_device(p, default="auto")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.deploy.video import is_video

    if not args.keep_size and (args.tile is not None or args.overlap is not None):
        log.warning("--tile and --overlap apply to --keep-size only; without it they are ignored")
    if is_video(args.input):
        return _run_video(args)
    from nicegan.inference import load_model, translate_paths

    model, cfg, step = load_model(args.checkpoint, args.device)
    _maybe_compile(model, args)
    size = args.size or cfg.model.img_size
    styles = _style_codes(model, args)
    report = translate_paths(model, args.input, args.output, args.direction, size, keep_size=args.keep_size,
                             heatmap=args.heatmap, batch_size=args.batch_size, fmt=args.format,
                             progress=args.progress, tile=args.tile, overlap=args.overlap, styles=styles)
    log.info("translated %d image(s) %s with %s (step %d) into %s", len(report.written), args.direction,
             cfg.model_name, step, args.output)
    for key, value in report.diagnostics.items():
        log.info("%s: %.6g", key, value)
    return 0


def _maybe_compile(model, args: argparse.Namespace) -> None:
    """``--compile``: compile the model's translation (:func:`nicegan.nn.compiled.compile_translation`)."""
    if args.compile:
        from nicegan.nn.compiled import compile_translation

        compile_translation(model, next(model.parameters()).device)
        log.info("torch.compile: the first batch of each input size compiles the translation (minutes on a CPU)")


def _style_codes(model, args: argparse.Namespace):
    """The style codes the options ask for (``K x style_dim``), None for a model without styles and no option.

    A multimodal model given none of the options translates every input with one seeded style (code 0 of
    ``--style-seed``, default 0), so the same command always writes the same images. A seed and a reference image
    become codes in :func:`nicegan.inference.styles.resolve_style`, as for the Python API and the web app.
    """
    from pathlib import Path

    from nicegan.core.errors import NiceganError
    from nicegan.inference.styles import require_style_model, resolve_style, style_bank, target_domain
    from nicegan.models.base import StyleModel

    asked = [opt for opt, value in (("--styles", args.styles), ("--style-seed", args.style_seed),
                                    ("--style-from", args.style_from)) if value is not None]
    if asked:
        require_style_model(model, " and ".join(asked))
    elif not isinstance(model, StyleModel):
        return None
    if args.styles is not None and args.style_from is not None:
        raise NiceganError("--styles draws random style codes and --style-from takes one from an image: give one")
    seed = 0 if args.style_seed is None else args.style_seed
    if args.style_from is not None:
        if args.style_seed is not None:
            log.warning("--style-seed is ignored with --style-from (the style comes from the image)")
        code = resolve_style(model, Path(args.style_from), args.direction, "--style-from")
        log.info("style code of %s (domain %s)", args.style_from, target_domain(args.direction).upper())
        return code[None]
    if args.styles is not None:
        return style_bank(model, args.styles, seed)
    log.info("multimodal model: one random style (style seed %d) for every input; --styles K writes K styles "
             "per input", seed)
    return resolve_style(model, seed, args.direction, "--style-seed")[None]


def _run_video(args: argparse.Namespace) -> int:
    """``--input`` is a video file (by its extension): translate it frame by frame into the ``--output`` video."""
    from nicegan.core.errors import NiceganError
    from nicegan.deploy.video import describe_rate, import_av, parse_video_size, translate_video
    from nicegan.inference import load_model

    if args.heatmap:
        raise NiceganError("--heatmap is for images; it is not available for a video input")
    if args.styles is not None or args.style_from is not None or args.style_seed is not None:
        raise NiceganError("--styles, --style-seed and --style-from are for images; they are not available for a "
                           "video input")
    import_av()  # before the model loads: a missing PyAV is said first
    video_size = parse_video_size(args.video_size) if args.video_size else None
    model, cfg, step = load_model(args.checkpoint, args.device)
    _maybe_compile(model, args)
    r = translate_video(model, args.input, args.output, args.direction, args.size, video_size=video_size,
                        crf=args.crf, batch_size=args.batch_size, keep_size=args.keep_size, tile=args.tile,
                        overlap=args.overlap, progress=args.progress)
    net = f"network {r.network_size[0]}x{r.network_size[1]}" if r.network_size else "full resolution in tiles"
    log.info("translated %d frame(s) %s with %s (step %d) into %s: %dx%d at %s fps, %s, %s; %.3g frames/s",
             r.frames, args.direction, cfg.model_name, step, r.output, *r.size, describe_rate(r.rate), r.codec, net,
             r.fps)
    for audio in r.audio:
        log.info("audio: %s", audio)
    for key, value in r.diagnostics.items():
        log.info("%s: %.6g", key, value)
    return 0
