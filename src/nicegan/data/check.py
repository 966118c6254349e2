"""``nicegan data check``: what training would see in a dataset folder, and what is wrong with it.

Each of ``trainA/ trainB/ testA/ testB/`` is listed and decoded with the trainer's own functions
(:func:`~nicegan.data.images.list_files`, :func:`~nicegan.data.images.load_rgb`), so a file the check calls usable
is one training uses and a file it calls unreadable is one training skips (or refuses with ``--strict``). On top of
that it reports image sizes and modes, and exact duplicates (SHA-256 of the bytes): a test image that is also a
training image of the same domain inflates evaluation scores (leakage), which is a warning; copies shared by A and B
or repeated within a folder are notes.

:func:`dataset_summary` is the one-line summary the trainer logs when it opens a dataset; the check ends with the
same line, so the two cannot disagree.
"""

from __future__ import annotations

import logging
import statistics
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from nicegan.core.errors import DataError
from nicegan.core.files import describe_os_error, sha256_file
from nicegan.core.progress import track
from nicegan.data.images import ImageDecodeError, list_files, load_rgb

log = logging.getLogger("nicegan")

#: the four folders of an unpaired dataset, in the order they are reported
FOLDERS = ("trainA", "trainB", "testA", "testB")

#: folders with fewer files than this are checked without a progress report
QUIET_BELOW = 200


def dataset_summary(root: str | Path, counts: Mapping[str, int]) -> str:
    """``data ROOT: trainA 1067 images, trainB 1334, testA 120, testB 140``: usable images per folder."""
    parts = [f"{name} {n} image{'s' if n != 1 else ''}" if i == 0 else f"{name} {n}"
             for i, (name, n) in enumerate(counts.items())]
    return f"data {root}: {', '.join(parts)}"


@dataclass
class FolderReport:
    """What one folder holds, as training would read it."""

    name: str
    path: Path
    exists: bool = True
    files: int = 0
    sizes: list[tuple[int, int]] = field(default_factory=list)  # usable images, upright (as training sees them)
    modes: Counter = field(default_factory=Counter)  # modes as stored in the files (before conversion to RGB)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    not_files: list[tuple[Path, str]] = field(default_factory=list)
    digests: dict[str, list[Path]] = field(default_factory=dict)  # sha256 -> usable files with those bytes

    @property
    def usable(self) -> int:
        return len(self.sizes)

    def problem(self) -> str | None:
        """Why training cannot use this folder, or None."""
        if not self.exists:
            return f"{self.name} is not a folder" if self.path.exists() else f"{self.name} is missing"
        if self.usable:
            return None
        if not self.files and not self.not_files:
            return f"{self.name} is empty"
        bad = len(self.unreadable) + len(self.not_files)
        return f"{self.name} has no usable images ({bad} unusable entr{'y' if bad == 1 else 'ies'})"

    def size_stats(self) -> dict[str, tuple[int, int]]:
        """min / median / max of width and height, each taken on its own (a median image need not exist)."""
        if not self.sizes:
            return {}
        ws, hs = [s[0] for s in self.sizes], [s[1] for s in self.sizes]
        return {"min": (min(ws), min(hs)), "median": (int(statistics.median_low(ws)), int(statistics.median_low(hs))),
                "max": (max(ws), max(hs))}


@dataclass
class Duplicates:
    """Files with identical bytes in two folders (or twice in one): ``pairs`` of (file in first, file in second)."""

    first: str
    second: str
    pairs: list[tuple[Path, Path]]

    @property
    def kind(self) -> str:
        """``leakage`` (train and test of one domain), ``cross-domain`` (A and B) or ``within`` (one folder)."""
        if self.first == self.second:
            return "within"
        if self.first[-1] == self.second[-1]:
            return "leakage"
        return "cross-domain"


@dataclass
class DatasetReport:
    """The outcome of :func:`check_dataset`."""

    root: Path
    folders: dict[str, FolderReport]
    duplicates: list[Duplicates]
    min_size: int | None = None
    label: str = ""  # the root as the user wrote it (the trainer's summary shows it so)

    def problems(self, strict: bool = False) -> list[str]:
        """Reasons training would refuse this dataset (with ``strict``: also any unreadable entry)."""
        out = [p for f in self.folders.values() if (p := f.problem())]
        if strict:
            for f in self.folders.values():
                bad = len(f.unreadable) + len(f.not_files)
                if f.exists and bad:
                    out.append(f"{f.name} has {bad} unusable entr{'y' if bad == 1 else 'ies'} (strict)")
        return out

    def summary(self) -> str:
        """The trainer's summary line for this dataset."""
        return dataset_summary(self.label or self.root, {name: f.usable for name, f in self.folders.items()})

    def small_images(self) -> dict[str, int]:
        """Per folder, how many usable images have a side under ``min_size`` (training upscales them)."""
        if not self.min_size:
            return {}
        return {name: n for name, f in self.folders.items()
                if (n := sum(1 for w, h in f.sizes if min(w, h) < self.min_size))}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (paths relative to the root)."""
        def rel(p: Path) -> str:
            return self.rel(p)

        folders = {}
        for name, f in self.folders.items():
            folders[name] = {
                "exists": f.exists, "files": f.files, "usable": f.usable,
                "size": {k: list(v) for k, v in f.size_stats().items()}, "modes": dict(f.modes),
                "unreadable": [[rel(p), r] for p, r in f.unreadable],
                "not_files": [[rel(p), r] for p, r in f.not_files], "problem": f.problem()}
        return {"root": str(self.root), "folders": folders,
                "duplicates": [{"kind": d.kind, "first": d.first, "second": d.second,
                                "pairs": [[rel(a), rel(b)] for a, b in d.pairs]} for d in self.duplicates],
                "small_images": self.small_images(), "min_size": self.min_size,
                "problems": self.problems(), "summary": self.summary()}

    def rel(self, p: Path) -> str:
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)


def _stored_mode(path: Path) -> str:
    """The file's own mode (``RGB``, ``L``, ``P``...): the header only, the pixels were already decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # load_rgb already judged the file; a header warning changes nothing
        with Image.open(path) as im:
            return im.mode


