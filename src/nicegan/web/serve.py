"""The local web app (``nicegan serve``): a plain page to translate one image at a time with a trained model.

The user drops or picks an image, chooses a direction (those the model holds: a one-direction bundle offers one),
and sees the input, the translation and, for the CAM models, the attention heatmap side by side, with a PNG
download. ``POST /api/translate`` answers JSON (PNG data URLs) or the PNG itself; ``GET /health`` describes the
model. The page loads nothing from the network: its script and style are inline, and its Content-Security-Policy
allows this server only.

Uploads are checked before any pixel is decoded: the request's declared length, then the bytes counted while they
stream in (the body is never read whole before the check), then the part's content type, then the image header's
pixel count (decompression bombs). Every refusal is an HTTP 4xx with ``{"error": "..."}``, shown on the page.

Concurrency: requests are served concurrently (uploads stream on the event loop; decoding, translation and PNG
encoding run in the threadpool). The translation itself holds one lock on the model, so one image is translated at
a time with all of torch's threads, and the others wait their turn; the model's train/eval flag is then never
shared between two requests. At most ``max_queue`` requests hold an upload at once (each at most
``max_upload_bytes`` plus one decoded image of at most ``max_pixels``); a request beyond that gets 503 at once
instead of piling up memory.

Stopping (Ctrl-C, SIGTERM): :meth:`TranslationService.stop` is called at once (:func:`nicegan.web.common.run_app`);
the translation in progress ends at its next network layer, uploads still arriving are cut off, and every request
in flight is answered 503, so the server exits promptly instead of finishing a long full-resolution translation
first.

Multimodal models (:class:`~nicegan.models.base.StyleModel`) get a "style seed" box: seed ``S`` names the style
:func:`nicegan.inference.styles.resolve_style` gives it, code 0 of ``S``, the style ``nicegan translate --style-seed
S`` and ``Translator(..., style=S)`` give, so a seed reproduces a style here and elsewhere; one code serves the whole
image, every tile of a full-resolution translation included. An empty box draws a fresh seed, which the answer
reports.

This module does not use ``from __future__ import annotations``: FastAPI must see the real ``Request`` class of the
routes defined in :func:`create_app`, which string annotations would hide (it is imported inside the function).
"""

import asyncio
import base64
import contextlib
import io
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from nicegan.core.errors import NiceganError
from nicegan.web.common import BASE_HEADERS, PAGE_POLICY, require_web, script_json
from nicegan.web.pages import Markup, render

log = logging.getLogger("nicegan")

DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_QUEUE = 32
#: the longest one request may take, upload excluded: waiting for its turn plus translating (a 36-megapixel image at
#: full resolution on a CPU takes minutes; past this it is answered 503 and stopped, so nobody waits behind it)
DEFAULT_REQUEST_TIMEOUT_S = 300.0
#: Pillow's decompression-bomb limit (nicegan.data.images.MAX_PIXELS, not imported here: that loads torch, and the
#: command line reads these defaults while it builds its parser)
MAX_PIXELS = 89_478_485
#: room for the multipart headers and the small form fields around the file
MULTIPART_OVERHEAD = 64 * 1024
#: the longest an upload may take to arrive (a 20 MB upload needs only 1.4 Mbit/s)
UPLOAD_TIMEOUT_S = 120.0
#: the largest style seed: nicegan.inference.styles.MAX_STYLE_SEED, what the style resolver takes (not imported: that
#: loads torch; tests/test_style_resolver.py checks they agree)
MAX_SEED = 2**63 - 1
#: the largest seed the server draws for an empty box: JavaScript reads JSON numbers as doubles, exact up to 2**53 - 1,
#: so the page shows the drawn seed as it is and the user can type it back
MAX_DRAWN_SEED = 2**53 - 1
#: the Pillow decoders an upload may use: the common photo and web formats (JPEG covers the MPO files many phones
#: write). Others are refused, e.g. EPS, which Pillow hands to Ghostscript.
DECODERS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
FORMATS_HINT = "PNG, JPEG, WebP, BMP, TIFF or GIF"
TRUE = frozenset({"1", "true", "on", "yes"})
FALSE = frozenset({"", "0", "false", "off", "no"})
#: the answer to requests in flight when the server is asked to stop
STOPPING = "the server is stopping; try again when it is back"
#: how often an upload still arriving checks whether the server is stopping
STOP_POLL_S = 0.1
#: how often a request whose work runs checks whether its client has hung up
DISCONNECT_POLL_S = 0.25

