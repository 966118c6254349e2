"""``nicegan data download``: the standard unpaired datasets, fetched resumably, verified and safely extracted.

The transfer goes to ``DIR/NAME.part`` with a small ``DIR/NAME.part.json`` beside it (the URL, the announced size
and the server's ETag or Last-Modified). An interrupted transfer, whether the connection dropped (retried here a few
times) or the command was stopped, continues from the bytes already on disk with an HTTP ``Range`` request;
``If-Range`` makes the server send the whole file again if it changed in between. Every read has a timeout, so a
dead connection never hangs the command; a transfer slower than a minimum rate (averaged over each timeout period)
counts as dropped, and the whole transfer, retries included, has a deadline: a server that sends a byte now and then
cannot hold the command for ever (a watchdog shuts the connection down at the deadline, whatever it is blocked in).

Verification: the SHA-256 of the whole file is always computed and printed. When one is pinned (``--sha256`` or
:data:`DATASETS`; surrounding whitespace and case do not matter) a mismatch is an error and the file is deleted:
resuming cannot repair a complete file with the wrong bytes, and keeping it would make every later run fail the same
way. A file whose hash matches the pin is never deleted, even when it is no usable dataset archive. Without a pin,
the size must match the server's ``Content-Length`` and the archive must read back completely (every zip member's
CRC, every tar member).

Extraction refuses the whole archive if any member has an absolute name, a ``..`` component, or is a link pointing
outside the archive; links that stay inside are skipped (a dataset needs none, and never creating a link means no
later member can be written through one). It writes into a temporary folder next to the target and renames it into
place at the end, so the target is either the complete dataset or untouched. The archive's top folders (the
CycleGAN zips hold ``NAME/trainA/...``) are dropped: the result is ``DIR/NAME/{trainA,trainB,testA,testB}``.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import math
import os
import re
import shutil
import socket
import stat
import tarfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from nicegan.core.errors import NiceganError
from nicegan.core.files import describe_os_error, replace_folder, sha256_file
from nicegan.core.limits import DOWNLOAD_DEADLINE, DOWNLOAD_MIN_RATE, SMALL_RECORD_BOUNDS, read_json_file
from nicegan.core.progress import reporter
from nicegan.core.version import __version__
from nicegan.data.check import FOLDERS

log = logging.getLogger("nicegan")

#: base URL of the CycleGAN datasets (the Berkeley mirror named in pytorch-CycleGAN-and-pix2pix's download script)
CYCLEGAN_BASE = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"

#: when set, every dataset NAME is fetched from ``$NICEGAN_DATASET_MIRROR/NAME.zip`` (a local mirror; tests)
MIRROR_ENV = "NICEGAN_DATASET_MIRROR"

CHUNK = 1 << 16
#: an archive bomb's bound: the files extracted may total at most this many times the archive's size, or
#: MIN_BOMB_BYTES, whichever is more (image datasets hardly compress: the CycleGAN zips expand by about 1.0x)
MAX_EXPANSION = 50
MIN_BOMB_BYTES = 512_000_000
#: the most entries an archive may hold (the largest CycleGAN dataset has about 10,000)
MAX_MEMBERS = 1_000_000
MB = 1_000_000
#: seconds before the first automatic retry of a dropped transfer (doubled each time, at most 30 s)
RETRY_DELAY = 2.0
#: default seconds a whole transfer may take, and slowest average rate in bytes per second (see nicegan.core.limits)
DEADLINE, MIN_RATE = DOWNLOAD_DEADLINE, DOWNLOAD_MIN_RATE

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")


class BadArchive(NiceganError):
    """The downloaded file is no usable dataset archive (damaged, unsafe, wrong layout): it is not kept."""


@dataclass(frozen=True)
class DatasetInfo:
    """A downloadable dataset: where it is published and, when known for sure, the SHA-256 of the archive."""

    name: str
    url: str
    source: str
    sha256: str | None = None
    note: str = ""


_CYCLEGAN = ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "vangogh2photo", "cezanne2photo",
             "ukiyoe2photo", "maps", "facades", "iphone2dslr_flower")

# No SHA-256 is pinned: none could be checked from the machine this was written on (no network), and a guessed
# hash would reject the real file. `nicegan data download` prints the hash of what it fetched; pin it with --sha256.
DATASETS: dict[str, DatasetInfo] = {
    **{n: DatasetInfo(n, f"{CYCLEGAN_BASE}/{n}.zip", "CycleGAN (Zhu et al., ICCV 2017)") for n in _CYCLEGAN},
    "cat2dog": DatasetInfo(
        "cat2dog", "http://vllab.ucmerced.edu/hylee/DRIT/datasets/cat2dog.zip", "DRIT (Lee et al., ECCV 2018)",
        note="URL from DRIT's datasets/download_dataset.sh, not checked live; 871 cats, 1364 dogs (DRIT README)"),
}
for _n in ("maps", "facades"):  # pix2pix's paired sets, published in the unpaired layout too
    DATASETS[_n] = DatasetInfo(_n, f"{CYCLEGAN_BASE}/{_n}.zip", DATASETS[_n].source,
                               note="paired in origin (pix2pix); here in the unpaired trainA/trainB layout")


@dataclass
class DownloadResult:
    """What :func:`download` produced."""

    name: str
    url: str
    target: Path
    sha256: str
    size: int
    pinned: bool
    counts: dict[str, int]


def resolve(name: str, url: str | None = None) -> tuple[str, str | None]:
    """``(url, pinned sha256)`` of ``name``: ``--url`` first, then the mirror variable, then :data:`DATASETS`."""
    if not _NAME_RE.match(name):
        raise NiceganError(f"bad dataset name {name!r}: letters, digits, '.', '_' and '-' only")
    info = DATASETS.get(name)
    if info is None and url is None:
        raise NiceganError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))} (or give url)",
                           option="url")
    if url is None:
        mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
        url = f"{mirror}/{name}.zip" if mirror else info.url  # type: ignore[union-attr]
    # urlsplit silently drops tabs and line breaks, http.client refuses them: say so before any request
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise NiceganError(f"the address {url!r} holds a space, line break or other control character; remove it")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number from 0 to 65535)
    except ValueError as e:
        raise NiceganError(f"not a valid address: {url} ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NiceganError(f"not an http:// or https:// address: {url}")
    return url, info.sha256 if info is not None else None


def normalize_sha256(text: str) -> str:
    """A SHA-256 as given by a user (surrounding whitespace, either case, e.g. pasted with its line break) in the
    lower-case form :func:`nicegan.core.files.sha256_file` prints; :class:`NiceganError` if it is not 64 hex digits."""
    value = text.strip().lower()
    if not _HEX_RE.fullmatch(value):
        raise NiceganError(f"sha256 must be 64 hexadecimal digits, got {text!r}", option="sha256")
    return value


def _mb(n: float | None) -> str:
    return "? MB" if n is None else f"{n / MB:.1f} MB"


# --------------------------------------------------------------------------------------------------- transfer

class _Interrupted(Exception):
    """The connection broke mid-transfer: the bytes so far are kept and the transfer can resume."""


class _Watchdog:
    """Shuts down the sockets of a transfer when its deadline passes, whatever they are blocked in (the connect, the
    headers, a read): socket timeouts bound each wait, not their sum, so a server sending one byte per timeout
    period would otherwise hold the command for ever."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def remaining(self) -> float:
        return math.inf if self.end is None else max(0.0, self.end - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock``'s connection down at the deadline. A duplicate descriptor is kept: TLS wraps (and detaches)
        the socket object, and a descriptor of our own cannot be reused by another file meanwhile."""
        dup = sock.dup()
        with self._lock:
            self._sockets.append(dup)
            if self.expired:
                _shut(dup)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:  # shutdown ends the connection for every descriptor and blocked read
                _shut(sock)

    def release(self) -> None:
        """Close the duplicates of the connections made so far (each request's, once it is over)."""
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets = []

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.release()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watched(base: type[http.client.HTTPConnection], watchdog: _Watchdog) -> Any:
    """``base`` whose new sockets are handed to ``watchdog`` as soon as they are connected."""

    class Watched(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            create = self._create_connection

            def created(*a: Any, **k: Any) -> socket.socket:
                sock = create(*a, **k)
                watchdog.watch(sock)
                return sock

            self._create_connection = created

    return Watched


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib's default opener (proxies and redirects included) whose connections the watchdog can shut down."""

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req: Request) -> Any:
            return self.do_open(_watched(http.client.HTTPConnection, watchdog), req)

    handlers: list[Any] = [HTTP()]
    if hasattr(urllib.request, "HTTPSHandler"):  # Python built with ssl

        class HTTPS(urllib.request.HTTPSHandler):
            def https_open(self, req: Request) -> Any:
                return self.do_open(_watched(http.client.HTTPSConnection, watchdog), req,
                                    context=self._context)  # type: ignore[attr-defined]

        handlers.append(HTTPS())
    return urllib.request.build_opener(*handlers)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = read_json_file(path, **SMALL_RECORD_BOUNDS)
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(meta))
    except OSError as e:
        raise NiceganError(describe_os_error(e, f"cannot write {path}")) from None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total)`` of a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header."""
    m = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", value or "")
    if not m:
        return None, None
    return (int(m.group(1)) if m.group(1) else None), (int(m.group(2)) if m.group(2) != "*" else None)


def _network_error(url: str, e: BaseException, timeout: float) -> NiceganError:
    host = urlsplit(url).hostname
    reason = e.reason if isinstance(e, URLError) else e
    if isinstance(reason, TimeoutError):
        return NiceganError(f"no answer from {host} within {timeout:g} s (network down or server too slow?)")
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return NiceganError(f"cannot reach {host}: {text} (no network, or the server is down?)")


def _open(url: str, have: int, validator: str | None, timeout: float, watchdog: _Watchdog) -> Any:
    headers = {"User-Agent": f"nicegan/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if validator:
            headers["If-Range"] = validator
    try:  # the scheme was checked in resolve()
        return _opener(watchdog).open(Request(url, headers=headers), timeout=timeout)
    except HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: complete already, or the part is not of this file
            _, total = _content_range(e.headers.get("Content-Range"))
            e.close()
            return ("complete", total)
        e.close()
        raise NiceganError(f"HTTP error {e.code} ({e.reason}) from {url}") from None
    except http.client.InvalidURL as e:  # no retry can fix the address
        raise NiceganError(f"not a valid address: {url} ({e})") from None
    except (ConnectionError, http.client.HTTPException) as e:  # dropped before the headers: worth a retry
        raise _Interrupted(str(e) or type(e).__name__) from None
    except (URLError, TimeoutError, OSError) as e:
        raise _network_error(url, e, timeout) from None


def _transfer(url: str, part: Path, meta_path: Path, timeout: float, progress: bool | None, watchdog: _Watchdog,
              min_rate: float) -> int:
    """One request: append to ``part`` from where it ends; returns the size, or raises :class:`_Interrupted`."""
    meta = _read_meta(meta_path)
    have = part.stat().st_size if part.exists() else 0
    total = meta.get("total")
    if have and total == have:
        return have
    resp = _open(url, have, meta.get("validator"), timeout, watchdog)
    if isinstance(resp, tuple):  # 416
        if resp[1] == have:
            return have
        log.info("the partial download does not fit the file on the server: starting over")
        part.unlink()
        return _transfer(url, part, meta_path, timeout, progress, watchdog, min_rate)
    with resp:
        if resp.status == 206:
            first, total = _content_range(resp.headers.get("Content-Range"))
            if first != have:
                part.unlink()
                raise _Interrupted(f"the server sent bytes from {first}, not from {have}")
            mode = "ab"
        elif resp.status == 200:
            if have:
                log.info("the server sent the whole file (it changed, or cannot resume): starting over")
            have, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise NiceganError(f"unexpected HTTP status {resp.status} from {url}")
        etag = resp.headers.get("ETag")
        validator = etag if etag and not etag.startswith("W/") else resp.headers.get("Last-Modified")
        _write_meta(meta_path, {"url": url, "total": total, "validator": validator})
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if total - have > free:
                raise NiceganError(f"not enough disk space in {part.parent}: the download needs "
                                   f"{_mb(total - have)} more, {_mb(free)} free")
        bar = reporter(None if total is None else max(1, math.ceil(total / MB)), f"downloading {part.stem}",
                       unit="MB", progress=progress, initial=have // MB)
        shown = have // MB
        try:
            out = open(part, mode)  # noqa: SIM115 (closed by the with below)
        except OSError as e:
            bar.close()
            raise NiceganError(describe_os_error(e, f"cannot write {part}")) from None
        # the rate is measured over windows of ``timeout`` seconds: read1 returns whatever one socket read brings
        # (read(n) would wait for all n bytes, however slowly they trickle in)
        window_start, window_have = time.monotonic(), have
        try:
            with out:
                while True:
                    try:
                        chunk = resp.read1(CHUNK)
                    except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets; ValueError:
                        raise _Interrupted(str(e) or type(e).__name__) from None  # a socket shut by the watchdog
                    if watchdog.expired:  # the data may be cut short: never take an end of data for the end
                        raise _Interrupted("deadline")
                    if not chunk:
                        break
                    try:
                        out.write(chunk)
                    except OSError as e:
                        raise NiceganError(describe_os_error(e, f"cannot write {part}")) from None
                    have += len(chunk)
                    if have // MB > shown:
                        bar.update(have // MB - shown)
                        shown = have // MB
                    now = time.monotonic()
                    if now - window_start >= timeout:
                        rate = (have - window_have) / (now - window_start)
                        if rate < min_rate:
                            raise _Interrupted(f"too slow: {_rate(rate)} over the last {now - window_start:.0f} s, "
                                               f"under the minimum of {_rate(min_rate)} (min_rate)")
                        window_start, window_have = now, have
        finally:
            bar.close()
    if total is not None and have < total:
        raise _Interrupted(f"the connection closed after {_mb(have)} of {_mb(total)}")
    if total is not None and have > total:
        part.unlink()
        raise NiceganError(f"{url} sent {have} bytes, more than the {total} it announced; the download was deleted")
    if total is None:  # now the size is known: a later run need not ask again
        _write_meta(meta_path, {**_read_meta(meta_path), "total": have})
    return have


def _rate(bytes_per_s: float) -> str:
    return f"{bytes_per_s / 1000:.3g} kB/s"


def fetch(url: str, part: Path, *, timeout: float = 30.0, retries: int = 3, progress: bool | None = None,
          deadline: float | None = DEADLINE, min_rate: float = MIN_RATE) -> int:
    """Download ``url`` into ``part`` (resuming what is there), retrying dropped connections; returns the size.

    ``deadline``: seconds the whole transfer, retries included, may take (None: no limit); ``min_rate``: bytes per
    second a transfer must average over each ``timeout`` period, or it counts as dropped (0: no minimum). Either
    way the bytes so far stay in ``part`` for the next run.
    """
    meta_path = part.with_name(part.name + ".json")
    meta = _read_meta(meta_path)
    if part.exists() and meta.get("url") != url:
        log.info("%s holds a partial download of another address: starting over", part)
        part.unlink()
    watchdog = _Watchdog(deadline)

    def late(reason: str = "") -> NiceganError:
        have = part.stat().st_size if part.exists() else 0
        return NiceganError(f"download of {url} not complete within the deadline of {deadline:g} s (deadline)"
                            f"{reason}: {_mb(have)} kept; run the same command again to resume from {part}",
                            option="deadline")

    attempt = 0
    try:
        while True:
            try:
                try:
                    return _transfer(url, part, meta_path, timeout, progress, watchdog, min_rate)
                finally:
                    watchdog.release()
            except _Interrupted as e:
                if watchdog.expired:
                    raise late() from None
                have = part.stat().st_size if part.exists() else 0
                attempt += 1
                if attempt > retries:
                    raise NiceganError(f"download of {url} interrupted after {_mb(have)} ({e}); run the same "
                                       f"command again to resume from {part}",
                                       option="min_rate" if "(min_rate)" in str(e) else None) from None
                delay = min(30.0, RETRY_DELAY * 2 ** (attempt - 1))
                if delay >= watchdog.remaining():
                    raise late(f" (interrupted after {_mb(have)}: {e}; no time left to retry)") from None
                log.warning("connection lost after %s (%s); resuming in %g s (retry %d of %d)", _mb(have), e, delay,
                            attempt, retries, extra={"option": "min_rate" if "(min_rate)" in str(e) else None})
                time.sleep(delay)
            except NiceganError:
                if watchdog.expired:  # e.g. "cannot reach": the watchdog shut the connection down
                    raise late() from None
                raise
    finally:
        watchdog.cancel()


@contextlib.contextmanager
def _locked(path: Path, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two downloads never append to the same partial file."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the size and archive checks still catch a mixed file
        yield
        return
    try:
        fh = open(path, "a")  # noqa: SIM115 (held for the whole block)
    except OSError as e:
        raise NiceganError(describe_os_error(e, f"cannot write {path}")) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the holder removes the file when it ends: a lock won on that removed file guards nothing, because a
            # third run may already hold a new file of the same name
            if not os.path.samestat(os.fstat(fh.fileno()), os.stat(path)):
                raise OSError(errno.EAGAIN, "lock file replaced")
        except OSError:
            raise NiceganError(busy) from None
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()


# ------------------------------------------------------------------------------------------------- archives

@dataclass
class _Member:
    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    size: int
    link: str
    ref: Any  # the ZipInfo or TarInfo


class _Archive:
    """A zip or tar file seen as a list of members with one way to read a file member."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if zipfile.is_zipfile(path):
                self.zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
                self.tar: tarfile.TarFile | None = None
            elif tarfile.is_tarfile(path):
                self.zip, self.tar = None, tarfile.open(path)  # noqa: SIM115 (closed by close())
            else:
                raise BadArchive(f"the download is not a zip or tar archive{_looks_like(path)}")
        except NiceganError:
            raise
        except Exception as e:  # zipfile and tarfile raise many types for damaged data
            raise BadArchive(f"the downloaded archive is damaged: {_reason(e)}") from None

    def close(self) -> None:
        (self.zip or self.tar).close()  # type: ignore[union-attr]

    def members(self) -> list[_Member]:
        out = []
        if self.zip is not None:
            for info in self.zip.infolist():
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    link = self.zip.read(info).decode("utf-8", "replace")
                    out.append(_Member(info.filename, "symlink", 0, link, info))
                else:
                    out.append(_Member(info.filename, "dir" if info.is_dir() else "file", info.file_size, "", info))
            return out
        for info in self.tar.getmembers():  # type: ignore[union-attr]
            kind = ("file" if info.isreg() else "dir" if info.isdir() else "symlink" if info.issym()
                    else "hardlink" if info.islnk() else "other")
            out.append(_Member(info.name, kind, info.size, info.linkname, info))
        return out

    def open(self, m: _Member) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(m.ref)
        fh = self.tar.extractfile(m.ref)  # type: ignore[union-attr]
        if fh is None:
            raise BadArchive(f"the archive member {m.name!r} has no data")
        return fh

    def test(self) -> None:
        """Read every member completely (zip: CRC checked); :class:`NiceganError` at the first damaged one."""
        try:
            if self.zip is not None:
                bad = self.zip.testzip()
                if bad is not None:
                    raise BadArchive(f"the downloaded archive is damaged: member {bad!r} fails its CRC check")
                return
            for m in self.members():
                if m.kind in ("file", "hardlink"):
                    with self.open(m) as fh:
                        while fh.read(CHUNK):
                            pass
        except NiceganError:
            raise
        except Exception as e:  # BadZipFile, zlib.error, EOFError, ReadError, ...
            raise BadArchive(f"the downloaded archive is damaged: {_reason(e)}") from None


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _looks_like(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
    except OSError:
        return ""
    return " (it looks like a web page: is the address right?)" if head.startswith((b"<!doctype", b"<html")) else ""


def _parts(name: str) -> tuple[str, ...]:
    """The path components of an archive name; :class:`NiceganError` if it could leave the target folder."""
    text = name.replace("\\", "/")  # archives made on Windows may use either separator
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise BadArchive(f"refusing the archive: member {name!r} has an absolute path")
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if ".." in parts:
        raise BadArchive(f"refusing the archive: member {name!r} would be written outside the target folder")
    return parts


def _link_target(m: _Member, parts: tuple[str, ...]) -> tuple[str, ...]:
    """Where a link member points, as archive path components; :class:`NiceganError` if outside the archive."""
    text = m.link.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise BadArchive(f"refusing the archive: link {m.name!r} points to the absolute path {m.link!r}")
    # a symbolic link is relative to its folder, a hard link to the archive's root
    base = list(parts[:-1]) if m.kind == "symlink" else []
    for p in PurePosixPath(text).parts:
        if p == "..":
            if not base:
                raise BadArchive(f"refusing the archive: link {m.name!r} points outside it ({m.link!r})")
            base.pop()
        elif p != ".":
            base.append(p)
    return tuple(base)


def _layout_prefix(names: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The shortest folder holding all of trainA/ trainB/ testA/ testB/ (the CycleGAN zips: ``NAME/``)."""
    found: dict[tuple[str, ...], set[str]] = {}
    for parts in names:
        for i, p in enumerate(parts[:-1]):
            if p in FOLDERS:
                found.setdefault(parts[:i], set()).add(p)
    complete = [k for k, v in found.items() if v == set(FOLDERS)]
    if not complete:
        tops = sorted({p[0] for p in names if p})[:8]
        raise BadArchive(f"the archive does not hold {'/, '.join(FOLDERS)}/ folders (its top level: "
                           f"{', '.join(tops) or 'nothing'})")
    return min(complete, key=lambda k: (len(k), k))


def extract(archive_path: Path, dest: Path) -> dict[str, int]:
    """Extract the dataset in ``archive_path`` into the new folder ``dest``; returns files per folder."""
    arc = _Archive(archive_path)
    try:
        # names and links first: reading a hard link whose target is missing fails inside tarfile (a KeyError), and
        # an unsafe archive must be named for what it is, not called damaged
        members = [m for m in arc.members() if m.name.replace("\\", "/").split("/")[0] != "__MACOSX"]
        if len(members) > MAX_MEMBERS:
            raise BadArchive(f"refusing the archive: it holds {len(members):,} entries, over {MAX_MEMBERS:,}")
        parts = {id(m): _parts(m.name) for m in members}  # every name is checked before anything is written
        stored: dict[tuple[str, ...], int] = {}  # a tar hard link refers to a member stored before it; its size
        sizes: dict[int, int] = {}  # what each member takes extracted (a hard link is extracted as a copy)
        for m in members:
            if m.kind in ("symlink", "hardlink"):
                target = _link_target(m, parts[id(m)])
                if m.kind == "hardlink" and target not in stored:
                    raise BadArchive(f"refusing the archive: hard link {m.name!r} points to {m.link!r}, which is not "
                                     "a file stored before it in the archive")
                if m.kind == "hardlink":
                    sizes[id(m)] = stored[target]
            if m.kind == "file":
                sizes[id(m)] = m.size
            if m.kind in ("file", "hardlink"):
                stored[parts[id(m)]] = sizes[id(m)]
        need = sum(sizes.values())  # before testing the archive, which decompresses every member
        allowed = max(MIN_BOMB_BYTES, MAX_EXPANSION * archive_path.stat().st_size)
        if need > allowed:
            raise BadArchive(f"refusing the archive: its files would take {_mb(need)} extracted, over "
                             f"{MAX_EXPANSION} times its own size (an archive bomb?)")
        arc.test()
        prefix = _layout_prefix([parts[id(m)] for m in members if m.kind in ("file", "hardlink")])
        chosen = [m for m in members if parts[id(m)][: len(prefix)] == prefix and len(parts[id(m)]) > len(prefix)]
        skipped = {k: sum(1 for m in chosen if m.kind == k) for k in ("symlink", "other")}
        if any(skipped.values()):
            log.info("skipped %d symbolic link(s) and %d special entries in the archive", skipped["symlink"],
                     skipped["other"])
        if len(chosen) < len(members):
            log.info("left out %d archive entries outside %s", len(members) - len(chosen), "/".join(prefix) or ".")
        need = sum(sizes.get(id(m), 0) for m in chosen)
        free = shutil.disk_usage(dest.parent).free
        if need > free:
            raise NiceganError(f"not enough disk space in {dest.parent}: extracting needs {_mb(need)}, {_mb(free)} "
                               "free")
        dest.mkdir()
        root = os.path.realpath(dest)
        counts = dict.fromkeys(FOLDERS, 0)
        for m in chosen:
            rel = parts[id(m)][len(prefix):]
            out = dest.joinpath(*rel)
            if m.kind == "dir":
                out.mkdir(parents=True, exist_ok=True)
                continue
            if m.kind not in ("file", "hardlink"):
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if os.path.commonpath([root, os.path.realpath(out.parent)]) != root:  # defence in depth
                raise BadArchive(f"refusing the archive: member {m.name!r} would be written outside the target")
            with arc.open(m) as src, open(out, "xb") as fh:
                shutil.copyfileobj(src, fh, CHUNK)
            if rel[0] in counts:
                counts[rel[0]] += 1
        return counts
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.EISDIR, errno.ENOTDIR):  # the archive's own names collide
            raise BadArchive(f"refusing the archive: its entries collide at {e.filename}") from None
        raise NiceganError(describe_os_error(e, "cannot extract the dataset")) from None
    except NiceganError:
        raise
    except Exception as e:  # damaged data met while extracting
        raise BadArchive(f"the downloaded archive is damaged: {_reason(e)}") from None
    finally:
        arc.close()


# ---------------------------------------------------------------------------------------------- the command

def _check_target(target: Path, force: bool) -> None:
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir() or target.is_symlink():
        raise NiceganError(f"{target} exists and is not a folder; move it away or choose another DIR")
    try:
        empty = not any(target.iterdir())
    except OSError as e:
        raise NiceganError(describe_os_error(e, f"cannot read {target}")) from None
    if not empty and not force:
        raise NiceganError(f"{target} exists and is not empty; pass force to replace it, or choose another DIR",
                           option="force")


def download(name: str, directory: str | Path, *, url: str | None = None, sha256: str | None = None,
             force: bool = False, timeout: float = 30.0, retries: int = 3, progress: bool | None = None,
             deadline: float | None = DEADLINE, min_rate: float = MIN_RATE) -> DownloadResult:
    """Download dataset ``name`` into ``directory/name`` (trainA/ trainB/ testA/ testB/), verified.

    Args:
        url: fetch from here instead of the published address (any ``name`` is then allowed).
        sha256: the expected SHA-256 of the archive (overrides a pinned one).
        force: replace an existing non-empty ``directory/name``.
        timeout: seconds any connect or read may wait before the attempt counts as failed; also the period over
            which ``min_rate`` is averaged.
        retries: automatic resumptions of a dropped transfer before giving up (the ``.part`` file is kept).
        deadline: seconds the whole transfer, retries included, may take (None: no limit; the ``.part`` is kept).
        min_rate: the slowest average transfer rate in bytes per second (0: any); slower counts as dropped.
    """
    url, pinned = resolve(name, url)
    if sha256 is not None:
        pinned = normalize_sha256(sha256)
    if not 0 < timeout < float("inf"):
        raise NiceganError(f"the timeout must be positive, got {timeout:g}")
    if deadline is not None and not 0 < deadline < float("inf"):
        raise NiceganError(f"the deadline must be a positive number of seconds, got {deadline:g}")
    if not 0 <= min_rate < float("inf"):
        raise NiceganError(f"the minimum rate must be 0 or more, got {min_rate:g}")
    base = Path(directory).expanduser()
    target = base / name
    _check_target(target, force)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NiceganError(describe_os_error(e, f"cannot create {base}")) from None
    part = base / f"{name}.part"
    meta = part.with_name(part.name + ".json")
    with _locked(base / f".{name}.part.lock", f"another download of {name} into {base} is running"):
        log.info("downloading %s from %s", name, url)
        size = fetch(url, part, timeout=timeout, retries=retries, progress=progress, deadline=deadline,
                     min_rate=min_rate)
        log.info("checking the archive (%s)", _mb(size))
        digest = sha256_file(part)
        verified = pinned is not None and digest == pinned
        if pinned and not verified:
            part.unlink()
            meta.unlink(missing_ok=True)
            raise NiceganError(f"sha256 mismatch for {name}: expected {pinned}, got {digest}; the download was "
                               "deleted; if the file changed upstream and you trust it, pin the new value (sha256)",
                               option="sha256")
        tmp = base / f".{name}.extract{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            counts = extract(part, tmp)
            _check_target(target, force)  # something may have appeared there while downloading
            _replace(tmp, target)
        except BadArchive as e:
            if verified:  # exactly the bytes the user pinned: theirs to inspect, never deleted
                raise BadArchive(f"{e}; the download matches the pinned sha256 and was kept in {part}") from None
            part.unlink(missing_ok=True)  # resuming cannot fix it: do not keep it
            meta.unlink(missing_ok=True)
            raise BadArchive(f"{e}; the download was deleted (sha256 {digest})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
    return DownloadResult(name, url, target, digest, size, pinned is not None, counts)


def _replace(new: Path, target: Path) -> None:
    """Move the extracted folder into place; an existing target (allowed by --force) is removed only after."""
    try:
        replace_folder(new, target)
    except OSError as e:
        shutil.rmtree(new, ignore_errors=True)
        reason = "the target is not empty" if e.errno in (errno.ENOTEMPTY, errno.EEXIST) else describe_os_error(e)
        raise NiceganError(f"cannot move the dataset into {target}: {reason}") from None
