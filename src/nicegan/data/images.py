"""Robust image discovery and decoding.

Every image the toolkit reads (training, translation, evaluation) goes through :func:`load_rgb`, which returns an
8-bit RGB ``PIL.Image`` whatever the file holds: grayscale, palette, RGBA/LA (composited on white), CMYK, 16-bit and
32-bit integer or float images (scaled to 8 bits), EXIF-rotated photos (turned upright). The format is detected
from the content, so a PNG named ``.jpg`` loads. Files that cannot be decoded (zero bytes, truncated, not an image,
decompression bombs) raise :class:`ImageDecodeError` with a short reason; :func:`scan_images` turns those into one
warning per file and a summary, or into an error in strict mode.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps

from nicegan.core.errors import DataError
from nicegan.core.files import describe_os_error, entry_problem
from nicegan.core.limits import SCAN_CACHE_BOUNDS, read_json_file

log = logging.getLogger("nicegan")

#: Images with more pixels than this are refused as possible decompression bombs (Pillow's own default limit).
MAX_PIXELS = 89_478_485


class ImageDecodeError(Exception):
    """A file that is not a usable image; ``str()`` is the reason.

    ``kind`` says which kind of reason: ``"file"`` (not a regular file that can be read), ``"format"`` (no image
    format the decoder reads, or an empty file), ``"pixels"`` (more pixels than allowed; ``size`` is the declared
    width and height, or None when Pillow's own decompression-bomb check refused it), ``"empty"`` (a side of 0
    pixels), ``"memory"`` (this machine ran out of memory decoding it: no fault of the file) or ``"damaged"``
    (``detail`` holds the decoder's own words)."""

    def __init__(self, message: str, kind: str = "damaged", size: tuple[int, int] | None = None,
                 detail: str = "") -> None:
        super().__init__(message)
        self.kind, self.size, self.detail = kind, size, detail


def image_size_problem(width: int, height: int, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why an image of ``width`` x ``height`` pixels cannot be translated (no pixels, or more than ``max_pixels``),
    or None; checked before anything is allocated for it. Every entry point (files, uploads, the Python API) gives
    this same reason."""
    if width < 1 or height < 1:
        return f"the image is {width} x {height} pixels: an empty image cannot be translated"
    if width * height > max_pixels:
        return (f"the image is {width} x {height} = {width * height:,} pixels, over the {max_pixels:,}-pixel limit "
                "(decompression bomb?)")
    return None


# Pillow reports decoding oddities (a broken EXIF block, a decompression bomb) as warnings; the filters that turn
# them into errors or silence are process-wide, so decodes in threads (the web servers) take turns.
_DECODE_LOCK = threading.Lock()


def list_files(folder: Path, skipped: list[tuple[Path, str]] | None = None) -> list[Path]:
    """All regular files below ``folder`` (recursively, following links to folders once), hidden files and
    folders excluded, in a stable order.

    Entries that are not regular files after resolving links (named pipes, devices, sockets, dangling links, link
    loops) and unreadable folders are left out: appended to ``skipped`` as ``(path, reason)``, or warned about one
    by one when ``skipped`` is None. A named pipe in particular is never opened (that would block forever).
    """
    found: list[tuple[Path, str]] = []
    out: list[Path] = []
    seen: set[tuple[int, int]] = set()

    def on_error(e: OSError) -> None:
        found.append((Path(e.filename or folder), describe_os_error(e, "cannot list the folder")))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree: list each folder once
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if f.startswith("."):
                continue
            path = Path(dirpath) / f
            problem = entry_problem(path)
            if problem is None:
                out.append(path)
            elif problem != "a folder, not a file":
                found.append((path, problem))
    if skipped is None:
        warn_skipped(found)
    else:
        skipped.extend(found)
    return sorted(out, key=lambda p: os.fsencode(p.relative_to(folder).as_posix()))


_WARNED: set[tuple[str, str]] = set()


def reset_skip_warnings() -> None:
    """Start a new scope for :func:`warn_skipped` (the command line does at the start of every command)."""
    _WARNED.clear()


def warn_skipped(entries: Iterable[tuple[Path, str]], summary: str = "", option: str | None = None) -> None:
    """One warning per skipped file and reason (a folder read again at every evaluation step does not repeat
    them), then ``summary`` (also once, naming the setting ``option``) until :func:`reset_skip_warnings`."""
    for path, reason in entries:
        key = (os.fsdecode(path), reason)
        if key not in _WARNED:
            _WARNED.add(key)
            log.warning("skipping %s: %s", path, reason)
    if summary and ("", summary) not in _WARNED:
        _WARNED.add(("", summary))
        log.warning("%s", summary, extra={"option": option})


def _to_8bit(im: Image.Image) -> Image.Image:
    """Scale high-bit-depth single-channel images to 8-bit grayscale (convert('L') would clip them)."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float64))
        arr = arr * 255.0 if arr.max(initial=0.0) <= 1.0 else arr
    else:  # integer images: I;16* are 16-bit; 'I' (32-bit) in practice holds 16-bit data from PNG/TIFF
        arr = arr.astype(np.float64) / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any decoded PIL image to 8-bit RGB."""
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        return _to_8bit(im).convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an upright 8-bit RGB image; :class:`ImageDecodeError` if it cannot be used."""
    problem = entry_problem(path)
    if problem is not None:  # never open a FIFO or a device: it may block or never end
        raise ImageDecodeError(problem, kind="file")
    try:
        return decode_rgb(path)
    except ImageDecodeError as e:
        if e.kind == "format" and _size_or_none(path) == 0:
            raise ImageDecodeError("empty file", kind="format") from None
        raise


def decode_rgb(source: str | os.PathLike | IO[bytes], max_pixels: int = MAX_PIXELS,
               formats: tuple[str, ...] | None = None) -> Image.Image:
    """Decode an image file (or a binary file object, e.g. an upload's bytes) fully into an upright 8-bit RGB
    image: EXIF orientation applied, transparency on white, high bit depths scaled (:func:`to_rgb`).

    Refuses with :class:`ImageDecodeError` anything that is not an image, is damaged, or declares more than
    ``max_pixels`` pixels in its header (checked before the pixels are decoded). ``formats`` limits the Pillow
    decoders tried (None: all). A path is opened as it is: :func:`load_rgb` first checks that it names a regular
    file.
    """
    if formats is not None:
        Image.init()  # registers every decoder once: Image.open(formats=...) needs the ones it names
    try:
        with _DECODE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. Pillow's corrupt-EXIF warning: the image itself is fine
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageDecodeError(f"{w}x{h} pixels is over the {max_pixels:,}-pixel limit "
                                           "(decompression bomb?)", kind="pixels", size=(w, h))
                if w < 1 or h < 1:
                    raise ImageDecodeError(image_size_problem(w, h) or "", kind="empty", size=(w, h))
                im.load()
                with contextlib.suppress(Exception):  # a broken EXIF block must not cost the image
                    im = ImageOps.exif_transpose(im)
                out = to_rgb(im)
                out.load()
                return out
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageDecodeError(f"decompression bomb refused (over the {MAX_PIXELS:,}-pixel limit)",
                               kind="pixels") from None
    except Image.UnidentifiedImageError:
        raise ImageDecodeError("not an image (unknown format)", kind="format") from None
    except MemoryError:  # the machine's state, not the file's: never call it damaged
        raise ImageDecodeError("not enough memory to decode it", kind="memory") from None
    except OSError as e:
        if e.errno is not None:  # a system error (permission, I/O), not a decoding one
            raise ImageDecodeError(describe_os_error(e, "cannot read"), kind="file") from None
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageDecodeError(f"cannot decode ({msg})", detail=msg) from None
    except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, EOFError...) for bad data
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageDecodeError(f"cannot decode ({msg})", detail=msg) from None


def _size_or_none(path: str | os.PathLike) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


@dataclass
class ScanResult:
    """Outcome of checking a list of files: decodable ones and (file, reason) for the others."""

    good: list[Path] = field(default_factory=list)
    bad: list[tuple[Path, str]] = field(default_factory=list)


def scan_images(files: Iterable[Path], cache_file: Path | None = None, desc: str = "checking images",
                progress: bool | None = None) -> ScanResult:
    """Decode every file once; results are cached by (size, mtime) in ``cache_file`` so resumes do not redo it."""
    from nicegan.core.progress import track

    files = list(files)
    cache: dict[str, list] = {}
    if cache_file is not None and cache_file.is_file():
        try:
            cache = read_json_file(cache_file, **SCAN_CACHE_BOUNDS)
        except (OSError, ValueError):  # DamagedFileError is a ValueError: the scan is done again
            cache = {}
        if not isinstance(cache, dict):
            cache = {}
    result, changed = ScanResult(), False
    for f in track(files, desc=desc, unit="img", progress=progress, quiet=len(files) <= 200):
        problem = entry_problem(f)
        if problem is not None:
            result.bad.append((f, problem))
            continue
        st = f.stat()
        key, sig = os.fsencode(f.resolve()).decode("utf-8", "backslashreplace"), [st.st_size, st.st_mtime_ns]
        hit = cache.get(key)
        if hit is not None and hit[:2] == sig:
            reason = hit[2]
        else:
            try:
                load_rgb(f)
                reason = ""
            except ImageDecodeError as e:
                reason = str(e)
                if e.kind == "memory":  # not the file's fault: decode it again next time
                    result.bad.append((f, reason))
                    continue
            cache[key], changed = [*sig, reason], True
        (result.bad.append((f, reason)) if reason else result.good.append(f))
    if cache_file is not None and changed:
        try:
            tmp = cache_file.with_name(f".{cache_file.name}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_file)
        except OSError:
            pass  # the cache only saves time
    return result


def checked_image_files(folder: Path, strict: bool, cache_file: Path | None = None,
                        progress: bool | None = None) -> list[Path]:
    """Decodable images of ``folder``: DataError if it is missing or has none; bad files warned about or fatal."""
    if not folder.is_dir():
        raise DataError(f"folder not found: {folder}" if not folder.exists() else f"not a folder: {folder}")
    not_files: list[tuple[Path, str]] = []
    files = list_files(folder, not_files)
    if not files and not not_files:
        raise DataError(f"no images in {folder}")
    res = scan_images(files, cache_file, desc=f"checking {folder.name}", progress=progress)
    res.bad[:0] = not_files
    if res.bad:
        if strict:
            f, reason = res.bad[0]
            more = f" (and {len(res.bad) - 1} more)" if len(res.bad) > 1 else ""
            raise DataError(f"cannot use {f}: {reason}{more}; fix or remove it, or train without strict",
                            option="strict")
        warn_skipped(res.bad, f"skipped {len(res.bad)} of {len(files) + len(not_files)} files in {folder} (use "
                     "strict to make this an error)", option="strict")
    if not res.good:
        raise DataError(f"no decodable images in {folder} ({len(res.bad)} files could not be read)")
    return res.good