class UploadError(NiceganError):
    """A request that cannot be served; ``status`` is its HTTP status and ``str()`` the message for the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServeLimits:
    """What one request may cost: upload bytes, decoded pixels, and requests holding an upload at once."""

    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_queue: int = DEFAULT_MAX_QUEUE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise NiceganError(f"max_upload_bytes must be positive, got {self.max_upload_bytes:g}",
                               option="max_upload_bytes")
        if not 1 <= self.max_pixels <= MAX_PIXELS:
            raise NiceganError(f"max_pixels must be between 1 and {MAX_PIXELS:,} (Pillow's decompression-bomb "
                               f"limit), got {self.max_pixels:,}", option="max_pixels")
        if self.max_queue < 1:
            raise NiceganError(f"max_queue must be at least 1, got {self.max_queue}", option="max_queue")
        if not 0 < self.request_timeout <= 86_400:
            raise NiceganError(f"request_timeout must be above 0 and at most 86400 s, got {self.request_timeout:g}",
                               option="request_timeout")

    @property
    def upload_mb(self) -> str:
        return f"{self.max_upload_bytes / 2**20:.3g} MB"


def too_large(what: str, limits: ServeLimits) -> UploadError:
    return UploadError(f"{what} is over this server's upload limit of {limits.upload_mb}", 413)


def check_image_type(content_type: str | None, name: str) -> None:
    """Refuse a part whose declared type is not an image (an empty or generic type is left to the decoder)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not kind.startswith("image/") and kind != "application/octet-stream":
        raise UploadError(f"{name} is {kind}, not an image; choose a {FORMATS_HINT} file", 415)


def decode_upload(data: bytes, max_pixels: int, name: str = "the upload") -> Image.Image:
    """Decode uploaded bytes into an upright 8-bit RGB image with :func:`nicegan.data.images.decode_rgb`, as
    ``translate`` decodes files, from the :data:`DECODERS` only; refuses empty data, non-images, damaged images and
    more than ``max_pixels`` pixels (read from the header, before decoding) with an :class:`UploadError`."""
    from nicegan.data.images import ImageDecodeError, decode_rgb

    if not data:
        raise UploadError(f"{name} is empty (0 bytes)")
    try:
        return decode_rgb(io.BytesIO(data), max_pixels, formats=DECODERS)
    except ImageDecodeError as e:
        if e.kind == "pixels" and e.size is not None:
            w, h = e.size
            raise UploadError(f"{name} is {w} x {h} = {w * h:,} pixels, over this server's limit of "
                              f"{max_pixels:,}", 413) from None
        if e.kind == "pixels":  # Pillow's own decompression-bomb check, past its limit
            raise UploadError(f"{name} declares more pixels than this server decodes ({max_pixels:,}): a "
                              "decompression bomb?", 413) from None
        if e.kind == "format":
            raise UploadError(f"{name} is not an image this server can read; choose a {FORMATS_HINT} file",
                              415) from None
        if e.kind == "empty":
            raise UploadError(f"{name}: {e}") from None
        if e.kind == "memory":  # the server's state, not the image's: worth another try later
            raise UploadError(f"the server ran out of memory decoding {name}; try a smaller image or try again "
                              "later", 503) from None
        raise UploadError(f"{name} is a damaged image that cannot be decoded ({(e.detail or str(e))[:200]})") from None


class Ticket:
    """One request's claim on the model: its deadline (``--request-timeout``) and whether its client has gone.
    :meth:`check` is called while it waits for its turn and before every network layer, so work for a client that
    hung up, or past its time, stops within one layer."""

    def __init__(self, timeout: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.gone = threading.Event()

    def check(self) -> None:
        if self.gone.is_set():
            raise UploadError("the client has gone", 499)
        if time.monotonic() > self.deadline:
            raise UploadError(f"this request took over the server's time limit of {self.timeout:g} s; turn full "
                              "resolution off or use a smaller image", 503)


@dataclass
class Result:
    """One translation: the output (and attention overlay), what was asked, and how long the network took."""

    image: Image.Image
    heatmap: Image.Image | None
    input_size: tuple[int, int]
    direction: str
    full_resolution: bool
    style_seed: int | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"direction": self.direction, "input_size": list(self.input_size),
                "output_size": list(self.image.size), "full_resolution": self.full_resolution,
                "style_seed": self.style_seed, "seconds": round(self.seconds, 4),
                "translation": data_url(self.image),
                "heatmap": data_url(self.heatmap) if self.heatmap is not None else None}


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def _out_of_memory(e: BaseException) -> bool:
    import torch

    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(e, RuntimeError) and ("out of memory" in str(e) or "can't allocate memory" in str(e)))