def check_folder(folder: Path, name: str, progress: bool | None = None) -> FolderReport:
    """Decode every file of one folder the way training does, hashing the usable ones."""
    rep = FolderReport(name, folder)
    if not folder.is_dir():
        rep.exists = False
        return rep
    files = list_files(folder, rep.not_files)
    rep.files = len(files)
    for path in track(files, desc=f"checking {name}", unit="img", progress=progress, quiet=len(files) < QUIET_BELOW):
        try:
            im = load_rgb(path)
            mode = _stored_mode(path)
            digest = sha256_file(path)
        except ImageDecodeError as e:
            rep.unreadable.append((path, str(e)))
            continue
        except OSError as e:  # the file changed or vanished between decoding and hashing
            rep.unreadable.append((path, describe_os_error(e, "cannot read")))
            continue
        rep.sizes.append(im.size)
        rep.modes[mode] += 1
        rep.digests.setdefault(digest, []).append(path)
    return rep


def find_duplicates(folders: Mapping[str, FolderReport]) -> list[Duplicates]:
    """Identical files within each folder, between train and test of a domain, and between the domains."""
    out: list[Duplicates] = []
    names = [n for n in FOLDERS if n in folders]
    for i, first in enumerate(names):
        for second in names[i:]:
            a, b = folders[first].digests, folders[second].digests
            if first == second:  # every further copy paired with the first one
                pairs = [(paths[0], p) for paths in a.values() for p in paths[1:]]
            else:
                pairs = [(a[d][0], b[d][0]) for d in a.keys() & b.keys()]
            if pairs:
                out.append(Duplicates(first, second, sorted(pairs)))
    order = {"leakage": 0, "cross-domain": 1, "within": 2}
    return sorted(out, key=lambda d: order[d.kind])


def check_dataset(root: str | Path, progress: bool | None = None, min_size: int | None = None) -> DatasetReport:
    """Check a dataset folder (``trainA/ trainB/ testA/ testB/``); :class:`DataError` if ``root`` is no folder."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data folder not found: {base}" if not base.exists() else f"not a folder: {base}")
    if not any((base / n).is_dir() for n in FOLDERS):
        found = sorted(p.name for p in base.iterdir() if not p.name.startswith("."))[:8]
        raise DataError(f"{base} has none of {', '.join(FOLDERS)} (it holds: {', '.join(found) or 'nothing'})")
    folders = {n: check_folder(base / n, n, progress) for n in FOLDERS}
    return DatasetReport(base, folders, find_duplicates(folders), min_size, label=str(root))


def _listing(report: DatasetReport, entries: list[tuple[Path, str]], limit: int, more: str) -> list[str]:
    lines = [f"    {report.rel(p)}: {reason}" for p, reason in entries[:limit]]
    if len(entries) > limit:
        lines.append(f"    ... and {len(entries) - limit} more ({more})")
    return lines


def format_report(report: DatasetReport, limit: int = 10, more: str = "to_dict() lists them all") -> list[str]:
    """The human-readable report, one string per line; a listing cut at ``limit`` ends with ``more``, the way to
    see the rest."""
    lines = [f"dataset {report.root}"]
    small = report.small_images()
    for f in report.folders.values():
        if not f.exists:
            lines.append(f"{f.name}: {'not a folder' if f.path.exists() else 'missing'}")
            continue
        lines.append(f"{f.name}: {f.files} file{'s' if f.files != 1 else ''}, {f.usable} usable")
        stats = f.size_stats()
        if stats:
            lines.append("  size (w x h): " + ", ".join(f"{k} {w}x{h}" for k, (w, h) in stats.items()))
            lines.append("  modes: " + ", ".join(f"{m} {n}" for m, n in f.modes.most_common()))
        if f.name in small:
            lines.append(f"  {small[f.name]} image(s) under {report.min_size} px on a side (training upscales them)")
        if f.unreadable:
            lines.append(f"  unreadable ({len(f.unreadable)}, training skips them):")
            lines += _listing(report, f.unreadable, limit, more)
        if f.not_files:
            lines.append(f"  not regular files ({len(f.not_files)}, training skips them):")
            lines += _listing(report, f.not_files, limit, more)
    if report.duplicates:
        lines.append("exact duplicates (same bytes):")
        for d in report.duplicates:
            n = len(d.pairs)
            if d.kind == "within":
                head = f"{d.first}: {n} file(s) repeat another file of {d.first}"
            elif d.kind == "leakage":
                head = f"{d.first} and {d.second} share {n} image(s): test leakage, evaluation sees training images"
            else:
                head = f"{d.first} and {d.second} share {n} image(s) (the same picture in both domains)"
            lines.append(f"  {head}")
            lines += [f"    {report.rel(a)} = {report.rel(b)}" for a, b in d.pairs[:limit]]
            if n > limit:
                lines.append(f"    ... and {n - limit} more ({more})")
    else:
        lines.append("exact duplicates: none")
    return lines


def warn_about(report: DatasetReport) -> None:
    """One warning per leaking train/test pair of folders (the report above has the file names)."""
    for d in report.duplicates:
        if d.kind == "leakage":
            log.warning("test leakage: %d image(s) of %s are also in %s", len(d.pairs), d.second, d.first)
