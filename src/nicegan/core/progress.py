"""Progress of long work: a bar on a terminal, plain periodic log lines everywhere else.

Every loop that can take more than a few seconds (scanning images, Inception features, translating, training)
reports through :func:`reporter`, so a job whose stderr is a file or a pipe (CI, ``nohup``, a cluster) still shows
that it is alive and how long it has left. ``progress=None`` means automatic (a bar only when stderr is a
terminal); ``False`` forces the plain lines; ``True`` forces the bar.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any

log = logging.getLogger("nicegan")

#: seconds between two plain progress lines (``NICEGAN_PROGRESS_INTERVAL`` overrides it, e.g. in tests)
DEFAULT_INTERVAL = 30.0


def interval() -> float:
    try:
        return max(0.0, float(os.environ.get("NICEGAN_PROGRESS_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 thread``, ``2 threads``, ``1,000 steps`` (``nouns``: an irregular plural)."""
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def hms(seconds: float) -> str:
    """``H:MM:SS`` (``?`` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class PlainProgress:
    """tqdm's small interface (``update``, ``set_postfix``, ``close``, context manager) as log lines: one every
    :func:`interval` seconds with rate and ETA, and a last one at ``close`` if the work took long enough to have
    printed one (so a long job's log always ends with its total)."""

    def __init__(self, total: int | None, desc: str, unit: str, initial: int = 0) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.start_n = initial
        self.t0 = self.last = time.monotonic()
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= interval():
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        done = self.n - self.start_n
        rate = done / max(now - self.t0, 1e-9)
        if self.total:
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            where = f"{self.n}/{self.total} ({100 * self.n / self.total:.0f} %)"
            tail = f", eta {hms(eta)}"
        else:
            where, tail = f"{self.n}", ""
        speed = f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate if rate else float('inf'):.3g} s/{self.unit}"
        log.info("%s: %s %s, %s%s%s", self.desc, where, self.unit, speed, tail, self.postfix)

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = False, **kw: Any) -> None:
        items = {**(values or {}), **kw}
        self.postfix = ("  " + "  ".join(f"{k} {v}" for k, v in items.items())) if items else ""

    def close(self) -> None:
        now = time.monotonic()
        if self.last != self.t0 or now - self.t0 >= interval():  # at least one line was due: end with the total
            self.last = now
            self._line(now)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Silent(PlainProgress):
    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass


def use_bar(progress: bool | None) -> bool:
    """Whether ``progress`` asks for a terminal bar (``None``: only when stderr is a terminal)."""
    if progress is None:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False
    return progress


def reporter(total: int | None, desc: str, unit: str = "it", progress: bool | None = None, initial: int = 0,
             leave: bool = False, quiet: bool = False) -> Any:
    """A progress reporter: a tqdm bar, or :class:`PlainProgress` lines (nothing at all with ``quiet``)."""
    if quiet:
        return _Silent(total, desc, unit, initial)
    if use_bar(progress):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave, dynamic_ncols=True)
    return PlainProgress(total, desc, unit, initial)


def track(items: Any, total: int | None = None, desc: str = "", unit: str = "it", progress: bool | None = None,
          quiet: bool = False) -> Any:
    """Iterate ``items`` while reporting through :func:`reporter`."""
    if total is None:
        try:
            total = len(items)
        except TypeError:
            total = None
    bar = reporter(total, desc, unit, progress, quiet=quiet)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