class TranslationService:
    """The app's work, free of HTTP: decode an upload, translate it under the model lock, describe the model.

    ``translator`` is a :class:`nicegan.Translator`; it is used only while :attr:`lock` is held."""

    def __init__(self, translator: Any, limits: ServeLimits | None = None) -> None:
        from nicegan.models.base import StyleModel

        self.translator = translator
        self.limits = limits or ServeLimits()
        self.has_style = isinstance(translator.model, StyleModel)
        self.lock = threading.Lock()
        #: requests waiting for the model, first come first served (a lock alone wakes waiters in any order)
        self._turns: list[Ticket] = []
        self._turn_changed = threading.Condition()
        self._slots = threading.BoundedSemaphore(self.limits.max_queue)
        #: set by :meth:`stop`; requests in flight then end with 503
        self.stopping = threading.Event()

    def stop(self) -> None:
        """Make every request in flight end now with 503 (the server is stopping). Safe to call from a signal
        handler: it only sets an event."""
        self.stopping.set()

    def check_running(self) -> None:
        """Refuse with 503 once :meth:`stop` was called."""
        if self.stopping.is_set():
            raise UploadError(STOPPING, 503)

    @contextlib.contextmanager
    def _turn(self, ticket: Ticket) -> Iterator[None]:
        """Wait for this request's turn on the model, in arrival order, then hold :attr:`lock`; a request whose
        client left, whose time is up or that arrives while the server stops leaves the queue at once."""
        with self._turn_changed:
            self._turns.append(ticket)
        try:
            while True:
                self.check_running()
                ticket.check()  # before taking the model: a request whose client left never runs a layer
                with self._turn_changed:
                    if self._turns[0] is ticket and self.lock.acquire(blocking=False):
                        break
                    self._turn_changed.wait(STOP_POLL_S)
        except BaseException:
            with self._turn_changed:
                self._turns.remove(ticket)
                self._turn_changed.notify_all()
            raise
        try:
            yield
        finally:
            with self._turn_changed:
                self._turns.remove(ticket)
                self.lock.release()
                self._turn_changed.notify_all()

    @contextlib.contextmanager
    def _interruptible(self, ticket: Ticket | None = None) -> Iterator[None]:
        """While the lock is held: every network layer first checks :meth:`check_running` and the request's
        ticket, so a stop, a client that hung up or the request's time limit ends even a long full-resolution
        translation within one layer (a forward pre-hook on each module, removed after)."""
        def hook(module: Any, args: Any) -> None:
            self.check_running()
            if ticket is not None:
                ticket.check()

        handles = [m.register_forward_pre_hook(hook) for m in self.translator.model.modules()]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    async def unless_stopping(self, awaitable: Any) -> Any:
        """Await ``awaitable`` (e.g. an upload still arriving), or cancel it and refuse with 503 as soon as
        :meth:`stop` is called."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=STOP_POLL_S)
                if done:
                    return task.result()
                self.check_running()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def info(self) -> dict[str, Any]:
        """What ``/health`` and the page say about the model and the limits."""
        t = self.translator
        return {"status": "ok", "model": t.name, "step": t.step, "img_size": t.img_size,
                "directions": list(t.directions), "heatmap": t.has_heatmap, "style": self.has_style,
                "device": str(t.device), "source": t.source.name if t.source is not None else None,
                "max_upload_bytes": self.limits.max_upload_bytes, "max_pixels": self.limits.max_pixels}

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``max_queue`` request slots, or refuse at once (503) when all are taken."""
        if not self._slots.acquire(blocking=False):
            raise UploadError(f"the server is busy ({self.limits.max_queue} requests in progress); try again in a "
                              "moment", 503)
        try:
            yield
        finally:
            self._slots.release()

    def options(self, fields: dict[str, str]) -> dict[str, Any]:
        """Check the request's options (``direction``, ``full_resolution``, ``style_seed``) before any decoding."""
        directions = self.translator.directions
        direction = fields.get("direction") or directions[0]
        if direction not in directions:
            have = " and ".join(directions)
            raise UploadError(f"this model translates {have} only, not {direction[:20]!r}")
        full = fields.get("full_resolution", "").strip().lower()
        if full not in TRUE | FALSE:
            raise UploadError(f"full_resolution must be 1 or 0, got {full[:20]!r}")
        seed_text = fields.get("style_seed", "").strip()
        seed = None
        if seed_text:
            if not self.has_style:
                raise UploadError(f"the {self.translator.name} model has no style codes: leave style_seed out")
            # ASCII digits only (int() reads "\u0663" too) and no more of them than MAX_SEED has (int() refuses
            # thousands of digits with an error of its own)
            if (not (seed_text.isascii() and seed_text.isdigit()) or len(seed_text) > len(str(MAX_SEED))
                    or int(seed_text) > MAX_SEED):
                raise UploadError(f"style_seed must be a whole number from 0 to {MAX_SEED}, got {seed_text[:20]!r}")
            seed = int(seed_text)
        return {"direction": direction, "full_resolution": full in TRUE, "style_seed": seed}

    def translate(self, data: bytes, name: str = "the upload", direction: str = "a2b", full_resolution: bool = False,
                  style_seed: int | None = None, ticket: Ticket | None = None) -> Result:
        """Decode ``data`` and translate it; :class:`UploadError` for anything the user can fix (503 once the server
        is stopping or past the request's time limit, 499 once its client has gone)."""
        ticket = ticket or Ticket(self.limits.request_timeout)
        self.check_running()
        image = decode_upload(data, self.limits.max_pixels, name)
        if full_resolution:
            self.check_full_resolution(image.size, name)
        if self.has_style and style_seed is None:
            style_seed = secrets.randbelow(MAX_DRAWN_SEED + 1)
        try:
            with self._turn(ticket), self._interruptible(ticket):
                self.check_running()  # it may have waited for its turn while the server was asked to stop
                started = time.perf_counter()
                out, heat = self._translation(image, direction, full_resolution, style_seed)
                seconds = time.perf_counter() - started
        except UploadError:
            raise
        except NiceganError as e:  # e.g. the memory estimate of a full-resolution translation
            raise UploadError(str(e)) from None
        except (RuntimeError, MemoryError) as e:
            if not _out_of_memory(e):
                raise
            raise UploadError("out of memory translating this image; turn full resolution off or use a smaller "
                              "image", 503) from None
        log.info("translated a %dx%d image %s%s in %.2f s", *image.size, direction,
                 " at full resolution" if full_resolution else "", seconds)
        return Result(out, heat, image.size, direction, full_resolution, style_seed, seconds)

    def check_full_resolution(self, size: tuple[int, int], name: str) -> None:
        """Refuse (413) a full-resolution translation whose enlarged input would be over ``max_pixels``: an image
        whose shorter side is below the training size is first enlarged to it, so a 3 x 40,000 strip would become
        megapixels of work and memory (the decoded size alone was checked)."""
        w, h = size
        scale = max(1.0, self.translator.img_size / max(1, min(w, h)))
        ew, eh = round(w * scale), round(h * scale)
        if ew * eh > self.limits.max_pixels:
            raise UploadError(f"{name} is {w} x {h} pixels; at full resolution its shorter side is enlarged to "
                              f"{self.translator.img_size} px, {ew} x {eh} = {ew * eh:,} pixels, over this server's "
                              f"limit of {self.limits.max_pixels:,}; turn full resolution off", 413)

    def _translation(self, image: Image.Image, direction: str, full_resolution: bool,
                     seed: int | None) -> tuple[Image.Image, Image.Image | None]:
        """The translation (and heatmap) of one upload. A style seed goes to the Translator as ``style=seed``, so
        the shared resolver turns it into one code for the whole image (every tile too), with a generator of its
        own: torch's global one is never touched."""
        t = self.translator
        style = {"style": seed} if seed is not None else {}
        if t.has_heatmap:
            return t(image, direction, keep_size=full_resolution, heatmap=True, **style)
        return t(image, direction, keep_size=full_resolution, **style), None


