"""``nicegan serve``: a local web page to translate images with a trained model (run folder, checkpoint or bundle)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from nicegan.cli.common import add_device, add_listen, positive_int

log = logging.getLogger("nicegan")


def _up_to(unit: str, limit: float) -> Callable[[str], float]:
    """An argparse type: a number of ``unit`` above 0 and at most ``limit`` (nan and inf refused)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit}, got {text!r}") from None
        if not 0 < value <= limit:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"must be above 0 and at most {limit:.0f}, got {text}")
        return value
    return parse


megabytes = _up_to("megabytes", 1e6)
seconds = _up_to("seconds", 86_400)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from nicegan.web.serve import (
        DEFAULT_MAX_PIXELS,
        DEFAULT_MAX_QUEUE,
        DEFAULT_MAX_UPLOAD_MB,
        DEFAULT_REQUEST_TIMEOUT_S,
    )

    p = sub.add_parser("serve", help="a local web page to translate images with a trained model",
                       description="Serve a page where you drop or pick an image, choose the direction, and see the "
                       "input, the translation and the attention heatmap (CAM models) side by side, with a PNG "
                       "download. POST /api/translate answers JSON or a PNG; GET /health describes the model. "
                       "Listens on 127.0.0.1 (this machine only) unless --host says otherwise.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_OR_BUNDLE",
                   help="run folder, checkpoint file or exported bundle")
    add_listen(p, port=7860)
    add_device(p, default="auto")
    p.add_argument("--max-upload-mb", type=megabytes, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                   help="largest upload accepted, checked while it streams in (default: %(default)g)")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help="largest image accepted in pixels, read from its header before decoding (default: "
                   "%(default)s; at most Pillow's decompression-bomb limit, 89478485)")
    p.add_argument("--max-queue", type=positive_int, default=DEFAULT_MAX_QUEUE, metavar="N",
                   help="requests holding an upload at once; more get 'busy' (HTTP 503) instead of using more "
                   "memory (default: %(default)s; one translation runs at a time)")
    p.add_argument("--request-timeout", type=seconds, default=DEFAULT_REQUEST_TIMEOUT_S, metavar="S",
                   help="longest a request may wait for its turn and translate, upload excluded; past it the work "
                   "stops and the answer is 'busy' (HTTP 503); a client that hangs up stops its work at once "
                   "(default: %(default)g)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nicegan.deploy.api import Translator
    from nicegan.web.common import browser_url, check_port, is_loopback, require_web, run_app
    from nicegan.web.serve import ServeLimits, TranslationService, create_app

    require_web("nicegan serve")  # before loading the model: a missing extra is said first
    limits = ServeLimits(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                         max_queue=args.max_queue, request_timeout=args.request_timeout)
    check_port(args.host, args.port)
    translator = Translator.load(args.checkpoint, args.device)
    service = TranslationService(translator, limits)
    extras = [what for what, has in (("heatmap", translator.has_heatmap), ("style seed", service.has_style)) if has]
    log.info("serving %s (step %d, %d px, %s%s) on %s", translator.name, translator.step, translator.img_size,
             "/".join(translator.directions), "".join(f", {e}" for e in extras), translator.device)
    log.info("uploads up to %s and %s pixels; one translation at a time, up to %d requests waiting",
             limits.upload_mb, f"{limits.max_pixels:,}", limits.max_queue)
    if not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach this machine on port %d can use the model (there is no "
                    "login); --host 127.0.0.1 keeps it to this machine", args.host, args.port)
    log.info("open %s  (Ctrl-C stops)", browser_url(args.host, args.port))
    # a stop ends the translation in progress at once (answered 503) instead of waiting for it
    run_app(create_app(service), args.host, args.port, on_stop=service.stop)
    log.info("stopped")
    return 0