# -- HTTP ---------------------------------------------------------------------------------------------------------


async def _limited(stream: AsyncIterator[bytes], limit: int, limits: ServeLimits) -> AsyncIterator[bytes]:
    """The request body's chunks, refused (413) as soon as more than ``limit`` bytes have arrived."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise too_large("the upload", limits)
        yield chunk


#: the part headers python-multipart reads (its DEFAULT_MAX_HEADER_SIZE): a longer part head is refused by it
MAX_PART_HEAD = 4096 + 128


class _Tap:
    """A request body passed through as it streams, keeping its first bytes and its last ones: enough to tell a
    body cut off before its closing boundary (a client that stopped sending, which the multipart parser takes for a
    complete form) and a part whose headers are over :data:`MAX_PART_HEAD` (a long file name) from damage."""

    HEAD = 16 * 1024
    TAIL = 256

    def __init__(self, stream: AsyncIterator[bytes], content_type: str) -> None:
        self._stream = stream
        self.head = b""
        self.tail = b""
        m = re.search(r'boundary="?([^";]{1,200})"?', content_type, re.IGNORECASE)
        self.closing = b"--" + m.group(1).encode("latin-1") + b"--" if m else None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pass()

    async def _pass(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            if len(self.head) < self.HEAD:
                self.head += chunk[: self.HEAD - len(self.head)]
            self.tail = (self.tail + chunk)[-self.TAIL:]
            yield chunk
        # Raised inside the parser's loop, so that it closes the temporary file of a part it never saw end.
        if self.closing is not None and not self.tail.rstrip(b"\r\n \t").endswith(self.closing):
            raise UploadError("the upload is incomplete: the multipart body ends without its closing boundary "
                              "(the client stopped sending?)")

    def long_part_head(self) -> int:
        """The length of the first part head over :data:`MAX_PART_HEAD` seen in the body's first bytes, or 0."""
        for part in self.head.split(b"\r\n--")[:8]:
            head, sep, _ = part.partition(b"\r\n\r\n")
            if len(head) > MAX_PART_HEAD or (not sep and len(part) > MAX_PART_HEAD):
                return len(head)
        return 0


async def read_upload(request: Any, limits: ServeLimits) -> tuple[bytes, str, dict[str, str]]:
    """The uploaded image's bytes, its name for messages, and the form fields; the size is checked as the body
    streams in (never after reading it whole).

    Accepts ``multipart/form-data`` with the image in the field ``file`` (what the page and ``curl -F`` send), or
    the image as the whole body with an ``image/*`` (or ``application/octet-stream``) Content-Type."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = kind == "multipart/form-data"
    if not multipart and kind and not kind.startswith("image/") and kind != "application/octet-stream":
        raise UploadError(f"send the image as multipart/form-data (field 'file') or as the request body with an "
                          f"image/* Content-Type, not {kind[:60]}", 415)
    allowed = limits.max_upload_bytes + (MULTIPART_OVERHEAD if multipart else 0)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > allowed:  # refused before a byte of the body is read
        raise too_large("the upload", limits)
    body = _limited(request.stream(), allowed, limits)
    if not multipart:
        data = bytearray()
        async for chunk in body:
            data += chunk
        return bytes(data), "the upload", {}
    tap = _Tap(body, request.headers.get("content-type", ""))
    parser = MultiPartParser(request.headers, tap, max_files=1, max_fields=8, max_part_size=1024)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        long_head = tap.long_part_head()
        if long_head:
            raise UploadError(f"a part of the upload has {long_head:,} bytes of headers, over the {MAX_PART_HEAD:,} "
                              "this server reads (a file name that long?); rename the file", 431) from None
        raise UploadError(f"the upload is not valid multipart/form-data ({e.message})") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UploadError("the upload has no file: send the image in the form field 'file'")
        name = (upload.filename or "the file")[:80]
        check_image_type(upload.content_type, name)
        data = await upload.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise too_large(name, limits)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return data, name, fields
    finally:
        await form.close()


def create_app(service: TranslationService) -> Any:
    """The FastAPI app: the page at ``/``, ``POST /api/translate`` and ``GET /health``."""
    require_web("nicegan serve")
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    # no /docs (it loads scripts from a CDN) and no schema: the page needs only these routes
    app = FastAPI(title="nicegan serve", docs_url=None, redoc_url=None, openapi_url=None)
    json_headers = {**BASE_HEADERS, "Cache-Control": "no-store"}
    page = render_page(service)

    def error(status: int, message: str) -> Any:
        return JSONResponse({"error": message}, status_code=status, headers=json_headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Any:
        return error(exc.status_code, str(exc.detail).lower() if exc.status_code in (404, 405) else str(exc.detail))

    # async: the page and /health never wait behind translations for a threadpool thread
    @app.get("/", response_class=HTMLResponse)
    async def index() -> Any:
        return HTMLResponse(page, headers={**BASE_HEADERS, "Cache-Control": "no-store",
                                           "Content-Security-Policy": PAGE_POLICY})

    @app.get("/health")
    async def health() -> Any:
        return JSONResponse(service.info(), headers=json_headers)

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return Response(status_code=204)

    @app.post("/api/translate")
    async def translate(request: Request) -> Any:
        fmt = request.query_params.get("format", "json")
        try:
            if fmt not in ("json", "png", "heatmap"):
                raise UploadError(f"format must be json, png or heatmap, got {fmt[:20]!r}")
            if fmt == "heatmap" and not service.translator.has_heatmap:
                raise UploadError(f"the {service.translator.name} model has no attention heatmap")
            with service.slot():
                try:  # a client that stops sending must hold neither its slot nor the shutdown for ever
                    data, name, fields = await service.unless_stopping(
                        asyncio.wait_for(read_upload(request, service.limits), UPLOAD_TIMEOUT_S))
                except TimeoutError:
                    raise UploadError(f"the upload stalled: not complete after {UPLOAD_TIMEOUT_S:.0f} s", 408) from None
                options = service.options({**request.query_params, **fields})
                return await _until_gone(request, Ticket(service.limits.request_timeout),
                                         lambda ticket: run_in_threadpool(_answer, service, data, name, options, fmt,
                                                                          ticket))
        except UploadError as e:
            if e.status == 499:  # nobody is left to read an answer
                return Response(status_code=499)
            return error(e.status, str(e))
        except ClientDisconnect:  # nobody is left to read an answer
            return Response(status_code=400)
        except Exception:  # a bug: the server carries on and the page says so
            log.exception("nicegan serve: internal error")
            return error(500, "internal error (logged on the server)")

    async def _until_gone(request: Request, ticket: Ticket, work: Any) -> Any:
        """Run ``work(ticket)``; when the client hangs up meanwhile, mark the ticket so that the work stops within
        one network layer (or leaves the queue), and wait for it to end."""
        task = asyncio.ensure_future(work(ticket))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
                if done:
                    return task.result()
                if not ticket.gone.is_set() and await request.is_disconnected():
                    log.info("nicegan serve: the client hung up; its translation is stopped")
                    ticket.gone.set()
        finally:
            if not task.done():  # this coroutine was cancelled: the work must not run on without anyone to answer
                ticket.gone.set()

    def _answer(service: TranslationService, data: bytes, name: str, options: dict[str, Any], fmt: str,
                ticket: Ticket) -> Any:
        result = service.translate(data, name, ticket=ticket, **options)
        service.check_running()  # encoding a large result takes seconds: not when the server is stopping
        ticket.check()
        if fmt == "json":
            return JSONResponse(result.to_json(), headers=json_headers)
        image = result.image if fmt == "png" else result.heatmap
        return Response(png_bytes(image), media_type="image/png",
                        headers={**json_headers, "X-Nicegan-Seconds": f"{result.seconds:.4f}"})

    return app


def render_page(service: TranslationService) -> str:
    """The page, with the model's name, directions and limits filled in."""
    info = service.info()
    labels = {"a2b": "A \u2192 B", "b2a": "B \u2192 A"}
    options = "".join(f'<option value="{d}">{labels[d]} ({d})</option>' for d in info["directions"])
    style = ('<label class="control">Style seed <input type="number" id="seed" min="0" '
             f'max="{MAX_SEED}" step="1" placeholder="random"></label>') if info["style"] else ""
    mp = info["max_pixels"] / 1e6
    config = {"maxUploadBytes": info["max_upload_bytes"], "uploadLimit": service.limits.upload_mb,
              "heatmap": info["heatmap"], "style": info["style"]}
    subtitle = " \u00b7 ".join(("nicegan serve", f"model {info['model']}", f"step {info['step']:,}",
                                f"trained at {info['img_size']} px"))
    return render("serve", "nicegan serve", SUBTITLE=subtitle, OPTIONS=Markup(options), STYLE=Markup(style),
                  LIMITS=f"up to {service.limits.upload_mb} and {mp:.3g} megapixels",
                  HEATMAP_HIDDEN="" if info["heatmap"] else " hidden", CONFIG=Markup(script_json(config)))
